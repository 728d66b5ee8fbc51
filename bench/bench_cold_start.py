"""Benchmark: cold start of the whole default local topology (issue 17: at most 6 s, 2 cores).

    flock /tmp/drdrill-heavy.lock python bench/bench_cold_start.py --runs=10

Each run builds a topology on one started local backend (fault proxy up, template made, as
in a drill session) and times ``LocalBackend.topology`` until every replica replicates.
Shapes (``--shapes`` picks some), taking turns so drift on the shared machine falls on all:

- ``two-region``: the shape before issue 17, as the baseline: one synchronous standby, no
  read replica, no Redis replica in the primary region (``--drill-sizes=pg_sync=1,
  pg_read=0,redis_replicas=0``).
- ``default``: what ``--drill=monthly`` builds (``--drill-sizes`` defaults).
- ``sentinel``: the default with the primary region's Sentinels
  (``--drill-redis-failover=sentinel``).

Printed: median and p95 per shape, each part's median (the topology's ``timings``), and
each shape's median as a ratio of the baseline's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench_failover import fmt_ms

from pytest_drdrill import timing
from pytest_drdrill.topology.local import LocalBackend
from pytest_drdrill.topology.sizes import Sizes

SHAPES: dict[str, tuple[str, bool]] = {
    "two-region": ("pg_sync=1,pg_read=0,redis_replicas=0", False),
    "default": ("", False),
    "sentinel": ("", True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated")
    args = parser.parse_args()
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    times: dict[str, list[float]] = {s: [] for s in shapes}
    parts: dict[str, dict[str, list[float]]] = {s: {} for s in shapes}
    with tempfile.TemporaryDirectory(prefix="drdrill-cold-") as tmp:
        base = Path(tmp)
        backend = LocalBackend(base).start()
        try:
            for i in range(args.runs):
                for shape in shapes:
                    sizes, sentinel = SHAPES[shape]
                    backend.sizes = Sizes.parse(sizes, where=f"shape {shape}")
                    t = timing.monotonic()
                    topo = backend.topology(base / f"{shape}-{i}", sentinel=sentinel)
                    times[shape].append(timing.monotonic() - t)
                    for key, value in topo.timings.items():
                        parts[shape].setdefault(key, []).append(value)
                    topo.close()
                print(f"run {i + 1}/{args.runs} done", flush=True)
        finally:
            backend.close()
    baseline = statistics.median(times[shapes[0]])
    print(f"\ncold start, {args.runs} runs each (baseline: {shapes[0]})")
    for shape in shapes:
        median = statistics.median(times[shape])
        print(f"  {shape:<11} {fmt_ms(times[shape])}  x{median / baseline:.2f} of baseline")
        for key, values in parts[shape].items():
            print(f"      {key:<22} median {statistics.median(values) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
