"""Docker-level faults on a node that runs in a container (``--drill-backend=docker``).

On the Docker backend the process-level faults already act on containers (a crash is
``docker kill``, a freeze ``docker pause``); these add what only Docker can do, or say it
in Docker's terms for game days: a kill with any signal, a pause, a disconnection from the
region's network, and a restart. Inject them through the drill's fault injector, so they
are recorded on the timeline and healed at teardown::

    from pytest_drdrill.faults import docker as docker_faults

    drdrill.faults.inject(docker_faults.disconnect(drdrill.topology.primary))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill.errors import FaultError

if TYPE_CHECKING:
    from pytest_drdrill.topology._protocol import ServiceNode
    from pytest_drdrill.topology.docker_nodes import ContainerNode

__all__ = [
    "ContainerKill",
    "ContainerPause",
    "ContainerRestart",
    "NetworkDisconnect",
    "disconnect",
    "kill",
    "pause",
    "restart",
]


def _container_node(node: ServiceNode, kind: str) -> ContainerNode:
    from pytest_drdrill.topology.docker_nodes import ContainerNode

    if not isinstance(node, ContainerNode):
        raise FaultError(
            f"{kind} needs a node running in a Docker container, and {node.name} is a "
            f"{type(node).__name__}; run the drill with --drill-backend=docker (ini "
            f"drill_backend = docker), or use the process-level fault (crash, freeze, stop)"
        )
    return node


class ContainerKill:
    """Send a signal to the container's main process (``docker kill --signal``).

    With SIGKILL (the default) every process of the container dies at once; healing makes
    sure none survived and, as after a crash, restarts nothing. Other signals are the
    server's to handle (SIGTERM: PostgreSQL's smart shutdown), and healing does nothing.

    :param node: a node of the Docker backend.
    :param signal: the signal's name, e.g. ``SIGKILL``, ``SIGTERM``.

    .. versionadded:: 0.4
    """

    kind = "container-kill"

    def __init__(self, node: ServiceNode, signal: str = "SIGKILL") -> None:
        self.node = _container_node(node, self.kind)
        self.signal = signal.upper() if signal.upper().startswith("SIG") else f"SIG{signal.upper()}"
        self.target = f"{node.name} [{self.signal}]"

    def inject(self) -> None:
        """Signal the container."""
        if self.signal == "SIGKILL":
            self.node.crash()
        else:
            self.node.container.kill(signal=self.signal)

    def heal(self) -> None:
        """After SIGKILL, make sure nothing of the container runs; else nothing to undo."""
        if self.signal == "SIGKILL":
            self.node.crash()


class ContainerPause:
    """Freeze every process of the container (``docker pause``, the cgroup freezer).

    :param node: a node of the Docker backend.

    .. versionadded:: 0.4
    """

    kind = "container-pause"

    def __init__(self, node: ServiceNode) -> None:
        self.node = _container_node(node, self.kind)
        self.target = node.name

    def inject(self) -> None:
        """Pause the container."""
        self.node.freeze()

    def heal(self) -> None:
        """Unpause it (nothing to do when it was killed or fenced meanwhile)."""
        self.node.thaw()


class NetworkDisconnect:
    """Detach the container from its region's network (``docker network disconnect``).

    Nothing reaches the node, neither clients nor replicas nor the fault proxy, and it
    reaches nothing: the whole machine is partitioned away, not one path. Healing
    attaches it again at the same address.

    :param node: a node of the Docker backend.

    .. versionadded:: 0.4
    """

    kind = "network-disconnect"

    def __init__(self, node: ServiceNode) -> None:
        self.node = _container_node(node, self.kind)
        self.target = f"{node.name} from {self.node.network.name}"

    def inject(self) -> None:
        """Disconnect the container."""
        self.node.disconnect()

    def heal(self) -> None:
        """Reconnect it, at its address."""
        self.node.reconnect()


class ContainerRestart:
    """Restart the container (``docker restart``): a clean stop, then a start.

    The server comes back on the same address with its data (PostgreSQL recovers and
    serves; an in-memory store comes back empty). A fenced node refuses.

    :param node: a node of the Docker backend.

    .. versionadded:: 0.4
    """

    kind = "container-restart"

    def __init__(self, node: ServiceNode) -> None:
        self.node = _container_node(node, self.kind)
        self.target = node.name

    def inject(self) -> None:
        """Restart the container."""
        self.node.restart()

    def heal(self) -> None:
        """Nothing to undo: the node runs again, unless something fenced it."""


def kill(node: ServiceNode, signal: str = "SIGKILL") -> ContainerKill:
    """A :class:`ContainerKill` of ``node`` with ``signal``.

    .. versionadded:: 0.4
    """
    return ContainerKill(node, signal)


def pause(node: ServiceNode) -> ContainerPause:
    """A :class:`ContainerPause` of ``node``.

    .. versionadded:: 0.4
    """
    return ContainerPause(node)


def disconnect(node: ServiceNode) -> NetworkDisconnect:
    """A :class:`NetworkDisconnect` of ``node``.

    .. versionadded:: 0.4
    """
    return NetworkDisconnect(node)


def restart(node: ServiceNode) -> ContainerRestart:
    """A :class:`ContainerRestart` of ``node``.

    .. versionadded:: 0.4
    """
    return ContainerRestart(node)
