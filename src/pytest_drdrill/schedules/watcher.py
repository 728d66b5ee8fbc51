"""The server watcher: asks every PostgreSQL server directly, many times a second, what it is.

It connects to each node's own address, never through the fault proxy, so partitions and
latency faults do not blind it, and it keeps asking fenced nodes too: whether a fenced
node still accepts writes is exactly what must be checked, not assumed. Each poll is
bounded on the client (a frozen server hangs rather than refuses) and records the
server's replies as :class:`~pytest_drdrill.schedules.invariants.Answer` objects.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Any

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.clients import first_line, postgres
from pytest_drdrill.schedules.invariants import Answer

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pytest_drdrill.topology._protocol import PostgresNode

logger = logging.getLogger(__name__)

#: One round trip tells role, read-only state, process identity and synchronous standbys.
POLL = """
SELECT pg_is_in_recovery(),
       current_setting('transaction_read_only') = 'on',
       extract(epoch FROM pg_postmaster_start_time())::float8,
       current_setting('synchronous_standby_names'),
       ARRAY(SELECT application_name FROM pg_stat_replication WHERE sync_state = 'sync')
"""


class ServerWatcher:
    """Polls every PostgreSQL server of a topology directly, in a background thread.

    Each server is polled on its own schedule, so a frozen one (whose polls time out)
    does not slow down the polls of the others.

    :param nodes: the servers, by name (a topology's ``pg_nodes``).
    :param interval: seconds between the starts of two polls of one server.
    :param timeout: seconds one poll of one server may take.

    .. versionadded:: 0.4
    """

    def __init__(
        self, nodes: Mapping[str, PostgresNode], *, interval: float = 0.1, timeout: float = 0.5
    ) -> None:
        self.dsns = {name: node.dsn(app="drdrill-watcher") for name, node in nodes.items()}
        self.interval = interval
        self.timeout = timeout
        self._answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self) -> ServerWatcher:
        """Start polling; returns once every server has been polled once."""
        self._thread = threading.Thread(target=self._run, name="drdrill-watcher", daemon=True)
        started = timing.monotonic()
        self._thread.start()
        self.wait_polls(started, 1, timeout=self.timeout + 5)
        return self

    def stop(self) -> None:
        """Stop polling and close every connection (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 10)
            self._thread = None

    def answers(self) -> tuple[Answer, ...]:
        """Every answer so far, in the order polls finished."""
        with self._lock:
            return tuple(self._answers)

    def latest(self) -> dict[str, Answer]:
        """Each server's most recent answer (a reply or a silence)."""
        with self._lock:
            answers = list(self._answers)
        return {a.node: a for a in answers}

    def wait_polls(self, after: float, count: int, *, timeout: float) -> bool:
        """Wait until every server was polled ``count`` times since ``after`` (answered or not)."""
        deadline = timing.monotonic() + timeout
        while timing.monotonic() < deadline:
            with self._lock:
                sent = [a.node for a in self._answers if a.sent >= after]
            if all(sent.count(name) >= count for name in self.dsns):
                return True
            if self._thread is None or not self._thread.is_alive():
                return False
            timing.sleep(0.01)
        return False

    # --- the loop -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._watch())
        except Exception as exc:  # reported by the drill: without the watcher nothing is proven
            logger.exception("server watcher crashed")
            self.error = f"{type(exc).__name__}: {exc}"

    async def _watch(self) -> None:
        await asyncio.gather(*(self._follow(name) for name in self.dsns))

    async def _follow(self, name: str) -> None:
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            while not self._stop.is_set():
                started = timing.monotonic()
                answer, conn = await self._poll(name, conn)
                with self._lock:
                    self._answers.append(answer)
                elapsed = timing.monotonic() - started
                await asyncio.sleep(max(0.0, self.interval - elapsed))
        finally:
            if conn is not None:
                await postgres.close(conn)

    async def _poll(
        self, name: str, conn: psycopg.AsyncConnection[Any] | None
    ) -> tuple[Answer, psycopg.AsyncConnection[Any] | None]:
        sent = timing.monotonic()
        try:
            if conn is None or conn.closed:
                conn = await postgres.connect(self.dsns[name], self.timeout)
            remaining = max(0.001, self.timeout - (timing.monotonic() - sent))
            cursor = await postgres.execute(conn, POLL, timeout=remaining)
            row = await cursor.fetchone()
        except (TimeoutError, psycopg.Error, OSError) as exc:
            if conn is not None:
                await postgres.close(conn)
            return Answer(name, sent, timing.monotonic(), error=first_line(exc)), None
        assert row is not None
        in_recovery, read_only, started, sync_names, in_sync = row
        answer = Answer(
            name,
            sent,
            timing.monotonic(),
            in_recovery=bool(in_recovery),
            read_only=bool(read_only),
            started=float(started),
            sync_names=str(sync_names),
            in_sync=tuple(in_sync),
        )
        return answer, conn
