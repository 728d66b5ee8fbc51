"""Run documents for report tests: the stored example run, given plausible write timelines."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parent / "data" / "drill-example.json"
BUCKET = 0.1


def example() -> dict[str, Any]:
    """Return a fresh copy of the stored example run (9 drills of a quarterly run)."""
    document: dict[str, Any] = json.loads(EXAMPLE.read_text("utf-8"))
    return document


def offset(drill: dict[str, Any], stamp: str | None) -> float | None:
    """Seconds from the drill's start to an ISO timestamp."""
    if stamp is None:
        return None
    start = dt.datetime.fromisoformat(drill["started_at"])
    return (dt.datetime.fromisoformat(stamp) - start).total_seconds()


def add_timeline(drill: dict[str, Any]) -> None:
    """Give a drill a write timeline consistent with its measured outages."""
    buckets = int(drill["duration_seconds"] / BUCKET) + 1
    services = {}
    for service in drill.get("services") or [{"service": "postgres", "rto": drill["rto"]}]:
        rto = service.get("rto") or {}
        down_from = offset(drill, rto.get("outage_started_at"))
        down_to = offset(drill, rto.get("recovered_at"))
        counts: dict[str, list[int]] = {
            key: [0] * buckets
            for key in ("acknowledged", "failed", "indeterminate", "probes_ok", "probes_failed")
        }
        for i in range(buckets):
            t = i * BUCKET
            down = down_from is not None and t >= down_from and (down_to is None or t < down_to)
            if down:
                counts["failed"][i] = 2
                counts["probes_failed"][i] = 1
            else:
                counts["acknowledged"][i] = 5 + i % 3
                counts["probes_ok"][i] = 1
        services[service["service"]] = counts
    drill["timeline"] = {"bucket_seconds": BUCKET, "services": services}


def trend(*, regressed: bool) -> dict[str, Any]:
    """A history of six runs of primary-crash; the last one slower when *regressed*."""
    points = [
        {
            "run_id": f"20261115T1000{i:02d}Z-aaaaa{i}",
            "started_at": f"2026-11-{15 + i}T10:00:00+00:00",
            "n": 3,
            "rto_p50": 0.40 + 0.01 * i,
            "rto_p95": 0.50 + 0.01 * i,
            "passed": 3,
            "failed": 0,
        }
        for i in range(6)
    ]
    regressions = []
    if regressed:
        points[-1].update(rto_p50=1.9, rto_p95=2.4)
        regressions.append(
            {
                "scenario": "primary-crash",
                "run_id": points[-1]["run_id"],
                "rto_p50": 1.9,
                "baseline_p50": 0.42,
                "noise_seconds": 0.08,
                "detail": "RTO p50 1.90s is 1.48s above the median of the previous 5 runs",
            }
        )
    return {"scenarios": {"primary-crash": points}, "regressions": regressions}
