"""Benchmark: two-region cold start and whole-region outage RTO per service.

    python bench/bench_regions.py --runs 10

Each run builds the full two-region topology (PostgreSQL primary, sync and DR standbys,
Redis primary and DR replica, two moto object stores, cross-region replication), then
takes the primary region out and lets the reference orchestrator fail every service over
to the DR region. RTO and lost writes come from each service's client history. Baselines
run in the same process: one object store starting alone (the slowest single part).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench_failover import fmt_ms, pct

from pytest_drdrill import timing
from pytest_drdrill.drill import Drill
from pytest_drdrill.faults import FaultInjector
from pytest_drdrill.measure.redis import RedisLedger
from pytest_drdrill.measure.s3 import S3Ledger
from pytest_drdrill.measure.workload import Workload
from pytest_drdrill.record import DrillRecord
from pytest_drdrill.recovery.orchestrator import MonitorSettings
from pytest_drdrill.recovery.reference import ReferenceFailover
from pytest_drdrill.results import Target
from pytest_drdrill.topology.local import LocalBackend
from pytest_drdrill.topology.s3 import LocalS3Node

SERVICES = ("postgres", "redis", "s3")


def one_store_start(base: Path) -> float:
    """Baseline: a single moto server from spawn to answering."""
    node = LocalS3Node("baseline", "primary", base, log=base / "baseline.log")
    t = timing.monotonic()
    try:
        node.start()
        return timing.monotonic() - t
    finally:
        node.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-regions-") as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, base: Path) -> None:
    backend = LocalBackend(base).start()
    target = Target("tier", "tier_1_critical", 900.0, 1800.0, 300.0, 900.0)
    settings = MonitorSettings()
    reference = ReferenceFailover()
    cold: list[float] = []
    parts: dict[str, list[float]] = {}
    rto: dict[str, list[float]] = {s: [] for s in SERVICES}
    lost: dict[str, list[int]] = {s: [] for s in SERVICES}
    baseline: list[float] = []
    try:
        for i in range(args.runs):
            t = timing.monotonic()
            topo = backend.topology(base / f"run{i}")
            cold.append(timing.monotonic() - t)
            for name, seconds in topo.timings.items():
                parts.setdefault(name, []).append(seconds)
            try:
                record = DrillRecord(
                    f"bench-{i}", scenario="region-outage", cadence="quarterly",
                    target=target, backend="local",
                )  # fmt: skip
                clients = {
                    "postgres": Workload(topo.pg_endpoint.dsn(), record.history),
                    "redis": Workload(
                        RedisLedger(topo.redis_endpoint.url()), record.history_of("redis")
                    ),
                    "s3": Workload(
                        S3Ledger(topo.s3_endpoint.endpoint_url, topo.bucket),
                        record.history_of("s3"),
                    ),
                }
                drill = Drill(
                    topology=topo,
                    faults=FaultInjector(record, topology=topo),
                    workload=clients,
                    record=record,
                    monitor_settings=settings,
                    failover=lambda d, topo=topo, record=record: reference.pytest_drdrill_failover(
                        service=d.service, topology=topo, record=record, detection=d
                    ),
                    region_failover=lambda d, topo=topo, record=record: (
                        reference.pytest_drdrill_region_failover(
                            topology=topo, record=record, detection=d
                        )
                    ),
                    observe=30.0,
                    on_result=lambda r: None,
                )
                with drill.running():
                    drill.faults.region_outage("primary")
                    drill.await_recovery()
                result = drill.measure()
            finally:
                topo.close()
            line = []
            for service in result.services:
                assert service.rto is not None and service.rto.seconds is not None, service.reason
                rto[service.service].append(service.rto.seconds)
                lost[service.service].append(service.rpo.lost_writes if service.rpo else -1)
                line.append(
                    f"{service.service} {service.rto.seconds * 1000:5.0f} ms lost "
                    f"{lost[service.service][-1]}"
                )
            print(f"run {i + 1:2d}: cold start {cold[-1] * 1000:5.0f} ms  " + "  ".join(line))
        for i in range(5):
            (base / f"baseline{i}").mkdir()
            baseline.append(one_store_start(base / f"baseline{i}"))
    finally:
        backend.close()

    print()
    print(f"two-region cold start: {fmt_ms(cold)}  (target <= 3000 ms)")
    for name, values in parts.items():
        print(f"  {name:<22} ready after {fmt_ms(values)}")
    print(
        f"baseline, one object store alone: {fmt_ms(baseline)}; cold start p50 / baseline = "
        f"{pct(cold, 0.5) / pct(baseline, 0.5):.2f}"
    )
    print(
        f"region outage, health interval {settings.interval * 1000:.0f} ms, "
        f"timeout {settings.timeout * 1000:.0f} ms, threshold {settings.threshold}:"
    )
    for service in SERVICES:
        print(
            f"  {service:<8} RTO p50 {pct(rto[service], 0.5) * 1000:6.0f} ms  p95 "
            f"{pct(rto[service], 0.95) * 1000:6.0f} ms  lost writes total {sum(lost[service])} "
            f"(max {max(lost[service])} per drill)"
        )


if __name__ == "__main__":
    main()
