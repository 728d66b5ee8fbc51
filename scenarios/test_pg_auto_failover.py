"""pg_auto_failover's own failure modes, drilled against a real cluster (monitor, keepers).

Run with ``--drill-postgres-failover=pg_auto_failover``: the monitor, not the drill,
decides every failover here, and each drill is judged from the clients' histories (the
multi-host URI) as any other. The generic node loss, freeze and clean stop are in
``test_postgres_failover.py`` and run under pg_auto_failover unchanged.
"""

from __future__ import annotations

import psycopg
import pytest

from pytest_drdrill import timing
from pytest_drdrill.faults.autofailover import KeeperFreeze


def _pgaf(scenario: str, **kw: object) -> pytest.MarkDecorator:
    return pytest.mark.drdrill(
        cadence="monthly",
        tier="tier_1_critical",
        data="critical_user_data",
        scenario=scenario,
        postgres_failover=("pg_auto_failover",),
        **kw,
    )


def _in_recovery(node) -> bool | None:
    try:
        with psycopg.connect(node.dsn(app="drdrill-check"), connect_timeout=2) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    except psycopg.Error:
        return None
    return None if row is None else bool(row[0])


@_pgaf("pgaf-monitor-lost", max_lost_writes=0)
def test_monitor_lost_the_primary_keeps_serving(drdrill):
    """The monitor is killed: keepers keep their roles and clients keep writing."""
    topology = drdrill.topology
    monitor = topology.autofailover.monitor
    with drdrill.running():
        at = drdrill.faults.crash(monitor)
        assert drdrill.workload.wait_for_acks(50), "no writes after the monitor's loss"
        timing.sleep(max(0.0, at + 6.0 - timing.monotonic()))
        still = _in_recovery(topology.primary)
    assert not monitor.is_running()
    drdrill.conclude_tolerated(evidence=f"{monitor.name} killed, not running, for 6 s")
    assert still is False and topology.primary.name == "pg-primary"


@_pgaf("pgaf-monitor-lost-then-primary-lost", negative_control=True, observe=20)
def test_primary_lost_while_the_monitor_is_down_is_not_recovered(drdrill):
    """Without its monitor pg_auto_failover promotes nobody: losing the primary is an outage.

    Must go red: nothing but the monitor may promote a keeper, so the clients' outage
    lasts past the observation window. The envelope says so before the fault.
    """
    topology = drdrill.topology
    with drdrill.running():
        drdrill.faults.crash(topology.autofailover.monitor)
        assert drdrill.workload.wait_for_acks(30)
        drdrill.faults.crash(topology.primary)
        drdrill.await_recovery()
    drdrill.conclude()


@_pgaf("pgaf-keeper-frozen-on-primary", max_lost_writes=0, observe=30)
def test_keeper_frozen_on_the_primary_changes_nothing(drdrill):
    """The primary's pg_autoctl is SIGSTOPped for 12 s: no failover, writes go on.

    The monitor fails a node over only when its health checks fail and its keeper is
    silent; PostgreSQL still answers them. With the envelope under 10 s, 12 s without a
    failover shows none is coming.
    """
    topology = drdrill.topology
    primary = topology.primary
    with drdrill.running():
        at = drdrill.faults.inject(KeeperFreeze(primary))
        frozen = {_state(pid) for pid in primary.autoctl_pids()}
        timing.sleep(max(0.0, at + 12.0 - timing.monotonic()))
        still = _in_recovery(primary)
        drdrill.faults.heal()
    assert frozen == {"T"}, f"pg_autoctl was not stopped: states {frozen}"
    drdrill.conclude_tolerated(
        evidence=f"pg_autoctl of {primary.name} stopped (state T) for 12 s, PostgreSQL serving"
    )
    assert still is False and topology.primary.name == primary.name


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]
