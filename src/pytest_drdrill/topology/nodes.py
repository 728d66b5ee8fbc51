"""What a topology's nodes provide: any server the drill controls, and each service's kind.

Kept apart from :mod:`~pytest_drdrill.topology._protocol` (the topology and its optional
capabilities) so that :mod:`~pytest_drdrill.topology.links`, which a topology is made of,
can name the node it leads to without importing the topology's protocol.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class ServiceNode(Protocol):
    """A server of any service (PostgreSQL, Redis, object storage) the drill controls.

    .. versionadded:: 0.2
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

    def pids(self) -> list[int]:
        """The server's local processes, for resource accounting; empty when none.

        .. versionadded:: 0.3
        """
        ...


@runtime_checkable
class OwnedNode(Protocol):
    """A node its topology started, so the topology removes it at the end.

    A node of a running stack is not one: the drill found it and leaves it running.

    .. versionadded:: 0.5
    """

    def cleanup(self) -> None:
        """Kill the node and remove what it left; never raises."""
        ...


@runtime_checkable
class PostgresNode(ServiceNode, Protocol):
    """A PostgreSQL server the drill can reach directly and control.

    .. versionadded:: 0.1
    """

    def dsn(self, *, app: str = "drdrill") -> str:
        """A libpq connection string straight to this node."""
        ...


@runtime_checkable
class RedisNode(ServiceNode, Protocol):
    """A Redis server.

    .. versionadded:: 0.2
    """

    def url(self) -> str:
        """A ``redis://`` URL straight to this node."""
        ...


@runtime_checkable
class ObjectStoreNode(ServiceNode, Protocol):
    """An S3-compatible object store serving one region.

    .. versionadded:: 0.2
    """

    @property
    def endpoint_url(self) -> str:
        """``http://host:port`` straight to this store."""
        ...
