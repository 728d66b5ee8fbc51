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
    """Killing the primary fails over to the sync standby within target, losing no acknowledged write."""
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
