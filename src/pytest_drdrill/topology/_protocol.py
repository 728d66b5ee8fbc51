"""What every backend's topology provides, so faults, failover and measurement are shared.

Failover and measurement code talks only to these protocols: SQL over a node's
:meth:`PostgresNode.dsn`, process-level control through the node's methods, and the
network path through :class:`~pytest_drdrill.topology.links.Link` objects, which are
fault-proxy entries on every backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pytest_drdrill.topology.links import Link


@runtime_checkable
class PostgresNode(Protocol):
    """A PostgreSQL server the drill can reach directly and control.

    .. versionadded:: 0.1
    """

    name: str
    region: str
    host: str
    port: int
    fenced: bool

    @property
    def address(self) -> str:
        """``host:port`` of the server itself."""
        ...

    def dsn(self, *, app: str = "drdrill") -> str:
        """A libpq connection string straight to this node."""
        ...

    def crash(self) -> None:
        """Kill the server and all its processes at once."""
        ...

    def freeze(self) -> None:
        """Suspend the server: it holds its connections and answers nothing."""
        ...

    def thaw(self) -> None:
        """Resume a frozen server."""
        ...

    def stop(self) -> None:
        """Shut the server down cleanly."""
        ...

    def fence(self) -> None:
        """Make sure the server never accepts writes again in this topology."""
        ...

    def is_running(self) -> bool:
        """Whether the server's processes exist (frozen counts as running)."""
        ...


@runtime_checkable
class Topology(Protocol):
    """A PostgreSQL primary with standbys behind one service endpoint.

    .. versionadded:: 0.1
    """

    backend: str
    pg_nodes: dict[str, PostgresNode]
    pg_endpoint: Link
    replication_links: dict[str, Link]

    @property
    def primary(self) -> PostgresNode:
        """The node the service endpoint currently points at."""
        ...

    def standbys(self) -> list[PostgresNode]:
        """Every node that is neither the primary nor fenced, sync standbys first."""
        ...

    def sync_standby_names(self) -> tuple[str, ...]:
        """Names of the standbys configured as synchronous."""
        ...

    def close(self) -> None:
        """Stop and remove everything the topology started; never raises."""
        ...
