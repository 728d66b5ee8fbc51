"""Redis recovery steps: a bounded health check, promotion, repointing, replication lag.

Promotion is ``REPLICAOF NO ONE``, which Redis applies at once; it is still confirmed
by polling ``ROLE``, as the PostgreSQL failover polls after ``pg_promote(false)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis

from pytest_drdrill import timing
from pytest_drdrill.clients import first_line
from pytest_drdrill.clients.redis import close, command, connect, sync_client
from pytest_drdrill.errors import FailoverFailed
from pytest_drdrill.recovery.health import Health

if TYPE_CHECKING:
    from redis.asyncio.connection import AbstractConnection

    from pytest_drdrill.topology._protocol import RedisNode


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def check_redis(url: str, timeout: float) -> Health:
    """Connect, ask ``ROLE``, and give up after ``timeout`` seconds in all.

    :param url: the node or endpoint to check.
    :param timeout: the limit, enforced on the client so a frozen server cannot hold it.
    :returns: a healthy result only when the server answers as a master; ``in_recovery``
        is true when it answers as a replica (or a sentinel).
    """
    started = timing.monotonic()
    conn: AbstractConnection | None = None
    try:
        conn = await connect(url, timeout)
        remaining = max(0.001, timeout - (timing.monotonic() - started))
        reply = await command(conn, "ROLE", timeout=remaining)
        role = _text(reply[0])
    except TimeoutError:
        elapsed = timing.monotonic() - started
        return Health(
            ok=False, started=started, seconds=elapsed, error=f"no answer within {timeout}s"
        )
    except (redis.RedisError, OSError) as exc:
        elapsed = timing.monotonic() - started
        return Health(ok=False, started=started, seconds=elapsed, error=first_line(exc))
    finally:
        if conn is not None:
            await close(conn)
    replica = role != "master"
    error = f"role {role}: not a primary" if replica else ""
    return Health(not replica, started, timing.monotonic() - started, replica, error)


def promote(node: RedisNode, *, timeout: float = 5.0) -> None:
    """Make ``node`` a master with ``REPLICAOF NO ONE`` and wait until ``ROLE`` says so.

    :param node: the replica to promote.
    :param timeout: how long promotion may take.
    :raises FailoverFailed: when the node refuses, cannot be reached, or is not a master
        within ``timeout``.
    """
    deadline = timing.monotonic() + timeout
    role = "unknown"
    try:
        with sync_client(node.url(), timeout=timeout) as client:
            client.execute_command("REPLICAOF", "NO", "ONE")
            while True:
                role = _text(client.execute_command("ROLE")[0])
                if role == "master":
                    return
                if timing.monotonic() > deadline:
                    break
                timing.sleep(0.005)
    except redis.RedisError as exc:
        raise FailoverFailed(
            f"promoting {node.name} ({node.address}) with REPLICAOF NO ONE failed: "
            f"{first_line(exc)}"
        ) from exc
    raise FailoverFailed(
        f"{node.name} ({node.address}) still has role {role} {timeout}s after REPLICAOF NO ONE"
    )


def replicate_from(node: RedisNode, address: str, *, timeout: float = 5.0) -> None:
    """Point ``node`` at a new primary with ``REPLICAOF host port`` (it resyncs on its own).

    :param node: the node to turn into a replica.
    :param address: ``host:port`` of the primary, or of the link in front of it.
    :param timeout: limit of the command.
    :raises FailoverFailed: when the node refuses or cannot be reached.
    """
    host, _, port = address.rpartition(":")
    try:
        with sync_client(node.url(), timeout=timeout) as client:
            client.execute_command("REPLICAOF", host, port)
    except redis.RedisError as exc:
        raise FailoverFailed(
            f"REPLICAOF {host} {port} on {node.name} ({node.address}) failed: {first_line(exc)}"
        ) from exc


def replication_offsets(
    primary_url: str, replica_url: str, *, timeout: float = 2.0
) -> tuple[int, int | None]:
    """Read how far the primary has written and how far the replica has processed.

    :param primary_url: the primary.
    :param replica_url: the replica.
    :param timeout: limit of each read.
    :returns: ``(master_repl_offset, slave_repl_offset)``; the second is ``None`` when the
        replica's link to its primary is not up.
    :raises redis.RedisError: when either cannot be read.
    """
    with sync_client(primary_url, timeout=timeout) as client:
        primary = int(client.info("replication")["master_repl_offset"])
    with sync_client(replica_url, timeout=timeout) as client:
        info = client.info("replication")
    if info.get("role") != "slave" or info.get("master_link_status") != "up":
        return primary, None
    return primary, int(info["slave_repl_offset"])


def lag_bytes(primary_url: str, replica_url: str, *, timeout: float = 2.0) -> int | None:
    """Bytes of the replication stream the replica has not processed yet.

    :returns: the lag, or ``None`` when the replica is not connected to its primary.
    :raises redis.RedisError: when either cannot be read.
    """
    primary, replica = replication_offsets(primary_url, replica_url, timeout=timeout)
    return None if replica is None else max(0, primary - replica)
