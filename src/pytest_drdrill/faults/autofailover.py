"""Faults only a pg_auto_failover cluster has: a keeper frozen while its PostgreSQL serves.

Losing the monitor is the generic crash of :mod:`pytest_drdrill.faults.process` on the
topology's ``monitor`` node; a keeper lost with its PostgreSQL is the node's crash.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from pytest_drdrill.errors import FaultError

if TYPE_CHECKING:
    from pytest_drdrill.topology.autofailover import AutoctlProcess


class KeeperFreeze:
    """SIGSTOP a node's pg_autoctl processes alone: its PostgreSQL goes on serving.

    The keeper neither reports to the monitor nor applies its decisions. On the primary
    nothing should follow: the monitor's health checks reach PostgreSQL, so it never
    has the two signs (failed checks and a silent keeper) it fails over on. Healing
    continues the keeper.
    """

    kind = "keeper-freeze"

    def __init__(self, node: AutoctlProcess) -> None:
        self.node = node
        self.target = node.name

    def inject(self) -> None:
        """Stop every pg_autoctl process of the node.

        :raises FaultError: when the node runs no pg_autoctl process.
        """
        if not self.node.signal_autoctl(signal.SIGSTOP):
            raise FaultError(f"{self.node.name} runs no pg_autoctl process to freeze")

    def heal(self) -> None:
        """Continue them."""
        self.node.signal_autoctl(signal.SIGCONT)
