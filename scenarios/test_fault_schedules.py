"""Quarterly: hypothesis-drawn fault schedules against the two-region topology.

Each schedule mixes crashes, freezes, partitions, latency, heals and waits, against a
fresh topology with the reference monitor and failover. Throughout, the servers are
asked directly whether two of them accept writes at once; at the end, every write the
client saw acknowledged must still be there when every handover went to an in-sync
synchronous standby, and writes must succeed again within the tier's target after the
last heal. A failing schedule is shrunk and printed; its seed replays it.
"""

from __future__ import annotations

import pytest


@pytest.mark.drdrill(
    cadence="quarterly",
    tier="tier_1_critical",
    data="critical_user_data",
    scenario="fault-schedules",
    postgres_failover=("reference",),  # the schedules drive the reference failover's steps
    max_lost_writes=0,  # synchronous replication: no acknowledged write may be lost
)
def test_fault_schedules_keep_the_invariants(drdrill_schedules):
    """Random schedules never cause split brain, loss across sync handovers, or no recovery."""
    # On 2 cores about 7 s a schedule locally and 13 s in containers: one to two minutes.
    # Bounded for CI's 20 minutes; a game day with time to spare raises max_examples.
    result = drdrill_schedules.run(max_examples=6, steps=5)
    assert drdrill_schedules.outcomes, "no schedule was played"
    assert all(outcome.ok for outcome in drdrill_schedules.outcomes), result.reason
