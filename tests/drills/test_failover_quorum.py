"""Selection under ``ANY 1``: a synchronous standby that runs but does not answer is waited for.

A commit may have been confirmed by one synchronous standby alone, so promoting another while
it is frozen could lose it (CI2's fault schedule, seed 4039683159, lost 3 acknowledged writes
that way). A crashed standby is not waited for. Real servers: the local topology.

Heavy (local topology): run under ``flock /tmp/drdrill-heavy.lock``.
"""

from __future__ import annotations

import threading

from pytest_drdrill import timing
from pytest_drdrill.recovery.failover import PostgresFailover
from pytest_drdrill.recovery.promotion import FailoverSettings


def test_a_frozen_sync_standby_is_waited_for_a_crashed_one_is_not(topology) -> None:
    _, topo = topology
    assert topo.sync_standby_names() == ("pg-sync", "pg-sync2")
    frozen = topo.pg_nodes["pg-sync2"]
    failover = PostgresFailover(FailoverSettings(quorum_timeout=1.5))

    frozen.freeze()
    try:
        started = timing.monotonic()
        chosen = failover.select(topo)
        waited = timing.monotonic() - started
    finally:
        frozen.thaw()
    assert chosen.node.name == "pg-sync"
    assert waited >= 1.5
    assert "synchronous pg-sync2 still silent after 1.5s" in chosen.note

    # Thawed during the wait: it answers, and selection sees every synchronous standby.
    frozen.freeze()
    thaw = threading.Timer(0.5, frozen.thaw)
    thaw.start()
    try:
        chosen = PostgresFailover(FailoverSettings(quorum_timeout=30)).select(topo)
    finally:
        thaw.join()
    assert chosen.note == "" and chosen.sync

    # Every synchronous standby answering: no wait at all.
    started = timing.monotonic()
    chosen = failover.select(topo)
    assert chosen.note == "" and timing.monotonic() - started < 1.5

    # Crashed: nothing to wait for (last, as the shared topology keeps it down).
    frozen.crash()
    started = timing.monotonic()
    chosen = PostgresFailover(FailoverSettings(quorum_timeout=30)).select(topo)
    assert timing.monotonic() - started < 10
    assert (chosen.node.name, chosen.note) == ("pg-sync", "")
