"""Benchmark: the Docker backend against the local one, in the same process (issue 5).

For each backend: the session start (template, fault proxy; for Docker also the networks),
the cold start of the full two-region topology (3 PostgreSQL, 2 Redis, 2 object stores,
every path through the fault proxy, replicas streaming) and the RTO of a primary-crash
drill measured from the client's history, with the drills' default monitor settings
(check every 100 ms, 1 s check timeout, 3 failed checks). Prints median and p95 of each,
and the Docker/local ratios. Docker images must be built (scripts/build-images).

    python bench/bench_docker.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from pytest_drdrill import timing
from pytest_drdrill.drill import Drill
from pytest_drdrill.faults import FaultInjector
from pytest_drdrill.measure.workload import Workload
from pytest_drdrill.record import DrillRecord
from pytest_drdrill.recovery.orchestrator import MonitorSettings
from pytest_drdrill.recovery.reference import ReferenceFailover
from pytest_drdrill.results import Target
from pytest_drdrill.topology.docker import DockerBackend
from pytest_drdrill.topology.local import LocalBackend

TARGET = Target("tier", "tier_1_critical", 900.0, 1800.0, 300.0, 900.0, 0)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):6.2f} s  p95 {pct(values, 0.95):6.2f} s"


def crash_drill(topo: Any, name: str, backend: str) -> tuple[float, int]:
    """One primary-crash drill on ``topo``: (RTO seconds, lost acknowledged writes)."""
    record = DrillRecord(
        name, scenario="primary-crash", cadence="monthly", target=TARGET, backend=backend
    )
    failover = ReferenceFailover()
    drill = Drill(
        topology=topo,
        faults=FaultInjector(record),
        workload=Workload(topo.pg_endpoint.dsn(), record.history),
        record=record,
        monitor_settings=MonitorSettings(interval=0.1, timeout=1.0, threshold=3),
        failover=lambda d: failover.pytest_drdrill_failover(
            service="postgres", topology=topo, record=record, detection=d
        ),
        observe=60.0,
        on_result=lambda r: None,
    )
    with drill.running():
        drill.faults.crash(topo.primary)
        drill.await_recovery()
    result = drill.measure()
    drill.faults.heal()
    assert result.rto is not None and result.rto.seconds is not None, result.reason
    return result.rto.seconds, result.rpo.lost_writes if result.rpo else -1


def bench(name: str, backend: Any, base: Path, runs: int) -> dict[str, list[float]]:
    t0 = timing.monotonic()
    backend.start()
    figures: dict[str, list[float]] = {"session": [timing.monotonic() - t0], "cold": [], "rto": []}
    try:
        for i in range(runs):
            t = timing.monotonic()
            topo = backend.topology(base / f"{name}-{i}")
            figures["cold"].append(timing.monotonic() - t)
            try:
                rto, lost = crash_drill(topo, f"bench-{name}-{i}", name)
            finally:
                topo.close()
            figures["rto"].append(rto)
            print(
                f"{name:6s} run {i + 1}: cold start {figures['cold'][-1]:5.2f} s  "
                f"RTO {rto:5.2f} s  lost {lost}"
            )
    finally:
        backend.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-docker-") as tmp:
        base = Path(tmp)
        for name in ("local", "docker"):
            (base / name).mkdir()
        local = bench("local", LocalBackend(base / "local"), base, args.runs)
        docker = bench("docker", DockerBackend(base / "docker"), base, args.runs)
    print()
    print(f"full two-region topology, {args.runs} runs per backend, same process")
    for label, key in (("session start", "session"), ("cold start", "cold"), ("crash RTO", "rto")):
        for name, figures in (("local", local), ("docker", docker)):
            print(f"{label:13s} {name:6s} {summary(figures[key])}")
        ratio = statistics.median(docker[key]) / statistics.median(local[key])
        print(f"{label:13s} docker/local (medians) {ratio:5.1f}x")
    print(f"cold start target docker <= 15 s: median {statistics.median(docker['cold']):.2f} s")


if __name__ == "__main__":
    main()
