"""The Redis ledger: one member of the set ``drdrill:ledger`` per acknowledged write.

Writes go over bare connections from :mod:`pytest_drdrill.clients.redis` (which says why
the high-level client would blur whether a write was sent), one step at a time, each
bounded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis
from redis.exceptions import BusyLoadingError, RedisError, ResponseError

from pytest_drdrill import timing
from pytest_drdrill.clients import first_line
from pytest_drdrill.clients.redis import close, command, connect, is_dirty, sync_client
from pytest_drdrill.ledger import LEDGER_KEY
from pytest_drdrill.measure._protocol import Indeterminate, NotApplied

if TYPE_CHECKING:
    from redis.asyncio.connection import AbstractConnection


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
