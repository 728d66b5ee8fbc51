"""Two-region drills: partitions, latency, Redis, object storage and a whole-region outage.

Every service is measured from its own client's history: PostgreSQL rows, Redis set
members and objects acknowledged through each service endpoint. The reference
orchestrator decides with the requirements' weighted monitors whether a single service or the
whole region fails over.
"""

from __future__ import annotations

import pytest

from pytest_drdrill.topology.proxied import REDIS_DR

#: Drills of the reference failover's own behaviour; see the README's Patroni section for
#: what runs under --drill-postgres-failover=patroni instead.
REFERENCE_ONLY = ("reference",)


@pytest.mark.drdrill(
    cadence="monthly",
    tier="tier_1_critical",
    data="critical_user_data",
    scenario="partition-clients-from-primary",
    postgres_failover=REFERENCE_ONLY,
    max_lost_writes=0,
)
def test_partition_between_clients_and_primary_triggers_failover(drdrill):
    """Clients cut off from a live primary: the orchestrator fails over within the region."""
    with drdrill.running():
        drdrill.faults.partition(["clients"], ["pg-primary"])
        drdrill.await_recovery()
    result = drdrill.conclude()
    assert drdrill.topology.primary.name in ("pg-sync", "pg-sync2")
    assert [p.name for p in result.phases].count("detection") == 1


@pytest.mark.drdrill(
    cadence="monthly",
    tier="tier_1_critical",
    data="critical_user_data",
    scenario="latency-200ms-no-false-failover",
    postgres_failover=REFERENCE_ONLY,
)
def test_200ms_latency_on_the_primary_does_not_fail_over(drdrill):
    """200 ms on the primary's path slows clients down but must not trigger a failover."""
    with drdrill.running():
        drdrill.faults.latency(drdrill.topology.client_paths["pg-primary"], 200)
        drdrill.workload.wait_for_acks(10, timeout=10)
        drdrill.faults.heal()
    drdrill.conclude_no_failover(min_added_ms=150)
    assert drdrill.topology.primary.name == "pg-primary"


@pytest.mark.drdrill(
    cadence="monthly",
    tier="tier_1_critical",
    data="critical_user_data",
    scenario="redis-primary-crash",
    service="redis",
    # The reference orchestrator's own Redis failover; Sentinel's is in test_redis_sentinel.py.
    redis_failover="orchestrator",
)
def test_redis_primary_crash_promotes_the_dr_replica(drdrill):
    """Losing the Redis primary promotes its DR replica; lost session writes are counted."""
    with drdrill.running():
        drdrill.faults.crash(drdrill.topology.redis_primary)
        drdrill.await_recovery()
    result = drdrill.conclude()
    assert drdrill.topology.redis_primary.name == "redis-dr"
    postgres = next(s for s in result.services if s.service == "postgres")
    assert not postgres.rto.effect_seen, "a Redis crash must not disturb PostgreSQL"


@pytest.mark.drdrill(
    cadence="monthly",
    function="video_upload",
    scenario="storage-loss-primary-region",
    service="s3",
)
def test_storage_loss_in_the_primary_region(drdrill):
    """The primary region's object store dies with its data; storage moves to the DR region.

    Objects acknowledged but not yet replicated are lost; each is counted with its age.
    The requirements' weights (storage 1 + application 2 = 3) make this a region failover.
    """
    topology = drdrill.topology
    with drdrill.running():
        drdrill.faults.storage_loss("primary")
        drdrill.await_recovery()
    result = drdrill.conclude()
    assert topology.s3_primary.name == "s3-dr"
    s3 = next(s for s in result.services if s.service == "s3")
    assert s3.rpo is not None and len(s3.lost_ages) == s3.rpo.lost_writes


def _whole_region_moves_to_dr(drdrill):
    """Cut off and crash the primary region; every service must end up served from DR."""
    topology = drdrill.topology
    with drdrill.running():
        drdrill.faults.region_outage("primary")
        drdrill.await_recovery()
    result = drdrill.conclude()
    assert {topology.primary.name, topology.redis_primary.name, topology.s3_primary.name} == {
        "pg-dr",
        REDIS_DR,
        "s3-dr",
    }
    assert {s.service for s in result.services if s.rto.effect_seen} == {"postgres", "redis", "s3"}
    return result


@pytest.mark.drdrill(
    cadence="quarterly",
    function="user_authentication",
    scenario="primary-region-outage",
    postgres_failover=REFERENCE_ONLY,
)
def test_full_primary_region_outage(drdrill):
    """Every service of the primary region is cut off and crashed at once: all move to DR."""
    result = _whole_region_moves_to_dr(drdrill)
    assert {f.function for f in result.functions} >= {"user_authentication", "video_upload"}


@pytest.mark.drdrill(
    cadence="quarterly",
    function="user_authentication",
    scenario="primary-region-outage-sentinel",
    redis_failover="sentinel",
    postgres_failover=REFERENCE_ONLY,
)
def test_region_outage_takes_the_sentinels_and_dr_redis_is_promoted(drdrill):
    """The region's Sentinels die with it: the region failover promotes the DR Redis node."""
    result = _whole_region_moves_to_dr(drdrill)
    topology = drdrill.topology
    with topology.redis_nodes[REDIS_DR].client() as client:
        assert client.info("replication")["role"] == "master"
    assert not any(s.is_running() for s in topology.sentinels)
    assert not [p for p in result.phases if "Sentinel moved" in (p.detail or "")]
