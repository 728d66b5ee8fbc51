"""Replication lag of every replica, in bytes and seconds, for the drill's timeline.

PostgreSQL: the primary's current WAL position minus what the standby has replayed,
read from both nodes directly, so a standby whose replication path is cut still gets a
figure (``pg_stat_replication`` forgets a disconnected standby). Seconds are the age of
the last replayed transaction, 0 when nothing is outstanding. Redis: the primary's
replication offset minus the replica's. Object storage: the replicator's own lag.
A replica that cannot be read in time yields no sample rather than a guess.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.clients import postgres
from pytest_drdrill.clients.postgres import parse_lsn
from pytest_drdrill.results import LagSample

if TYPE_CHECKING:
    from pytest_drdrill.topology._protocol import PostgresNode, RedisNode, Topology

#: The requirements' alert threshold for a lagging replica.
LAG_THRESHOLD_BYTES = 16 * 1024 * 1024


async def _one_row(dsn: str, sql: str, timeout: float) -> tuple[object, ...]:
    conn = await postgres.connect(dsn, timeout)
    try:
        cur = await postgres.execute(conn, sql, timeout=timeout)
        row = await cur.fetchone()
    finally:
        await postgres.close(conn)
    assert row is not None
    return tuple(row)


async def postgres_lag(primary: PostgresNode, standby: PostgresNode, timeout: float) -> LagSample:
    """One standby's lag behind ``primary``.

    :raises psycopg.Error | TimeoutError | OSError: when either node does not answer.
    """
    (current,), (replay, age) = await asyncio.gather(
        _one_row(primary.dsn(app="drdrill-lag"), "SELECT pg_current_wal_lsn()::text", timeout),
        _one_row(
            standby.dsn(app="drdrill-lag"),
            "SELECT pg_last_wal_replay_lsn()::text, "
            "extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8",
            timeout,
        ),
    )
    behind = max(0, parse_lsn(str(current)) - parse_lsn(str(replay)))
    seconds = 0.0 if behind == 0 else float(age) if age is not None else None  # type: ignore[arg-type]
    return LagSample(
        timing.monotonic(), "postgres", standby.name, behind, seconds,
        behind < LAG_THRESHOLD_BYTES,
    )  # fmt: skip


async def redis_lag(primary: RedisNode, replica: RedisNode, timeout: float) -> LagSample:
    """The replica's replication offset behind the primary's; unknown while its link is down."""
    from pytest_drdrill.recovery.redis import lag_bytes

    behind = await asyncio.to_thread(lag_bytes, primary.url(), replica.url(), timeout=timeout)
    return LagSample(
        timing.monotonic(), "redis", replica.name, behind,
        0.0 if behind == 0 else None,
        behind is not None and behind < LAG_THRESHOLD_BYTES,
    )  # fmt: skip


async def sample_lag(topology: Topology, timeout: float) -> list[LagSample]:
    """Sample every replica's lag at once; replicas that do not answer are left out."""
    jobs = []
    primary = topology.primary
    if not primary.fenced:
        for standby in topology.standbys():
            jobs.append(postgres_lag(primary, standby, timeout))
    redis_primary = topology.redis_endpoint.target
    for name in topology.redis_links:
        replica = topology.redis_nodes[name]
        if replica is not redis_primary and not replica.fenced and not redis_primary.fenced:
            jobs.append(redis_lag(redis_primary, replica, timeout))  # type: ignore[arg-type]
    results = await asyncio.gather(*jobs, return_exceptions=True)
    samples = [r for r in results if isinstance(r, LagSample)]
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, Exception):
            raise r  # cancellation, KeyboardInterrupt: not a lagging replica
    # A running stack may replicate its objects by itself: no path of ours to sample then.
    copying = getattr(topology, "storage_link", None)
    if copying is not None and topology.s3_endpoint.target.region == "primary":
        seconds = topology.storage_replication_lag()
        samples.append(LagSample(timing.monotonic(), "s3", copying.source, None, seconds, True))
    return samples
