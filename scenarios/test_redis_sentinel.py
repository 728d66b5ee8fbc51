"""Redis Sentinel drills: the primary region's three Sentinels (quorum 2) decide Redis failovers.

Sentinel, not the drill, detects the lost Redis primary, agrees with its peers, elects a
leader and promotes one of the primary region's replicas; the drill only follows it,
repointing the Redis endpoint when Sentinel announces the new master. The outage and the
acknowledged session writes lost are measured from the Redis client's own history, never
from what Sentinel reports. The DR node (``replica-priority 0``) is left to the region
failover. Each drill forces Sentinel with ``redis_failover="sentinel"``, whatever
``--drill-redis-failover`` says. The primary-region outage with the Sentinel group is in
``test_two_regions.py``, beside the outage without it.
"""

from __future__ import annotations

import pytest

from pytest_drdrill.topology.proxied import REDIS_DR
from pytest_drdrill.topology.sentinel import DOWN_AFTER_MS

#: The reference PostgreSQL failover: these drills are about Redis.
REFERENCE_ONLY = ("reference",)


def _role(node) -> str:
    with node.client() as client:
        return str(client.info("replication")["role"])


@pytest.mark.drdrill(
    cadence="monthly",
    function="user_authentication",
    scenario="redis-primary-crash-sentinel",
    service="redis",
    redis_failover="sentinel",
    postgres_failover=REFERENCE_ONLY,
    observe=20,
)
def test_sentinel_promotes_a_replica_inside_the_primary_region(drdrill):
    """Losing the Redis primary: Sentinel promotes an in-region replica; DR stays a replica."""
    topology = drdrill.topology
    with drdrill.running():
        drdrill.faults.crash(topology.redis_primary)
        drdrill.await_recovery()
    result = drdrill.conclude()
    serving = topology.redis_primary
    assert serving.name.startswith("redis-replica-") and serving.region == "primary"
    assert _role(serving) == "master"
    assert _role(topology.redis_nodes[REDIS_DR]) == "slave"
    (repoint,) = [p for p in result.phases if p.name == "repoint"]
    assert "Sentinel moved the master" in repoint.detail
    redis = next(s for s in result.services if s.service == "redis")
    # Measured from the session client's history: at least Sentinel's down-after.
    assert redis.rto.effect_seen and redis.rto.seconds is not None
    assert redis.rto.seconds >= DOWN_AFTER_MS / 1000
    assert redis.rpo is not None


@pytest.mark.drdrill(
    cadence="monthly",
    function="user_authentication",
    scenario="redis-sentinel-negative-control-no-quorum",
    service="redis",
    redis_failover="sentinel",
    postgres_failover=REFERENCE_ONLY,
    negative_control=True,
    observe=8,
)
def test_negative_control_sentinels_without_quorum_go_red(drdrill):
    """Negative control: two of three Sentinels frozen, no quorum, no failover: must go red."""
    topology = drdrill.topology
    with drdrill.running():
        for sentinel in topology.sentinels[1:]:
            drdrill.faults.freeze(sentinel)
        drdrill.faults.crash(topology.redis_primary)
        drdrill.await_recovery()
    drdrill.conclude()
