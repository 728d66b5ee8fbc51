"""Faults only a Patroni cluster has: the ones Patroni's own acceptance tests inject.

Each acts on what Patroni itself depends on: its PostgreSQL (killed under a live
Patroni), its DCS (a member cut off from every etcd member, or etcd's quorum gone), a
standby's replay and a standby's WAL receiver. Node loss and a frozen Patroni are the
generic crash and freeze of :mod:`pytest_drdrill.faults.process` on a member.
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import psycopg

from pytest_drdrill.errors import FaultError

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


class WalReceiverStalled:
    """Freeze a standby's WAL receiver (SIGSTOP): it stops receiving, all else runs on.

    The standby alone falls behind, as behind a stalled WAN link: its Patroni, its
    PostgreSQL and every other path stay healthy. Under Patroni every standby streams
    from the leader's one connect address, which HAProxy uses too, so a cut or toxic on
    that path would reach the clients as well: this fault is how one member lags alone.
    Healing ends the receiver (SIGTERM, then SIGCONT), so what it never read from its
    socket is dropped, and PostgreSQL starts a new one that streams again from where the
    standby stands, or, once its upstream is gone, finds nothing to stream from.
    """

    kind = "wal-receiver-stalled"

    def __init__(self, member: PatroniMember) -> None:
        self.member = member
        self.target = member.name
        self.pid: int | None = None

    def inject(self) -> None:
        """Find the WAL receiver and stop it.

        :raises FaultError: when the member runs no WAL receiver (it is no streaming standby).
        """
        with psycopg.connect(self.member.dsn(), autocommit=True, connect_timeout=2) as conn:
            row = conn.execute("SELECT pid FROM pg_stat_wal_receiver").fetchone()
        if row is None or row[0] is None:
            raise FaultError(f"{self.member.name} runs no WAL receiver: it streams from nobody")
        self.pid = int(row[0])
        os.kill(self.pid, signal.SIGSTOP)

    def heal(self) -> None:
        """End the frozen receiver: the signal to stop is waiting when it resumes."""
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
            os.kill(self.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass  # the member went down with it
        self.pid = None
