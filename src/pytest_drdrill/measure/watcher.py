"""The server watcher: asks every PostgreSQL server directly, many times a second, what it is.

It connects to each node's own address, never through the fault proxy, so partitions and
latency faults do not blind it, and it keeps asking fenced nodes too: whether a fenced
node still accepts writes is exactly what must be checked, not assumed. Each poll is
bounded on the client (a frozen server hangs rather than refuses) and records the
server's replies as :class:`~pytest_drdrill.measure.split_brain.Answer` objects.

Every drill runs one (:func:`watch_directly`), and so does every fault schedule.

.. versionchanged:: 0.5 moved here from ``schedules.watcher``, so every drill can use it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from pytest_drdrill import timing
from pytest_drdrill.clients import first_line, postgres
from pytest_drdrill.measure.split_brain import Answer, summarize

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pytest_drdrill.results import SplitBrainWatch
    from pytest_drdrill.topology._protocol import PostgresNode, Topology

__all__ = ["POLL", "ServerWatcher", "direct_nodes", "watch_directly"]

logger = logging.getLogger(__name__)

#: One round trip tells role, read-only state, process identity and synchronous standbys.
POLL = """
SELECT pg_is_in_recovery(),
       current_setting('transaction_read_only') = 'on',
       extract(epoch FROM pg_postmaster_start_time())::float8,
       current_setting('synchronous_standby_names'),
       ARRAY(SELECT application_name FROM pg_stat_replication
             WHERE sync_state IN ('sync', 'quorum'))
"""


class ServerWatcher:
    """Polls every PostgreSQL server of a topology directly, in a background thread.

    Each server is polled on its own schedule, so a frozen one (whose polls time out)
    does not slow down the polls of the others.

    :param nodes: the servers, by name (a topology's ``pg_nodes``).
    :param interval: seconds between the starts of two polls of one server.
    :param timeout: seconds one poll of one server may take.
    :param unwatched: the topology's servers it cannot ask directly, each as ``name: why``
        (reported with its evidence, never judged).

    .. versionadded:: 0.4
    .. versionchanged:: 0.5 ``unwatched`` and :meth:`summary`.
    """

    def __init__(
        self,
        nodes: Mapping[str, PostgresNode],
        *,
        interval: float = 0.1,
        timeout: float = 0.5,
        unwatched: Sequence[str] = (),
    ) -> None:
        self.dsns = {name: node.dsn(app="drdrill-watcher") for name, node in nodes.items()}
        self.unwatched = tuple(unwatched)
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

    def summary(self) -> SplitBrainWatch:
        """Polls per server and every split brain seen so far, for the drill's result."""
        return summarize(
            self.answers(), watched=self.dsns, error=self.error, unwatched=self.unwatched
        )

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


def direct_nodes(topology: Topology) -> tuple[dict[str, PostgresNode], list[str]]:
    """Split the topology's PostgreSQL servers into those asked directly and the others.

    A server whose connection address is one of the fault proxy's listeners would be
    asked through a fault path (a stack file whose ``address`` names a proxied path, for
    example): a partition would blind the watcher exactly when it matters, so such a
    server is left out and named, with the path, instead of being judged.

    :returns: the servers to watch by name, and ``name: why`` for each one left out.

    .. versionadded:: 0.5
    """
    paths = {(str(link.host), int(link.port)): link.label for link in topology.links()}
    direct: dict[str, PostgresNode] = {}
    unwatched: list[str] = []
    for name, node in topology.pg_nodes.items():
        info = conninfo_to_dict(node.dsn())
        address = (str(info.get("host", "")), int(info.get("port") or 5432))
        label = paths.get(address)
        if label is None:
            direct[name] = node
        else:
            unwatched.append(
                f"{name}: its address {address[0]}:{address[1]} is the fault proxy's path "
                f"{label!r}, so it cannot be asked directly; give the server's own address"
            )
    return direct, unwatched


def watch_directly(topology: Topology) -> ServerWatcher:
    """Start a :class:`ServerWatcher` over every server of ``topology`` it can ask directly.

    .. versionadded:: 0.5
    """
    direct, unwatched = direct_nodes(topology)
    return ServerWatcher(direct, unwatched=unwatched).start()
