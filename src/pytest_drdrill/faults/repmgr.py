"""Faults only a repmgr cluster has: its daemon frozen, and an old primary booted again.

Node loss, freeze and clean stop are the generic faults of
:mod:`pytest_drdrill.faults.process` on a member; the witness is lost by crashing it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_drdrill.topology.repmgr import RepmgrMember


class RepmgrdFreeze:
    """SIGSTOP a node's ``repmgrd`` alone: its PostgreSQL goes on serving, unwatched.

    On the primary nothing should follow: the standbys' repmgrd still reach it, so no
    election starts and clients keep writing. Healing continues repmgrd.
    """

    kind = "repmgrd-freeze"

    def __init__(self, member: RepmgrMember) -> None:
        self.member = member
        self.target = member.name

    def inject(self) -> None:
        """Stop repmgrd."""
        self.member.freeze_repmgrd()

    def heal(self) -> None:
        """Continue repmgrd."""
        self.member.thaw_repmgrd()


class Reboot:
    """Start a lost node again, as its machine coming back would (PostgreSQL, then repmgrd).

    An old primary booted after a failover goes through the boot guard of
    :meth:`~pytest_drdrill.topology.repmgr.RepmgrMember.start_postgres`: it rejoins the
    new primary as a standby instead of coming up writable beside it. Healing has nothing
    to undo.
    """

    kind = "reboot"

    def __init__(self, member: RepmgrMember) -> None:
        self.member = member
        self.target = member.name

    def inject(self) -> None:
        """Boot the node."""
        self.member.start(timeout=60)

    def heal(self) -> None:
        """Nothing: a booted node stays up."""
