"""Measure what writing the evidence costs at the end of a drill run.

Run from the repository root::

    PYTHONPATH=src python bench/bench_reports.py [--runs 10] [--document PATH]

The input is a stored run document (default: the 9-drill quarterly run in
``tests/data/drill-example.json``, given a synthetic 0.1 s write timeline of its real
length per service). Each writer runs ``--runs`` times in this process; the baseline is
``drill.json`` itself, so each ratio says how many ``drill.json`` writes one report costs.
Figures: median and p95 in milliseconds, and the peak memory the HTML report allocates.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import tracemalloc
from pathlib import Path

from pytest_drdrill import timing
from pytest_drdrill.reporting.drill_json import write_document
from pytest_drdrill.reporting.history import entry_from_document
from pytest_drdrill.reporting.html import write_html
from pytest_drdrill.reporting.mtd import write_mtd
from pytest_drdrill.reporting.trend import trend
from pytest_drdrill.targets import load_targets

ROOT = Path(__file__).resolve().parents[1]


def _with_timelines(document: dict) -> dict:
    """Give drills without a timeline one of their real length (0.1 s buckets, steady writes)."""
    for drill in document["drills"]:
        if drill.get("timeline"):
            continue
        buckets = max(1, int(drill["duration_seconds"] / 0.1))
        series = {
            "acknowledged": [8] * buckets,
            "failed": [0] * buckets,
            "indeterminate": [0] * buckets,
            "probes_ok": [1] * buckets,
            "probes_failed": [0] * buckets,
        }
        drill["timeline"] = {
            "bucket_seconds": 0.1,
            "services": {s["service"]: series for s in drill.get("services") or []},
        }
    return document


def _time(runs: int, call) -> list[float]:
    took = []
    for _ in range(runs):
        start = timing.monotonic()
        call()
        took.append((timing.monotonic() - start) * 1000)
    return took


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    """Print median and p95 per writer and the ratio to writing drill.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--document", type=Path, default=ROOT / "tests/data/drill-example.json")
    args = parser.parse_args()
    document = _with_timelines(json.loads(args.document.read_text()))
    targets = load_targets(ROOT / "fixtures" / "targets.yaml")
    history = [entry_from_document(document)] * 5
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        write_html(out, document, trend=trend(history))  # warm-up: imports, font cache
        results = {
            "drill.json (baseline)": _time(args.runs, lambda: write_document(out, document)),
            "report.html": _time(
                args.runs, lambda: write_html(out, document, trend=trend(history))
            ),
            "mtd-justification": _time(
                args.runs, lambda: write_mtd(out, document, targets, history=history)
            ),
        }
        tracemalloc.start()
        write_html(out, document, trend=trend(history))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        size = (out / "report.html").stat().st_size
    base = statistics.median(results["drill.json (baseline)"])
    print(f"{len(document['drills'])} drills, {args.runs} runs each")
    print(f"{'writer':<24}{'median ms':>10}{'p95 ms':>10}{'x baseline':>12}")
    for name, took in results.items():
        median = statistics.median(took)
        print(f"{name:<24}{median:>10.1f}{_p95(took):>10.1f}{median / base:>12.1f}")
    print(f"report.html: {size / 1024:.0f} KiB, peak Python allocation {peak / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
