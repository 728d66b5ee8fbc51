"""Process-level faults on a node: crash, freeze, clean stop."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_drdrill.topology._protocol import ServiceNode


class Crash:
    """Kill the node and all its processes at once (no shutdown, as a power loss).

    Healing does not restart it: after failover the old primary is fenced, and starting
    it would create a second writable primary. Healing only makes sure nothing is left.
    """

    kind = "crash"

    def __init__(self, node: ServiceNode) -> None:
        self.node = node
        self.target = node.name

    def inject(self) -> None:
        """Kill the node's whole process tree."""
        self.node.crash()

    def heal(self) -> None:
        """Make sure no process of the node survived."""
        self.node.crash()


class Freeze:
    """Suspend the node (SIGSTOP): it keeps its sockets open and answers nothing."""

    kind = "freeze"

    def __init__(self, node: ServiceNode) -> None:
        self.node = node
        self.target = node.name

    def inject(self) -> None:
        """Stop every process of the node."""
        self.node.freeze()

    def heal(self) -> None:
        """Continue every process of the node (a no-op if it was fenced meanwhile)."""
        self.node.thaw()


class Stop:
    """Shut the node down cleanly (fast shutdown), as an operator or a reboot would."""

    kind = "stop"

    def __init__(self, node: ServiceNode) -> None:
        self.node = node
        self.target = node.name

    def inject(self) -> None:
        """Fast shutdown."""
        self.node.stop()

    def heal(self) -> None:
        """Nothing to undo: a stopped node stays stopped until the drill restarts it."""
