"""The reference failover for PostgreSQL: fence, select, promote, repoint, validate.

It follows the requirements' sketch of a replication manager, with the steps it leaves implicit made
explicit: the old primary is fenced before anything is promoted, so two writable
primaries never coexist; promotion uses the non-waiting ``pg_promote(false)`` and polls
(``pg_promote(true)`` and ``pg_ctl promote -w`` poll every 100 ms); validation writes and
reads through the service endpoint, the same path clients use. It runs unchanged on
every backend: it only uses SQL, the node's ``fence()`` and the proxy links.

The order of the steps is :mod:`~pytest_drdrill.recovery.promotion`'s, shared with the
region failover; the plugin whose hooks run both is
:class:`~pytest_drdrill.recovery.reference.ReferenceFailover`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.clients.postgres import parse_lsn
from pytest_drdrill.errors import FailoverFailed
from pytest_drdrill.recovery.promotion import FailoverSettings, Promotion, StandbyState
from pytest_drdrill.recovery.services import validate_postgres

if TYPE_CHECKING:
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.topology._protocol import PostgresNode, Topology

__all__ = ["FailoverSettings", "PostgresFailover", "StandbyState"]


def _query(node: PostgresNode, sql: str) -> tuple[object, ...]:
    with psycopg.connect(
        node.dsn(app="drdrill-failover"), autocommit=True, connect_timeout=2
    ) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return tuple(row)


def _answers(node: PostgresNode) -> bool:
    """Whether ``node`` is unfenced and answers as a standby now."""
    if node.fenced:
        return False
    try:
        return _query(node, "SELECT pg_is_in_recovery()") == (True,)
    except psycopg.Error:
        return False


def _fetch_one(conn: psycopg.Connection[tuple[object, ...]], sql: str) -> object:
    row = conn.execute(sql).fetchone()
    return row[0] if row else None


class PostgresFailover:
    """The reference PostgreSQL failover: its steps, and the sequence for one service.

    The hooks that run it are :class:`~pytest_drdrill.recovery.reference.ReferenceFailover`'s;
    a subclass that overrides a step (say :meth:`validate`) changes it wherever it runs.

    .. versionadded:: 0.5 (split from ``ReferenceFailover``)
    """

    def __init__(self, settings: FailoverSettings | None = None) -> None:
        self.settings = settings or FailoverSettings()

    def fail_over_postgres(self, topology: Topology, record: DrillRecord) -> str:
        """Fence, select, promote, repoint, validate; roll back on failed validation."""
        return _ServicePromotion(self, topology, record).run().node.name

    def select(
        self, topology: Topology, *, among: list[PostgresNode] | None = None
    ) -> StandbyState:
        """Pick the standby to promote: synchronous ones first, then the most WAL received.

        Under ``ANY 1`` a commit may have been confirmed by one synchronous standby alone, so
        a synchronous standby that still runs but does not answer (frozen, cut off) is waited
        for, up to ``quorum_timeout``: promoting another could lose what only it holds (a
        fault schedule partitioned pg-sync, froze pg-sync2, then cut off the primary, and
        promoting pg-sync lost 3 acknowledged commits). A crashed one is not waited for.

        :param among: the candidates; default every standby.
        :raises FailoverFailed: when no standby answers.
        """
        candidates = among if among is not None else topology.standbys()
        sync_names = topology.sync_standby_names()
        deadline = timing.monotonic() + self.settings.quorum_timeout
        while True:
            states, errors, unreachable = self._states(candidates, sync_names)
            silent = [
                n.name for n in candidates
                if n.name in sync_names and n.name in unreachable
                and not n.fenced and n.is_running()
            ]  # fmt: skip
            if not silent or timing.monotonic() >= deadline:
                break
            timing.sleep(0.2)
        if not states:
            reasons = "; ".join(f"{name}: {why}" for name, why in errors.items())
            raise FailoverFailed(f"no standby can be promoted: {reasons or 'none left'}")
        chosen = max(states, key=lambda s: (s.sync, s.receive_lsn))
        if silent:
            chosen = dataclasses.replace(
                chosen,
                note=(
                    f"; synchronous {', '.join(silent)} still silent after "
                    f"{self.settings.quorum_timeout:g}s: commits only it confirmed may be lost"
                ),
            )
        return chosen

    @staticmethod
    def _states(
        candidates: list[PostgresNode], sync_names: tuple[str, ...]
    ) -> tuple[list[StandbyState], dict[str, str], set[str]]:
        """Each answering standby's state, why each other was left out, and who never answered."""
        states: list[StandbyState] = []
        errors: dict[str, str] = {}
        unreachable: set[str] = set()
        for node in candidates:
            try:
                in_recovery, receive, replay = _query(
                    node,
                    "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, "
                    "pg_last_wal_replay_lsn()::text",
                )
            except psycopg.Error as exc:
                errors[node.name] = str(exc)
                unreachable.add(node.name)
                continue
            if not in_recovery:
                errors[node.name] = "not in recovery"
                continue
            states.append(
                StandbyState(
                    node, node.name in sync_names, parse_lsn(str(receive)), parse_lsn(str(replay))
                )
            )
        return states, errors, unreachable

    def catch_up(self, chosen: StandbyState) -> str:
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
                replay = parse_lsn(str(_fetch_one(conn, "SELECT pg_last_wal_replay_lsn()::text")))
        return "; caught up"

    def promote(self, node: PostgresNode) -> str:
        """``pg_promote(false)``, poll until the node leaves recovery, then let it commit.

        A standby may carry its primary's ``synchronous_standby_names`` (pg_auto_failover
        sets it on every node, so the one it promotes is ready): promoted by anyone else,
        it would make every commit wait for standbys that follow nobody yet. No standby
        follows a node just promoted, so its setting is cleared, as an operator promoting
        by hand does; the failover's repointing decides who follows it from there.

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
            names = _fetch_one(conn, "SHOW synchronous_standby_names")
            if not names:
                return ""
            conn.execute("ALTER SYSTEM SET synchronous_standby_names = ''")
            conn.execute("SELECT pg_reload_conf()")
        return (
            f" ({node.name}'s synchronous_standby_names {names!r} cleared: no standby follows "
            "it yet)"
        )

    def validate(self, topology: Topology) -> str:
        """Write a token through the service endpoint and read it back.

        :raises FailoverFailed: when that does not work within ``validate_timeout``.
        """
        return validate_postgres(topology.pg_endpoint, timeout=self.settings.validate_timeout)


def keep_sync(topology: Topology, primary: PostgresNode) -> str:
    """Make the surviving synchronous standbys the new primary's; say which, or "".

    With two synchronous standbys, the one left after a promotion stays synchronous to the
    new primary, so commits keep waiting for a second copy in the region. Only a standby
    that answers counts: naming a dead one would stop every commit (a fault schedule
    crashed pg-sync, then the primary, and the new primary waited on pg-sync for good).
    """
    require = getattr(topology, "require_sync", None)
    if require is None:
        return ""
    left = tuple(
        n for n in topology.sync_standby_names()
        if n != primary.name and n in topology.pg_nodes and _answers(topology.pg_nodes[n])
    )  # fmt: skip
    require(primary, left)
    return f"; synchronous: {', '.join(left)}" if left else "; no synchronous standby left"


class _ServicePromotion(Promotion):
    """The PostgreSQL service alone moves; every other service stays where it is."""

    def __init__(self, failover: PostgresFailover, topology: Topology, record: DrillRecord) -> None:
        super().__init__(failover, topology, record)
        self.failover = failover
        self.old = topology.primary

    def fence(self) -> str:
        self.old.fence()
        return f"{self.old.name} killed and barred from restarting"

    def selected(self, chosen: StandbyState) -> str:
        return (
            f"{chosen.node.name} ({'sync' if chosen.sync else 'async'}) "
            f"receive {chosen.receive_lsn:X} replay {chosen.replay_lsn:X}"
        )

    def repoint(self, chosen: StandbyState) -> str:
        topology = self.topology
        topology.pg_endpoint.repoint(chosen.node)
        moved = []
        for name, link in topology.replication_links.items():
            if name != chosen.node.name and not topology.pg_nodes[name].fenced:
                link.repoint(chosen.node)
                moved.append(name)
        return (
            f"endpoint -> {chosen.node.name}; "
            f"replication of {moved or 'none'} -> {chosen.node.name}"
            f"{keep_sync(topology, chosen.node)}"
        )

    def validate(self) -> str:
        return self.failover.validate(self.topology)

    def roll_back(self) -> str:
        self.topology.pg_endpoint.repoint(self.old)
        return f"endpoint restored to {self.old.name}; service left down"

    def failure(self, chosen: StandbyState, exc: Exception) -> str:
        return (
            f"validation through the service endpoint failed after promoting "
            f"{chosen.node.name}: {exc}"
        )
