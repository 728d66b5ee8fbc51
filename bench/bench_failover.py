"""Benchmark: primary-crash drills on the local backend (issue: foundation).

Prints RTO p50/p95 (measured from the workload's history), the median of each recovery
phase, lost acknowledged writes, and the cold start of primary + 2 standbys. Baselines
measured in the same process: the template initdb (what cold start avoids repeating) and
the bare promotion path (kill -> pg_promote(false) -> first write, no detection), which
bounds how fast any failover can be on this machine.

    python bench/bench_failover.py [--runs 20] [--interval 0.1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.drill import Drill
from pytest_drdrill.faults import FaultInjector
from pytest_drdrill.measure.workload import Workload
from pytest_drdrill.record import DrillRecord
from pytest_drdrill.recovery.orchestrator import MonitorSettings
from pytest_drdrill.recovery.reference import ReferenceFailover
from pytest_drdrill.results import Target
from pytest_drdrill.topology.local import LocalBackend


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fmt_ms(values: list[float]) -> str:
    return (
        f"median {statistics.median(values) * 1000:7.1f} ms  p95 {pct(values, 0.95) * 1000:7.1f} ms"
    )


def bare_promotion(backend: LocalBackend, workdir: Path) -> float:
    """Kill the primary, promote the sync standby at once, time to the first INSERT."""
    topo = backend.topology(workdir)
    try:
        sync = topo.pg_nodes["pg-sync"]
        t0 = timing.monotonic()
        topo.primary.crash()
        with psycopg.connect(sync.dsn(), autocommit=True) as conn:
            conn.execute("SELECT pg_promote(false)")
            while True:
                try:
                    conn.execute("INSERT INTO drdrill_ledger (id) VALUES (-1)")
                    return timing.monotonic() - t0
                except psycopg.errors.ReadOnlySqlTransaction:
                    timing.sleep(0.002)
    finally:
        topo.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, base: Path) -> None:
    t0 = timing.monotonic()
    backend = LocalBackend(base).start()
    print(
        f"session start (reap + template initdb + proxy): {timing.monotonic() - t0:.2f} s "
        f"(template alone {backend.template_seconds:.2f} s)"
    )
    target = Target("tier", "tier_1_critical", 900.0, 1800.0, 300.0, 900.0, 0)
    settings = MonitorSettings(interval=args.interval, timeout=2 * args.interval, threshold=3)
    failover = ReferenceFailover()
    rtos, cold, lost, phases = [], [], [], {}
    bare = []
    try:
        for i in range(args.runs):
            t = timing.monotonic()
            topo = backend.topology(base / f"run{i}")
            cold.append(timing.monotonic() - t)
            try:
                record = DrillRecord(
                    f"bench-{i}",
                    scenario="primary-crash",
                    cadence="monthly",
                    target=target,
                    backend="local",
                )
                drill = Drill(
                    topology=topo,
                    faults=FaultInjector(record),
                    workload=Workload(topo.pg_endpoint.dsn(), record.history),
                    record=record,
                    monitor_settings=settings,
                    failover=lambda d, topo=topo, record=record: failover.pytest_drdrill_failover(
                        service="postgres", topology=topo, record=record, detection=d
                    ),
                    observe=30.0,
                    on_result=lambda r: None,
                )
                with drill.running():
                    drill.faults.crash(topo.primary)
                    drill.await_recovery()
                result = drill.measure()
                drill.faults.heal()
            finally:
                topo.close()
            assert result.rto is not None and result.rto.seconds is not None, result.reason
            rtos.append(result.rto.seconds)
            lost.append(result.rpo.lost_writes if result.rpo else -1)
            for ph in result.phases:
                phases.setdefault(ph.name, []).append(ph.seconds)
            print(
                f"run {i + 1:2d}: RTO {result.rto.seconds * 1000:6.0f} ms  cold start "
                f"{cold[-1] * 1000:5.0f} ms  lost {lost[-1]}  verdict {result.verdict.value}"
            )
        for i in range(5):
            bare.append(bare_promotion(backend, base / f"bare{i}"))
    finally:
        backend.close()

    print()
    print(
        f"primary-crash drills: {args.runs}, health interval {args.interval * 1000:.0f} ms, "
        f"threshold 3, check timeout {2 * args.interval * 1000:.0f} ms"
    )
    print(
        f"RTO (client-measured):   p50 {pct(rtos, 0.5) * 1000:6.0f} ms   "
        f"p95 {pct(rtos, 0.95) * 1000:6.0f} ms"
        f"   max {max(rtos) * 1000:6.0f} ms   (targets: p50 <= 500, p95 <= 1000)"
    )
    for name, values in phases.items():
        print(f"  phase {name:<10} {fmt_ms(values)}  (n={len(values)})")
    print(f"lost acknowledged writes: total {sum(lost)} over {len(lost)} drills (max {max(lost)})")
    print(f"cold start primary + 2 standbys: {fmt_ms(cold)}  (target <= 3000 ms)")
    print(
        f"baseline, template initdb once per session: {backend.template_seconds * 1000:.0f} ms; "
        f"cold start / initdb = {statistics.median(cold) / backend.template_seconds:.2f}"
    )
    print(
        f"baseline, bare kill -> promote -> first INSERT: {fmt_ms(bare)}; "
        f"RTO p50 / bare = {pct(rtos, 0.5) / statistics.median(bare):.1f}x"
    )


if __name__ == "__main__":
    main()
