"""Monthly PostgreSQL failover drills on the embedded local topology.

Each drill crashes, freezes or isolates part of the topology while the workload writes
through the service endpoint; the reference monitor detects the failure and the failover
hook recovers. RTO and RPO come from the workload's history only.
"""

from __future__ import annotations

import pytest


@pytest.mark.drdrill(
    cadence="monthly",
    tier="tier_1_critical",
    data="critical_user_data",
    scenario="primary-crash",
    max_lost_writes=0,
)
def test_primary_crash_fails_over_to_sync_standby(drdrill):
    """Killing the primary fails over to the sync standby, losing no acknowledged write."""
    with drdrill.running():
        drdrill.faults.crash(drdrill.topology.primary)
        drdrill.await_recovery()
    result = drdrill.conclude()
    assert result.rpo is not None and result.rpo.lost_writes == 0


@pytest.mark.drdrill(
    cadence="monthly",
    tier="tier_1_critical",
    data="critical_user_data",
    scenario="primary-freeze",
    max_lost_writes=0,
)
def test_frozen_primary_is_detected_and_fenced(drdrill):
    """A SIGSTOPped primary never refuses connections; the bounded health checks still catch it."""
    with drdrill.running():
        drdrill.faults.freeze(drdrill.topology.primary)
        drdrill.await_recovery()
    drdrill.conclude()


@pytest.mark.drdrill(
    cadence="weekly",
    tier="tier_1_critical",
    data="critical_user_data",
    scenario="primary-clean-stop",
    max_lost_writes=0,
)
def test_clean_primary_shutdown_fails_over(drdrill):
    """A primary shut down cleanly (maintenance gone wrong) is replaced like a crashed one."""
    with drdrill.running():
        drdrill.faults.stop(drdrill.topology.primary)
        drdrill.await_recovery()
    drdrill.conclude()


@pytest.mark.drdrill(
    cadence="monthly",
    tier="tier_1_critical",
    data="critical_user_data",
    scenario="replication-lag-async-promotion",
)
def test_lagging_dr_standby_promoted_and_loss_counted_exactly(drdrill):
    """With the DR link cut, losing the primary region promotes the lagging DR standby.

    The writes acknowledged after the cut are lost; the drill must count them exactly,
    which is checked against the old primary's own disk.
    """
    topology = drdrill.topology
    with drdrill.running():
        drdrill.faults.cut(topology.replication_links["pg-dr"])
        assert drdrill.workload.wait_for_acks(30), (
            "no writes acknowledged while the DR link was cut"
        )
        # The primary region goes: its sync standby and then its primary crash together.
        drdrill.faults.crash(topology.pg_nodes["pg-sync"])
        drdrill.faults.crash(topology.primary)
        drdrill.await_recovery()
    result = drdrill.conclude()

    assert topology.primary.name == "pg-dr"
    acknowledged = {w.id for w in drdrill.record.history.acknowledged()}
    on_old_primary = topology.ledger_ids_of("pg-primary")
    assert result.rpo is not None
    assert result.rpo.lost_writes >= 30
    truly_lost = sorted(acknowledged & on_old_primary - _ids_through_endpoint(drdrill))
    assert list(result.rpo.lost_ids) == truly_lost


def _ids_through_endpoint(drdrill):
    from pytest_drdrill.measure.workload import read_present_ids

    return read_present_ids(drdrill.topology.pg_endpoint.dsn())


class _RepointsWithoutPromoting:
    """Deliberately broken recovery: it sends clients to a standby it never promoted.

    It reports success all the same; the drill must go red from the client's history.
    """

    @pytest.hookimpl(tryfirst=True)
    def pytest_drdrill_failover(self, service, topology, record, detection):
        standby = topology.standbys()[0]
        with record.phase("repoint") as note:
            topology.pg_endpoint.repoint(standby)
            note.detail = f"endpoint -> {standby.name}, which was NOT promoted (negative control)"
        return standby.name


@pytest.fixture
def broken_failover(pytestconfig):
    """Register the broken failover for one drill, ahead of the reference one."""
    plugin = _RepointsWithoutPromoting()
    pytestconfig.pluginmanager.register(plugin, "drdrill-negative-control")
    yield plugin
    pytestconfig.pluginmanager.unregister(plugin)


@pytest.mark.drdrill(
    cadence="monthly",
    tier="tier_1_critical",
    data="critical_user_data",
    scenario="negative-control-no-promotion",
    negative_control=True,
    observe=5,
)
def test_negative_control_broken_failover_goes_red(broken_failover, drdrill):
    """Negative control: recovery that never promotes must fail the drill, whatever it claims."""
    with drdrill.running():
        drdrill.faults.crash(drdrill.topology.primary)
        drdrill.await_recovery()
    drdrill.conclude()
