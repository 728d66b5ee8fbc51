"""The reference failover for PostgreSQL: fence, select, promote, repoint, validate.

It follows the seed's replication manager, with the steps it leaves implicit made
explicit: the old primary is fenced before anything is promoted, so two writable
primaries never coexist; promotion uses the non-waiting ``pg_promote(false)`` and polls
(``pg_promote(true)`` and ``pg_ctl promote -w`` poll every 100 ms); validation writes and
reads through the service endpoint, the same path clients use. It runs unchanged on
every backend: it only uses SQL, the node's ``fence()`` and the proxy links.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import TYPE_CHECKING

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.errors import FailoverFailed

if TYPE_CHECKING:
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.recovery.monitor import Detection
    from pytest_drdrill.topology._protocol import PostgresNode, Topology

import pytest


@dataclasses.dataclass(frozen=True)
class FailoverSettings:
    """Bounds of the reference failover's waits, in seconds.

    :param catchup_timeout: how long to wait for the chosen standby to replay what it received.
    :param promote_timeout: how long promotion may take.
    :param validate_timeout: how long validation through the endpoint may take.
    """

    catchup_timeout: float = 5.0
    promote_timeout: float = 10.0
    validate_timeout: float = 5.0


@dataclasses.dataclass(frozen=True)
class StandbyState:
    """What a standby reported during selection."""

    node: PostgresNode
    sync: bool
    receive_lsn: int
    replay_lsn: int


def _lsn(text: str | None) -> int:
    if not text:
        return 0
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def _query(node: PostgresNode, sql: str) -> tuple[object, ...]:
    with psycopg.connect(
        node.dsn(app="drdrill-failover"), autocommit=True, connect_timeout=2
    ) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return tuple(row)


def _fetch_one(conn: psycopg.Connection[tuple[object, ...]], sql: str) -> object:
    row = conn.execute(sql).fetchone()
    return row[0] if row else None


class ReferenceFailover:
    """The built-in ``pytest_drdrill_failover`` implementation, registered as a plugin.

    It is a ``trylast`` implementation: any conftest implementation that returns a
    result replaces it.

    .. versionadded:: 0.1
    """

    def __init__(self, settings: FailoverSettings | None = None) -> None:
        self.settings = settings or FailoverSettings()

    @pytest.hookimpl(trylast=True)
    def pytest_drdrill_failover(
        self, service: str, topology: Topology, record: DrillRecord, detection: Detection
    ) -> str | None:
        """Fail the PostgreSQL service over to the best standby; return its name."""
        if service != "postgres":
            return None
        old = topology.primary
        with record.phase("fencing") as note:
            old.fence()
            note.detail = f"{old.name} killed and barred from restarting"
        with record.phase("selection") as note:
            chosen = self.select(topology)
            note.detail = (
                f"{chosen.node.name} ({'sync' if chosen.sync else 'async'}) "
                f"receive {chosen.receive_lsn:X} replay {chosen.replay_lsn:X}"
            )
            note.detail += self._catch_up(chosen)
        with record.phase("promotion") as note:
            self.promote(chosen.node)
            note.detail = f"{chosen.node.name} promoted"
        with record.phase("repoint") as note:
            topology.pg_endpoint.repoint(chosen.node)
            moved = []
            for name, link in topology.replication_links.items():
                if name != chosen.node.name and not topology.pg_nodes[name].fenced:
                    link.repoint(chosen.node)
                    moved.append(name)
            note.detail = (
                f"endpoint -> {chosen.node.name}; "
                f"replication of {moved or 'none'} -> {chosen.node.name}"
            )
        try:
            with record.phase("validation") as note:
                note.detail = self.validate(topology)
        except Exception as exc:
            with record.phase("rollback") as note:
                topology.pg_endpoint.repoint(old)
                note.detail = f"endpoint restored to {old.name}; service left down"
            raise FailoverFailed(
                f"validation through the service endpoint failed after promoting "
                f"{chosen.node.name}: {exc}",
                record.phases,
            ) from exc
        return chosen.node.name

    def select(self, topology: Topology) -> StandbyState:
        """Pick the standby to promote: synchronous ones first, then the most WAL received.

        :raises FailoverFailed: when no standby answers.
        """
        states: list[StandbyState] = []
        errors: list[str] = []
        sync_names = topology.sync_standby_names()
        for node in topology.standbys():
            try:
                in_recovery, receive, replay = _query(
                    node,
                    "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, "
                    "pg_last_wal_replay_lsn()::text",
                )
            except psycopg.Error as exc:
                errors.append(f"{node.name}: {exc}")
                continue
            if not in_recovery:
                errors.append(f"{node.name}: not in recovery")
                continue
            states.append(
                StandbyState(node, node.name in sync_names, _lsn(str(receive)), _lsn(str(replay)))
            )
        if not states:
            raise FailoverFailed(f"no standby can be promoted: {'; '.join(errors) or 'none left'}")
        return max(states, key=lambda s: (s.sync, s.receive_lsn))

    def _catch_up(self, chosen: StandbyState) -> str:
        """Wait, bounded, until the standby has replayed all it received."""
        deadline = timing.monotonic() + self.settings.catchup_timeout
        replay = chosen.replay_lsn
        if replay >= chosen.receive_lsn:
            return "; caught up"
        dsn = chosen.node.dsn(app="drdrill-failover")
        with psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn:
            while replay < chosen.receive_lsn:
                if timing.monotonic() > deadline:
                    return (
                        f"; catch-up wait of {self.settings.catchup_timeout}s expired at replay "
                        f"{replay:X} < receive {chosen.receive_lsn:X}"
                    )
                timing.sleep(0.005)
                replay = _lsn(str(_fetch_one(conn, "SELECT pg_last_wal_replay_lsn()::text")))
        return "; caught up"

    def promote(self, node: PostgresNode) -> None:
        """``pg_promote(false)``, then poll until the node leaves recovery.

        :raises FailoverFailed: when it is still in recovery after ``promote_timeout``.
        """
        deadline = timing.monotonic() + self.settings.promote_timeout
        with psycopg.connect(
            node.dsn(app="drdrill-failover"), autocommit=True, connect_timeout=2
        ) as conn:
            conn.execute("SELECT pg_promote(false)")
            while _fetch_one(conn, "SELECT pg_is_in_recovery()"):
                if timing.monotonic() > deadline:
                    raise FailoverFailed(
                        f"{node.name} still in recovery "
                        f"{self.settings.promote_timeout}s after pg_promote"
                    )
                timing.sleep(0.002)

    def validate(self, topology: Topology) -> str:
        """Write a token through the service endpoint and read it back.

        :raises FailoverFailed: when that does not work within ``validate_timeout``.
        """
        token = uuid.uuid4().hex
        deadline = timing.monotonic() + self.settings.validate_timeout
        last = ""
        while timing.monotonic() < deadline:
            try:
                with psycopg.connect(
                    topology.pg_endpoint.dsn(app="drdrill-validate"),
                    autocommit=True,
                    connect_timeout=2,
                ) as conn:
                    conn.execute("INSERT INTO drdrill_validation (token) VALUES (%s)", (token,))
                    row = conn.execute(
                        "SELECT token FROM drdrill_validation WHERE token = %s", (token,)
                    ).fetchone()
                if row and row[0] == token:
                    return f"token {token[:8]} written and read back through the endpoint"
                last = "token not read back"
            except psycopg.Error as exc:
                last = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            timing.sleep(0.01)
        raise FailoverFailed(
            f"endpoint validation failed for {self.settings.validate_timeout}s: {last}"
        )
