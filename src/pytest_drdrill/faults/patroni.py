"""Faults only a Patroni cluster has: the ones Patroni's own acceptance tests inject.

Each acts on what Patroni itself depends on: its PostgreSQL (killed under a live
Patroni), its DCS (a member cut off from every etcd member, or etcd's quorum gone) and
a standby's replay. Node loss and a frozen Patroni are the generic crash and freeze of
:mod:`pytest_drdrill.faults.process` on a member.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pytest_drdrill.topology.etcd import EtcdMember
    from pytest_drdrill.topology.links import Link
    from pytest_drdrill.topology.patroni import PatroniMember


class PostgresCrash:
    """Kill a member's PostgreSQL with SIGKILL while its Patroni keeps running.

    Patroni restarts it in place within ``primary_start_timeout``; healing has nothing
    to undo.
    """

    kind = "postgres-crash"

    def __init__(self, member: PatroniMember) -> None:
        self.member = member
        self.target = member.name

    def inject(self) -> None:
        """Kill the postmaster and its children."""
        self.member.crash_postgres()

    def heal(self) -> None:
        """Nothing: restarting PostgreSQL is Patroni's job, and what the drill measures."""


class DcsPartition:
    """Cut one member off from every etcd member; its peers still reach etcd and it.

    A leader so cut must demote itself within ``retry_timeout`` (or, with
    ``failsafe_mode``, keep running while it reaches every member).
    """

    kind = "dcs-partition"

    def __init__(self, member: str, links: Sequence[Link]) -> None:
        self.links = list(links)
        self.target = member

    def inject(self) -> None:
        """Cut every path from the member to etcd."""
        for link in self.links:
            link.cut()

    def heal(self) -> None:
        """Restore them."""
        for link in self.links:
            link.restore()


class DcsQuorumLoss:
    """Freeze etcd members until the rest cannot form a quorum: the DCS answers nothing."""

    kind = "dcs-quorum-loss"

    def __init__(self, members: Sequence[EtcdMember]) -> None:
        self.members = list(members)
        self.target = ",".join(m.name for m in self.members)

    def inject(self) -> None:
        """SIGSTOP the members."""
        for member in self.members:
            member.freeze()

    def heal(self) -> None:
        """SIGCONT them: etcd regains its quorum."""
        for member in self.members:
            member.thaw()


class ReplayPaused:
    """Pause WAL replay on a standby (``pg_wal_replay_pause()``): it receives but applies nothing.

    On a synchronous standby commits are still acknowledged (``synchronous_commit`` on
    waits for the flush, not the replay), so a failover to it must replay first.
    """

    kind = "replay-paused"

    def __init__(self, member: PatroniMember) -> None:
        self.member = member
        self.target = member.name

    def _call(self, function: str) -> None:
        with psycopg.connect(self.member.dsn(), autocommit=True, connect_timeout=2) as conn:
            conn.execute(f"SELECT {function}()")

    def inject(self) -> None:
        """Pause replay."""
        self._call("pg_wal_replay_pause")

    def heal(self) -> None:
        """Resume replay, when the standby still runs as a standby."""
        try:
            self._call("pg_wal_replay_resume")
        except psycopg.Error:
            pass  # promoted (no longer in recovery) or gone: nothing left paused
