"""The Redis ledger: one member of the set ``drdrill:ledger`` per acknowledged write.

The client talks to a bare :class:`redis.asyncio.Connection` rather than a
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
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import BusyLoadingError, RedisError, ResponseError

from pytest_drdrill import timing
from pytest_drdrill.measure._protocol import Indeterminate, NotApplied
from pytest_drdrill.topology.redis import sync_client

LEDGER_KEY = "drdrill:ledger"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type when it has none."""
    return (str(exc).splitlines() or [type(exc).__name__])[0]


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
        retry=Retry(NoBackoff(), 0),
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


class RedisLedger:
    """Writes ledger members with ``SADD`` and probes with ``PING`` through a Redis endpoint.

    :param url: the service endpoint's ``redis://`` URL (never a node directly).

    .. versionadded:: 0.2
    """

    service = "redis"

    def __init__(self, url: str) -> None:
        self.url = url
        self._writer: AbstractConnection | None = None
        self._prober: AbstractConnection | None = None

    async def write(self, op_id: int, timeout: float) -> None:
        """``SADD drdrill:ledger op_id``; the reply is the acknowledgement.

        :raises NotApplied: when no connection could be made or the server replied with an
            error (``READONLY`` on a replica, ``LOADING``, ...).
        :raises Indeterminate: when the command was sent and no reply came in time or the
            connection broke.
        """
        started = timing.monotonic()
        if self._writer is not None and await is_dirty(self._writer):
            await self._drop_writer()
        if self._writer is None:
            try:
                self._writer = await connect(self.url, timeout)
            except (RedisError, OSError, TimeoutError) as exc:
                raise NotApplied(f"connect: {first_line(exc)}") from exc
        remaining = max(0.001, timeout - (timing.monotonic() - started))
        try:
            await command(self._writer, "SADD", LEDGER_KEY, op_id, timeout=remaining)
        except (ResponseError, BusyLoadingError) as exc:
            # The server answered with an error: the member was not added. redis-py strips
            # known error codes (READONLY, LOADING) into the exception type: keep it.
            await self._drop_writer()
            raise NotApplied(f"{type(exc).__name__}: {first_line(exc)}") from exc
        except (RedisError, OSError, TimeoutError) as exc:
            # The command may have reached the server before the connection died.
            await self._drop_writer()
            raise Indeterminate(first_line(exc)) from exc

    async def _drop_writer(self) -> None:
        if self._writer is not None:
            await close(self._writer)
            self._writer = None

    async def probe(self, timeout: float) -> None:
        """``PING`` on a connection of its own, reconnecting after a failure.

        :raises RuntimeError: when the endpoint does not answer ``PONG`` in time.
        """
        started = timing.monotonic()
        try:
            if self._prober is None or await is_dirty(self._prober):
                if self._prober is not None:
                    await close(self._prober)
                self._prober = await connect(self.url, timeout)
            remaining = max(0.001, timeout - (timing.monotonic() - started))
            reply = await command(self._prober, "PING", timeout=remaining)
        except (RedisError, OSError, TimeoutError) as exc:
            if self._prober is not None:
                await close(self._prober)
                self._prober = None
            raise RuntimeError(first_line(exc)) from exc
        if reply not in (b"PONG", "PONG"):
            raise RuntimeError(f"unexpected reply to PING: {reply!r}")

    async def aclose(self) -> None:
        """Close both connections; never raises."""
        for conn in (self._writer, self._prober):
            if conn is not None:
                await close(conn)
        self._writer = self._prober = None

    def read_ids(self, *, timeout: float = 10.0) -> set[int]:
        """Every id in the ledger, read through the endpoint."""
        return read_present_ids(self.url, timeout=timeout)


def read_present_ids(url: str, *, timeout: float = 10.0) -> set[int]:
    """Read every id in the ledger through ``url`` (the service endpoint after recovery).

    Connection failures and ``LOADING`` replies are retried until ``timeout``.

    :raises redis.RedisError: when the endpoint cannot be read within ``timeout``.
    """
    deadline = timing.monotonic() + timeout
    while True:
        try:
            with sync_client(url, timeout=2.0) as client:
                return {int(member) for member in client.smembers(LEDGER_KEY)}
        except (redis.ConnectionError, redis.TimeoutError):
            if timing.monotonic() > deadline:
                raise
            timing.sleep(0.05)
