"""Benchmark: from a guardrail's breach to every fault healed, on the local backend.

Run from the repository root (as root: servers run as the unprivileged account)::

    PYTHONPATH=src python bench/bench_guardrails.py [--runs 10]

One pytest run executes two drills ``--runs`` times each (``--drill-repeat``), both cutting
the clients off PostgreSQL (and the DR standby's replication, so there is more than one
fault to heal) with failover off:

- **guardrail**: ``max_outage`` 1 s trips; the drill records the time from the breach to
  every fault healed, and the breach's lag behind the moment the outage crossed 1 s;
- **baseline**: the test heals the same faults itself with ``drdrill.faults.heal()``,
  timed around the call.

Median and p95 of each, and the guardrail's breach-to-healed over the baseline's heal.
The target (issue 18): breach to healed at most 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DRILLS = """
import pytest

from pytest_drdrill import timing


def _cut(drdrill):
    drdrill.faults.cut(drdrill.topology.pg_endpoint)
    drdrill.faults.cut(drdrill.topology.replication_links["pg-dr"])


@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", scenario="guardrail",
                     guardrails={"max_outage": "1s"})
def test_guardrail(drdrill):
    with drdrill.running(failover=False):
        _cut(drdrill)
        drdrill.await_recovery(timeout=30)
    breach = drdrill.guard.breach
    last_ok = max(w.completed for w in drdrill.workload.history.acknowledged())
    lag = breach.at - last_ok - 1.0
    drdrill.record.note(f"bench healed={breach.healed_seconds:.6f} lag={lag:.6f}")


@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", scenario="baseline",
                     guardrails={"max_outage": None})
def test_baseline(drdrill):
    with drdrill.running(failover=False):
        _cut(drdrill)
        timing.sleep(1.0)
        started = timing.monotonic()
        drdrill.faults.heal()
        drdrill.record.note(f"bench healed={timing.monotonic() - started:.6f}")
"""


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    """Print breach-to-healed and detection lag against the baseline heal."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drdrill-bench-") as tmp:
        work = Path(tmp)
        (work / "test_guardrail_bench.py").write_text(DRILLS)
        (work / "targets.yaml").write_text((ROOT / "fixtures" / "targets.yaml").read_text())
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--drill=monthly",
             f"--drill-repeat={args.runs}", f"--drill-targets={work / 'targets.yaml'}",
             f"--drill-report-dir={work / 'reports'}", str(work)],
            cwd=work, check=False, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )  # fmt: skip
        (report,) = (work / "reports").glob("*/drill.json")
        figures: dict[str, dict[str, list[float]]] = {}
        for drill in json.loads(report.read_text())["drills"]:
            for note in drill["notes"]:
                if note.startswith("bench "):
                    seen = figures.setdefault(drill["scenario"], {})
                    for pair in note.split()[1:]:
                        key, value = pair.split("=")
                        seen.setdefault(key, []).append(float(value))
    print(f"{'figure':<40}{'median ms':>10}{'p95 ms':>9}{'runs':>6}")
    rows = [
        ("guardrail: breach -> every fault healed", figures["guardrail"]["healed"]),
        ("guardrail: breach after the 1 s outage", figures["guardrail"]["lag"]),
        ("baseline: faults.heal() by the test", figures["baseline"]["healed"]),
    ]
    for name, values in rows:
        ms = [v * 1000 for v in values]
        print(f"{name:<40}{statistics.median(ms):>10.1f}{_p95(ms):>9.1f}{len(ms):>6}")
    ratio = statistics.median(rows[0][1]) / statistics.median(rows[2][1])
    print(f"breach -> healed / baseline heal (medians): x{ratio:.2f}; target: healed <= 1000 ms")


if __name__ == "__main__":
    main()
