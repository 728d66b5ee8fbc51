"""The running stack's paths and nodes, as the fault proxy and the stack file give them.

Nothing here is created or started: a path (:class:`StackLink`) is a proxy the stack
already has, read from the fault proxy; a node (:class:`StackNode`) is an address and,
when the file names one, a container. Every fault goes through the stack file's
permissions first (:class:`GuardedProxy` for the paths, :meth:`StackNode._docker` for the
containers); healing always passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_drdrill.errors import FaultError
from pytest_drdrill.proxy import ProxyClient
from pytest_drdrill.proxy.client import split_address
from pytest_drdrill.topology.links import Link
from pytest_drdrill.topology.postgres import conninfo

if TYPE_CHECKING:
    import redis

    from pytest_drdrill.proxy import ProxyInfo, ToxicInfo
    from pytest_drdrill.topology._protocol import ServiceNode
    from pytest_drdrill.topology.stack_file import StackNodeSpec, StackSpec


class GuardedProxy(ProxyClient):
    """The stack's fault proxy, refusing what the stack file does not allow.

    Healing (enabling a path, removing a toxic) and repointing (failover) always pass.
    """

    def __init__(self, spec: StackSpec) -> None:
        super().__init__(spec.proxy_api)
        self.spec = spec

    def update(
        self,
        name: str,
        *,
        listen: str | None = None,
        upstream: str | None = None,
        enabled: bool | None = None,
    ) -> ProxyInfo:
        """Update a proxy; disabling it needs ``cut``."""
        if enabled is False:
            self.spec.require("cut", f"cutting path {name!r}")
        return super().update(name, listen=listen, upstream=upstream, enabled=enabled)

    def add_toxic(self, proxy: str, type: str, **options: Any) -> ToxicInfo:  # noqa: A002
        """Add a toxic; its type must be allowed."""
        self.spec.require(type, f"a {type} toxic on path {proxy!r}")
        return super().add_toxic(proxy, type, **options)


class StackLink(Link):
    """A path of the stack: an existing proxy, read, never created nor deleted.

    :param host: where pytest reaches the proxy's listeners.
    """

    def __init__(
        self,
        client: ProxyClient,
        proxy_name: str,
        target: ServiceNode,
        label: str,
        *,
        host: str,
        source: str,
        upstream_of: Any,
        kind: str,
    ) -> None:
        self.client = client
        self.kind = kind
        self.proxy_name = proxy_name
        self.label = label
        self.source = source
        self.target = target
        self._upstream_of = upstream_of or (lambda node: node.address)
        info = client.get(proxy_name)
        self.upstream = info.upstream
        self.host = host
        self.port = info.port

    def remove(self) -> None:
        """Nothing: the stack's proxies are its own."""


class StackNode:
    """A node of the stack; faults on it need its container and the file's permission.

    :param spec: the node's entry in the stack file.
    :param stack: the whole file, for permissions.

    .. versionadded:: 0.4
    """

    def __init__(self, spec: StackNodeSpec, stack: StackSpec) -> None:
        self.spec = spec
        self.stack = stack
        self.name = spec.name
        self.region = spec.region
        self.host, self.port = split_address(spec.address)
        self.fenced = False
        self._container: Any = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.host}:{self.port}>"

    @property
    def address(self) -> str:
        """``host:port`` where the fault proxy reaches this node (its upstream)."""
        return self.spec.upstream

    def _docker(self, operation: str) -> Any:
        self.stack.require(operation, f"{operation} of {self.name}")
        if self.spec.container is None:
            raise FaultError(
                f"{operation} of {self.name} needs its container; stack file "
                f"{self.stack.source} names none: add nodes.{self.name}.container"
            )
        if self._container is None:
            from pytest_drdrill.topology.docker_engine import connect

            self._container = connect().containers.get(self.spec.container)
        self._container.reload()
        return self._container

    def crash(self) -> None:
        """``docker kill`` of the node's container, when the file allows ``crash``."""
        container = self._docker("crash")
        if container.status in ("running", "paused"):
            container.kill()

    def freeze(self) -> None:
        """``docker pause``, when the file allows ``freeze``."""
        container = self._docker("freeze")
        if container.status == "running":
            container.pause()

    def thaw(self) -> None:
        """Undo :meth:`freeze` (healing is always allowed)."""
        if self._container is not None:
            self._container.reload()
            if self._container.status == "paused":
                self._container.unpause()

    def stop(self) -> None:
        """``docker stop``, when the file allows ``stop``."""
        self._docker("stop").stop(timeout=10)

    def fence(self) -> None:
        """Failover's fencing: the container is killed when the file allows ``crash``.

        Otherwise every path to the node is cut at the fault proxy, so nothing reaches it
        any more (a fence at the network, for stacks whose servers may not be killed).
        """
        self.fenced = True
        if self.spec.container is not None and "crash" in self.stack.allowed:
            self.crash()

    def is_running(self) -> bool:
        """Whether its container runs; a node without a container counts as running."""
        if self.spec.container is None or self._container is None:
            return not self.fenced
        self._container.reload()
        return bool(self._container.status in ("running", "paused"))

    def pids(self) -> list[int]:
        """None: the stack's processes are not this machine's to account for."""
        return []


class StackPostgresNode(StackNode):
    """A PostgreSQL node of the stack."""

    def dsn(self, *, app: str = "drdrill") -> str:
        """Connection string to this node directly."""
        return conninfo(self.host, self.port, app=app)


class StackRedisNode(StackNode):
    """A Redis node of the stack."""

    def url(self) -> str:
        """A ``redis://`` URL straight to this node."""
        return f"redis://{self.host}:{self.port}/0"

    def client(self, *, timeout: float = 2.0) -> redis.Redis:
        """A blocking client straight to this node; close it after use."""
        from pytest_drdrill.clients.redis import sync_client

        return sync_client(self.url(), timeout=timeout)


class StackS3Node(StackNode):
    """An object store of the stack."""

    @property
    def endpoint_url(self) -> str:
        """``http://host:port`` straight to this store."""
        return f"http://{self.host}:{self.port}"
