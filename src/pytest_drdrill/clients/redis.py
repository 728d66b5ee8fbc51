"""Redis clients: a bounded blocking client for control commands, bare async connections.

The workload talks to a bare :class:`redis.asyncio.Connection` rather than a
:class:`redis.asyncio.Redis`, because the outcome of a write depends on whether the
command was sent, and the high-level client connects lazily inside the command and
retries. Here connecting is a step of its own (a failure there is certainly not
applied), redis-py never retries, the ``CLIENT SETINFO`` handshake is off so connecting
sends nothing, and every step is bounded with :func:`asyncio.wait_for`: a frozen server
accepts TCP connections (the kernel completes the handshake) and then never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import redis
from redis.asyncio.connection import AbstractConnection, Connection, parse_url
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry


def sync_client(url: str, *, timeout: float) -> redis.Redis:
    """A blocking client for control commands: bounded by ``timeout``, never retrying.

    :param url: a ``redis://`` URL.
    :param timeout: limit of each connect, send and read, in seconds.
    """
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
        driver_info=None,
    )


async def connect(url: str, timeout: float) -> AbstractConnection:
    """Open one connection to ``url``, giving up after ``timeout`` seconds.

    Nothing is sent on a URL without password or database: an error here means no
    command reached the server.

    :raises TimeoutError: when the connection is not established in time.
    :raises redis.RedisError: when it is refused.
    """
    kwargs: dict[str, Any] = dict(parse_url(url))
    connection_class = kwargs.pop("connection_class", Connection)
    conn: AbstractConnection = connection_class(
        **kwargs,
        # One wait_for deadline bounds connect, send and read together; socket timeouts
        # would bound each step separately and not the send at all.
        socket_timeout=None,
        socket_connect_timeout=None,
        retry=AsyncRetry(NoBackoff(), 0),
        driver_info=None,
    )
    try:
        await asyncio.wait_for(conn.connect(), timeout)
    except BaseException:
        await close(conn)
        raise
    return conn


async def command(conn: AbstractConnection, *args: str | int, timeout: float) -> Any:
    """Send one command and read its reply, giving up after ``timeout`` seconds.

    :raises TimeoutError: when no reply came in time (the connection is then closed).
    :raises redis.ResponseError: when the server replied with an error.
    :raises redis.RedisError: when the connection broke.
    """

    async def roundtrip() -> Any:
        await conn.send_command(*args, check_health=False)
        return await conn.read_response()

    try:
        return await asyncio.wait_for(roundtrip(), timeout)
    except TimeoutError:
        await close(conn)
        raise TimeoutError(f"no answer within {timeout}s") from None


async def close(conn: AbstractConnection) -> None:
    """Close without waiting on a server that may be frozen; never raises."""
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(conn.disconnect(nowait=True), 1.0)


async def is_dirty(conn: AbstractConnection) -> bool:
    """Whether an idle connection has been closed by its peer (or holds stray data).

    Checked before a write so that a connection a crashed server or a repointed proxy
    closed is replaced first: the write then counts as not applied instead of
    indeterminate.
    """
    try:
        return bool(await conn.can_read())
    except (RedisError, OSError):
        return True
