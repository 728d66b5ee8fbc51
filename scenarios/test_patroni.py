"""Patroni's own failure modes, drilled against a real Patroni + etcd + HAProxy cluster.

Run with ``--drill-postgres-failover=patroni``: Patroni, not the drill, decides every
failover here, and each drill is judged from the clients' histories as any other. The
faults are the ones Patroni's acceptance tests inject; the generic node loss and freeze
are in ``test_postgres_failover.py`` and run under Patroni unchanged. Before each fault
the failover envelope of the live settings is computed and checked against the tier;
the report shows it beside the measured RTO.
"""

from __future__ import annotations

import pytest

from pytest_drdrill.faults.patroni import (
    DcsPartition,
    DcsQuorumLoss,
    PostgresCrash,
    ReplayPaused,
    WalReceiverStalled,
)


def _patroni(scenario: str, cadence: str = "monthly", **kw: object) -> pytest.MarkDecorator:
    return pytest.mark.drdrill(
        cadence=cadence,
        tier="tier_1_critical",
        data="critical_user_data",
        scenario=scenario,
        postgres_failover=("patroni",),
        **kw,
    )


@_patroni("patroni-postgres-crash", max_lost_writes=0)
def test_postgres_crash_is_restarted_in_place(drdrill):
    """PostgreSQL killed under a live Patroni: Patroni restarts it, no failover, nothing lost."""
    leader = drdrill.topology.primary
    with drdrill.running():
        drdrill.faults.inject(PostgresCrash(leader))
        drdrill.await_recovery()
    result = drdrill.conclude()
    assert result.rpo is not None and result.rpo.lost_writes == 0
    assert drdrill.topology.primary.name == leader.name, "Patroni failed over instead"


@_patroni("patroni-leader-cut-from-dcs", max_lost_writes=0)
def test_leader_cut_off_from_etcd_demotes_and_the_sync_standby_leads(drdrill):
    """A leader that loses etcd demotes itself; the synchronous standby takes the lock."""
    topology = drdrill.topology
    leader = topology.primary.name
    with drdrill.running():
        at = drdrill.faults.inject(DcsPartition(leader, topology.patroni.dcs_links(leader)))
        # Writes go on until the leader gives up on etcd (retry_timeout): wait for the new
        # leader before waiting for recovery, or recovery is "seen" before the outage.
        assert _until(lambda: topology.primary.name != leader, at + drdrill.observe), (
            f"{leader} still leads {drdrill.observe:.0f} s after losing etcd"
        )
        drdrill.await_recovery()
    result = drdrill.conclude()
    assert result.rpo is not None and result.rpo.lost_writes == 0
    assert topology.primary.name in topology.sync_standby_names()


@pytest.mark.parametrize(
    "failsafe",
    [
        pytest.param(
            False, marks=_patroni("patroni-etcd-quorum-lost", max_lost_writes=0), id="demotes"
        ),
        pytest.param(
            True,
            marks=_patroni(
                "patroni-etcd-quorum-lost-failsafe",
                max_lost_writes=0,
                patroni={"failsafe_mode": True},
            ),
            id="failsafe",
        ),
    ],
)
def test_etcd_quorum_lost(drdrill, failsafe):
    """The etcd quorum is gone for 8 s: writes stop unless failsafe_mode is on.

    Without failsafe_mode the leader demotes and writes stop until etcd is back; with
    it, the leader keeps serving, since it still reaches every member.
    """
    topology = drdrill.topology
    etcd = [m for m in topology.patroni.etcd if m.region == "primary"]
    survivor = next(m for m in topology.patroni.etcd if m.region == "dr")
    with drdrill.running():
        at = drdrill.faults.inject(DcsQuorumLoss(etcd))
        # Proof, independent of the clients, that the DCS really lost its quorum.
        lost = _until(lambda: not _etcd_healthy(survivor), at + 5.0)
        _sleep_until(at + 8.0)
        drdrill.faults.heal()
        if not failsafe:
            drdrill.await_recovery()
    assert lost, f"{survivor.name} still reported a healthy etcd cluster: no quorum loss"
    if failsafe:
        evidence = f"{survivor.name} reported the etcd cluster unhealthy (no quorum) for 8 s"
        drdrill.conclude_tolerated(evidence=evidence)
    else:
        result = drdrill.conclude()
        assert result.rpo is not None and result.rpo.lost_writes == 0
    assert topology.primary.name == "pg-primary"


@_patroni("patroni-replay-paused-then-node-loss", max_lost_writes=0)
def test_sync_standby_with_replay_paused_promotes_without_loss(drdrill):
    """The synchronous standbys stop replaying, then the leader dies: one must replay, then lead."""
    topology = drdrill.topology
    with drdrill.running():
        for name in topology.sync_standby_names():
            drdrill.faults.inject(ReplayPaused(topology.pg_nodes[name]))
        assert drdrill.workload.wait_for_acks(200), "no writes acknowledged with replay paused"
        drdrill.faults.crash(topology.primary)
        drdrill.await_recovery()
    result = drdrill.conclude()
    assert result.rpo is not None and result.rpo.lost_writes == 0
    assert topology.primary.name in topology.sync_standby_names()


@_patroni("patroni-clients-partitioned", observe=30)
def test_clients_cut_from_the_primary_get_no_failover(drdrill):
    """Clients lose their path for 5 s: Patroni sees a healthy leader and, by design, stays."""
    topology = drdrill.topology
    with drdrill.running():
        at = drdrill.faults.cut(topology.pg_endpoint)
        _sleep_until(at + 5.0)
        drdrill.faults.heal()
        drdrill.await_recovery()
    result = drdrill.conclude()
    assert result.rto is not None and result.rto.seconds is not None
    assert result.rto.seconds >= 5.0, "the outage lasts as long as the partition"
    assert topology.primary.name == "pg-primary"


NO_FAILOVER = {
    "tags": {n: {"nofailover": True} for n in ("pg-sync", "pg-sync2", "pg-dr")},
}


@_patroni(
    "patroni-negative-control-nofailover", negative_control=True, observe=20, patroni=NO_FAILOVER
)
def test_negative_control_no_standby_may_fail_over(drdrill):
    """Negative control: every standby tagged nofailover, the leader lost: the drill must go red."""
    with drdrill.running():
        drdrill.faults.crash(drdrill.topology.primary)
        drdrill.await_recovery()
    drdrill.conclude()


@_patroni("patroni-dr-region-promoted", cadence="quarterly", observe=120)
def test_dr_region_promoted_after_primary_region_lost(drdrill):
    """The primary region is lost with its etcd members; the lagging DR member is promoted.

    The DR member's WAL receiver stalls first, so it falls behind alone; then the region
    goes (leader, synchronous standby, etcd-1 and etcd-2, Redis, the object store). The
    orchestrator scores the region lost and runs the Patroni runbook (etcd re-formed in
    DR, synchronous mode off, failover to pg-dr). The writes acknowledged after the
    stall are lost; the drill must count them exactly, checked against the old leader's
    own disk.
    """
    topology = drdrill.topology
    dr = topology.pg_nodes["pg-dr"]
    with drdrill.running():
        stall = WalReceiverStalled(dr)
        drdrill.faults.inject(stall)
        assert drdrill.workload.wait_for_acks(200), "no writes acknowledged with pg-dr stalled"
        drdrill.faults.region_outage("primary")
        # The DR member's receiver restarts once its upstream is gone: nothing left to get.
        drdrill.faults.heal(stall)
        drdrill.await_recovery()
    result = drdrill.conclude()

    assert topology.primary.name == "pg-dr"
    assert {topology.redis_primary.name, topology.s3_primary.name} == {"redis-dr", "s3-dr"}
    phases = [p.name for p in result.phases]
    assert {"dcs-reform", "sync-mode-off", "failover-request"} <= set(phases), phases
    acknowledged = {w.id for w in drdrill.record.history.acknowledged()}
    on_old_leader = topology.ledger_ids_of("pg-primary")
    assert result.rpo is not None
    # The 200 writes acknowledged with the receiver stalled never reached pg-dr.
    assert result.rpo.lost_writes >= 200
    truly_lost = sorted(acknowledged & on_old_leader - _ids_through_endpoint(drdrill))
    assert list(result.rpo.lost_ids) == truly_lost


def _ids_through_endpoint(drdrill):
    from pytest_drdrill.measure.workload import read_present_ids

    return read_present_ids(drdrill.topology.pg_endpoint.dsn())


def _until(condition, deadline: float) -> bool:
    """Poll ``condition`` until it holds or the monotonic ``deadline`` passes."""
    from pytest_drdrill import timing

    while not condition():
        if timing.monotonic() > deadline:
            return False
        timing.sleep(0.05)
    return True


def _etcd_healthy(member) -> bool:
    from pytest_drdrill.topology.etcd import http_json

    try:
        return http_json(member.client_url + "/health", timeout=1.0) == {"health": "true"}
    except (OSError, ValueError):
        return False


def _sleep_until(deadline: float) -> None:
    from pytest_drdrill import timing

    timing.sleep(max(0.0, deadline - timing.monotonic()))
