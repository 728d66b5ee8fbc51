"""repmgr's own failure modes, drilled against a real repmgr cluster (repmgrd, witness, HAProxy).

Run with ``--drill-postgres-failover=repmgr``: repmgrd, not the drill, decides every
failover here, and each drill is judged from the clients' histories as any other, the
split-brain watcher asking every server directly all along. The generic node loss,
freeze and clean stop are in ``test_postgres_failover.py`` and run under repmgr
unchanged.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pytest_drdrill import timing
from pytest_drdrill.faults.repmgr import Reboot, RepmgrdFreeze


def _repmgr(scenario: str, **kw: object) -> pytest.MarkDecorator:
    return pytest.mark.drdrill(
        cadence="monthly",
        tier="tier_1_critical",
        data="critical_user_data",
        scenario=scenario,
        postgres_failover=("repmgr",),
        **kw,
    )


def _in_recovery(node) -> bool | None:
    try:
        with psycopg.connect(node.dsn(app="drdrill-check"), connect_timeout=2) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    except psycopg.Error:
        return None
    return None if row is None else bool(row[0])


@_repmgr("repmgr-old-primary-rebooted", max_lost_writes=0, observe=60)
def test_old_primary_rebooted_after_a_failover_rejoins_as_a_standby(drdrill):
    """The lost primary boots again after the failover: never a second writable primary.

    repmgr would start it as it was, writable (repmgr#766, #439); the node's boot guard
    rejoins it to the new primary instead, and the split-brain watcher, asking every
    server directly, judges whether it ever accepted writes beside pg-sync.
    """
    topology = drdrill.topology
    old = topology.primary
    with drdrill.running():
        crash_at = drdrill.faults.crash(old)
        drdrill.await_recovery()
        drdrill.faults.inject(Reboot(old))
        # Writes go on while the watcher sees both servers for a while.
        assert drdrill.workload.wait_for_acks(100), "no writes after the old primary's reboot"
        rejoined = _in_recovery(old)
    result = drdrill.conclude(fault_at=crash_at)
    assert result.rpo is not None and result.rpo.lost_writes == 0
    assert topology.primary.name == "pg-sync"
    assert rejoined is True, f"{old.name} is not a standby after its reboot ({rejoined})"


@_repmgr("repmgrd-frozen-on-primary", max_lost_writes=0, observe=30)
def test_repmgrd_frozen_on_the_primary_changes_nothing(drdrill):
    """The primary's repmgrd is SIGSTOPped for 12 s: no failover, writes go on.

    The standbys' repmgrd watch the primary's PostgreSQL, not its repmgrd: with the
    envelope at 5 s, 12 s without a failover shows none is coming.
    """
    topology = drdrill.topology
    primary = topology.primary
    with drdrill.running():
        at = drdrill.faults.inject(RepmgrdFreeze(primary))
        states = {_state(pid) for pid in primary.pids()[:1]}
        timing.sleep(max(0.0, at + 12.0 - timing.monotonic()))
        still = _in_recovery(primary)
        drdrill.faults.heal()
    assert states == {"T"}, f"repmgrd was not stopped: state {states}"
    drdrill.conclude_tolerated(
        evidence=f"repmgrd of {primary.name} stopped (state T) for 12 s, PostgreSQL serving"
    )
    assert still is False and topology.primary.name == primary.name


@_repmgr("repmgr-witness-lost", max_lost_writes=0)
def test_witness_lost_the_cluster_keeps_serving(drdrill):
    """The witness is killed: the primary and its clients carry on (it only votes)."""
    topology = drdrill.topology
    witness = topology.repmgr.witness
    with drdrill.running():
        at = drdrill.faults.crash(witness)
        assert drdrill.workload.wait_for_acks(50), "no writes after the witness's loss"
        timing.sleep(max(0.0, at + 6.0 - timing.monotonic()))
    assert not witness.is_running()
    drdrill.conclude_tolerated(evidence=f"{witness.name} killed, not running, for 6 s")
    assert topology.primary.name == "pg-primary"


@_repmgr("repmgr-witness-lost-then-primary-lost", max_lost_writes=0, observe=60)
def test_primary_lost_while_the_witness_is_down(drdrill):
    """Without the witness, the primary dies: pg-sync and pg-dr alone decide.

    Both see the primary gone and the unreachable witness has no view to veto with, so
    repmgrd still promotes pg-sync; the RTO is measured from the primary's loss.
    """
    topology = drdrill.topology
    with drdrill.running():
        drdrill.faults.crash(topology.repmgr.witness)
        assert drdrill.workload.wait_for_acks(30)
        drdrill.faults.crash(topology.primary)
        drdrill.await_recovery()
    result = drdrill.conclude()
    assert result.rpo is not None and result.rpo.lost_writes == 0
    assert topology.primary.name == "pg-sync"


@_repmgr("repmgr-daemons-frozen-then-primary-lost", negative_control=True, observe=20)
def test_primary_lost_while_the_standbys_repmgrd_are_frozen_is_not_recovered(drdrill):
    """Negative control: nobody watches the primary, so its loss is an outage. Must go red.

    The repmgrd of both standbys are SIGSTOPped (PostgreSQL keeps streaming), then the
    primary is killed: no repmgrd is left to notice and promote within the window.
    """
    topology = drdrill.topology
    with drdrill.running():
        for name in ("pg-sync", "pg-dr"):
            drdrill.faults.inject(RepmgrdFreeze(topology.pg_nodes[name]))
        assert drdrill.workload.wait_for_acks(30)
        drdrill.faults.crash(topology.primary)
        drdrill.await_recovery()
    drdrill.conclude()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"
