"""Benchmark: cold start of the whole default local topology (issue 17: <= 6 s on 2 cores).

Run ``PYTHONPATH=src python bench/bench_cold_start.py --runs=3``; compare branches by
running it from each worktree. ``--sentinel`` adds what ``--drill-redis-failover=sentinel``
starts (the primary region's three Sentinels, ready when linked to each other).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from pytest_drdrill import timing
from pytest_drdrill.topology.local import LocalBackend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sentinel", action="store_true", help="with the Sentinel group")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drdrill-cold-") as tmp:
        base = Path(tmp)
        backend = LocalBackend(base).start()
        try:
            for i in range(args.runs):
                t = timing.monotonic()
                topo = backend.topology(base / f"run{i}", sentinel=args.sentinel)
                cold = timing.monotonic() - t
                try:
                    parts = "  ".join(f"{k} {v * 1000:.0f} ms" for k, v in topo.timings.items())
                    print(f"run {i + 1}: cold start {cold * 1000:.0f} ms  ({parts})")
                finally:
                    topo.close()
        finally:
            backend.close()


if __name__ == "__main__":
    main()
