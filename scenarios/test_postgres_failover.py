"""Monthly PostgreSQL failover drills on the embedded local topology.

Each drill crashes, freezes or isolates part of the topology while the workload writes
through the service endpoint; the reference monitor detects the failure and the failover
hook recovers. RTO and RPO come from the workload's history only.
"""

from __future__ import annotations

import pytest

#: Drills of the reference failover's own behaviour; see the README's Patroni section for
#: what runs under --drill-postgres-failover=patroni instead.
REFERENCE_ONLY = ("reference",)


def _loses_nothing(cadence: str, scenario: str) -> pytest.MarkDecorator:
    return pytest.mark.drdrill(
        cadence=cadence,
        tier="tier_1_critical",
        data="critical_user_data",
        scenario=scenario,
        max_lost_writes=0,  # synchronous replication: no acknowledged write may be lost
    )


@pytest.mark.parametrize(
    "fault",
    [
        # Killed with all its processes, as a power loss would.
        pytest.param("crash", marks=_loses_nothing("monthly", "primary-crash"), id="crash"),
        # SIGSTOPped: it never refuses a connection, so only bounded health checks catch it.
        pytest.param("freeze", marks=_loses_nothing("monthly", "primary-freeze"), id="freeze"),
        # Shut down cleanly, as maintenance gone wrong would.
        pytest.param("stop", marks=_loses_nothing("weekly", "primary-clean-stop"), id="clean-stop"),
    ],
)
def test_losing_the_primary_fails_over_to_the_sync_standby(drdrill, fault):
    """Losing the primary fails over to a sync standby, losing no acknowledged write."""
    synchronous = drdrill.topology.sync_standby_names()
    with drdrill.running():
        getattr(drdrill.faults, fault)(drdrill.topology.primary)
        drdrill.await_recovery()
    result = drdrill.conclude()
    assert result.rpo is not None and result.rpo.lost_writes == 0
    assert drdrill.topology.primary.name in synchronous


@pytest.mark.drdrill(
    cadence="monthly",
    tier="tier_1_critical",
    data="critical_user_data",
    scenario="replication-lag-async-promotion",
    postgres_failover=REFERENCE_ONLY,
)
def test_lagging_dr_standby_promoted_and_loss_counted_exactly(drdrill):
    """With the DR link cut, losing the primary region promotes the lagging DR standby.

    The writes acknowledged after the cut are lost, but for any already streamed when the
    link went down; the drill must count them exactly, which is checked against the old
    primary's own disk.
    """
    topology = drdrill.topology
    with drdrill.running():
        drdrill.faults.cut(topology.replication_links["pg-dr"])
        assert drdrill.workload.wait_for_acks(30), (
            "no writes acknowledged while the DR link was cut"
        )
        # The primary region goes: its standbys and then its primary crash together.
        for node in topology.standbys():
            if node.region == "primary":
                drdrill.faults.crash(node)
        drdrill.faults.crash(topology.primary)
        drdrill.await_recovery()
    result = drdrill.conclude()

    assert topology.primary.name == "pg-dr"
    acknowledged = {w.id for w in drdrill.record.history.acknowledged()}
    on_old_primary = topology.ledger_ids_of("pg-primary")
    assert result.rpo is not None
    # Of the 30 writes acknowledged after the cut, a write already streamed when the link
    # went down reaches the DR standby all the same (29 lost in one CI run): the exact
    # count is what the next line checks, against the old primary's own disk.
    assert result.rpo.lost_writes >= 25
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

    @pytest.hookimpl(tryfirst=True)
    def pytest_drdrill_region_failover(self, topology, record, detection):
        standby = topology.standbys()[0]
        with record.phase("repoint") as note:
            topology.pg_endpoint.repoint(standby)
            note.detail = f"endpoint -> {standby.name}, which was NOT promoted (negative control)"
        return standby.region


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
    postgres_failover=REFERENCE_ONLY,
    negative_control=True,
    observe=5,
)
def test_negative_control_broken_failover_goes_red(broken_failover, drdrill):
    """Negative control: recovery that never promotes must fail the drill, whatever it claims."""
    with drdrill.running():
        drdrill.faults.crash(drdrill.topology.primary)
        drdrill.await_recovery()
    drdrill.conclude()


def _sync_states(node) -> dict[str, str]:
    import psycopg

    with psycopg.connect(node.dsn(app="drdrill-check"), connect_timeout=2) as conn:
        rows = conn.execute("SELECT application_name, sync_state FROM pg_stat_replication")
        return {str(name): str(state) for name, state in rows.fetchall()}


def _two_sync_standbys(topology) -> None:
    if len(topology.sync_standby_names()) < 2:
        pytest.skip("this backend builds one synchronous standby; the local backend builds two")


@pytest.mark.drdrill(
    cadence="monthly",
    tier="tier_1_critical",
    data="critical_user_data",
    scenario="sync-standby-lost",
    max_lost_writes=0,
    postgres_failover=REFERENCE_ONLY,
)
def test_losing_one_synchronous_standby_blocks_nothing_and_loses_nothing(drdrill):
    """pg-sync dies: pg-sync2 confirms alone, commits never stop, none is lost.

    With one synchronous standby this blocked every commit and the monitor never noticed
    (its health checks only read); with 'sync1,sync2' as ANY 1 the other's confirmation
    releases every commit, including the one in flight when pg-sync died.
    """
    topology = drdrill.topology
    _two_sync_standbys(topology)
    lost, other = (topology.pg_nodes[n] for n in topology.sync_standby_names())
    with drdrill.running():
        at = drdrill.faults.crash(lost)
        assert drdrill.workload.wait_for_acks(50), "commits stopped after one sync standby died"
        from pytest_drdrill import timing

        timing.sleep(max(0.0, at + 5.0 - timing.monotonic()))
        states = _sync_states(topology.primary)
    assert states.get(other.name) in ("sync", "quorum"), states
    # "Blocks nothing", from the client's own history: the slowest commit sent after the kill.
    after = [op for op in drdrill.record.history.writes() if op.invoked >= at]
    slowest = max((op.completed - op.invoked for op in after), default=0.0)
    drdrill.conclude_tolerated(
        evidence=f"{lost.name} killed for 5 s; {len(after)} commits sent after, slowest "
        f"{slowest * 1000:.0f} ms; {other.name} synchronous ({states})"
    )
    assert topology.primary.name == "pg-primary"


@pytest.mark.drdrill(
    cadence="monthly",
    tier="tier_1_critical",
    data="critical_user_data",
    scenario="sync-standby-then-primary-lost",
    max_lost_writes=0,
    postgres_failover=REFERENCE_ONLY,
)
def test_after_one_synchronous_standby_the_primary_is_lost_too(drdrill):
    """pg-sync dies, then the primary: the other sync standby leads and commits go on.

    Found by a fault schedule: the new primary named the dead pg-sync as its synchronous
    standby and every commit waited for good.
    """
    topology = drdrill.topology
    _two_sync_standbys(topology)
    lost, other = (topology.pg_nodes[n] for n in topology.sync_standby_names())
    with drdrill.running():
        drdrill.faults.crash(lost)
        assert drdrill.workload.wait_for_acks(30), "commits stopped after one sync standby died"
        drdrill.faults.crash(topology.primary)
        drdrill.await_recovery()
    result = drdrill.conclude()
    assert result.rpo is not None and result.rpo.lost_writes == 0
    assert topology.primary.name == other.name


@pytest.mark.drdrill(
    cadence="monthly",
    tier="tier_1_critical",
    data="critical_user_data",
    scenario="both-sync-standbys-lost",
    negative_control=True,
    observe=10,
    postgres_failover=REFERENCE_ONLY,
)
def test_negative_control_losing_both_synchronous_standbys_blocks_commits(drdrill):
    """Both synchronous standbys die: every commit waits. Must go red."""
    topology = drdrill.topology
    _two_sync_standbys(topology)
    with drdrill.running():
        for name in topology.sync_standby_names():
            drdrill.faults.crash(topology.pg_nodes[name])
        drdrill.await_recovery()
    drdrill.conclude_tolerated(evidence="both synchronous standbys killed")
