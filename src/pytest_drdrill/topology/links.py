"""Network paths of a topology: each is an entry in a Toxiproxy-API fault proxy.

Every path a byte can take is a proxy with a *source* and a *target*: clients to each
node, each standby or replica to its upstream, the object replicator to the store it
reads, and one service endpoint per service. A service endpoint does not lead to a node
directly but to that node's own client path, so a partition between clients and one node
cuts that node's path and leaves the endpoint free to be repointed elsewhere, as DNS or a
virtual IP would be. "Repoint", "cut", "partition", latency and the other toxics are all
proxy API calls, identical on every backend and against a real Toxiproxy.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pytest_drdrill.topology.postgres import conninfo

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_drdrill.proxy import ProxyClient
    from pytest_drdrill.topology.nodes import ServiceNode

logger = logging.getLogger(__name__)

#: The source of every path that clients (the workload, the monitors) use.
CLIENTS = "clients"


class Link:
    """A proxied path from ``source`` to a node; connect to ``host:port`` to reach ``target``.

    :param client: the fault proxy's API client.
    :param proxy_name: the proxy's name in that API.
    :param target: the node currently behind it.
    :param label: what the path is, for reports (e.g. ``clients -> postgres``).
    :param source: who uses the path: :data:`CLIENTS` or a node's name.
    :param upstream_of: the address to forward to for a node; default the node's own
        address (a service endpoint passes the node's client path instead).
    :param kind: ``path`` (clients to one node), ``replication`` or ``endpoint``.
        Partitions cut paths and replication links, never an endpoint: an endpoint
        stands for DNS or a virtual IP, which failover repoints.
    """

    def __init__(
        self,
        client: ProxyClient,
        proxy_name: str,
        target: ServiceNode,
        label: str,
        *,
        source: str = CLIENTS,
        upstream_of: Callable[[ServiceNode], str] | None = None,
        kind: str = "path",
    ) -> None:
        self.client = client
        self.kind = kind
        self.proxy_name = proxy_name
        self.label = label
        self.source = source
        self.target = target
        self._upstream_of = upstream_of or (lambda node: node.address)
        self.upstream = self._upstream_of(target)
        info = client.create(proxy_name, listen="127.0.0.1:0", upstream=self.upstream)
        self.host = info.host
        self.port = info.port

    def __repr__(self) -> str:
        return f"<Link {self.label} {self.host}:{self.port} -> {self.target.name}>"

    @property
    def address(self) -> str:
        """``host:port`` where the path listens."""
        return f"{self.host}:{self.port}"

    def dsn(self, *, app: str = "drdrill") -> str:
        """A libpq connection string through this path (PostgreSQL targets)."""
        return conninfo(self.host, self.port, app=app)

    def url(self) -> str:
        """A ``redis://`` URL through this path (Redis targets)."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def endpoint_url(self) -> str:
        """``http://host:port`` through this path (object-store targets)."""
        return f"http://{self.host}:{self.port}"

    def repoint(self, node: ServiceNode) -> None:
        """Send new connections to ``node``; established ones are cut, as Toxiproxy does."""
        self.upstream = self._upstream_of(node)
        self.client.update(self.proxy_name, upstream=self.upstream)
        self.target = node

    def follow(self) -> None:
        """Repoint to the target's address if it moved; leave the path alone when it did not.

        A server that lost its port race starts on another port; established connections
        survive when nothing moved.
        """
        if self._upstream_of(self.target) != self.upstream:
            self.repoint(self.target)

    def cut(self) -> None:
        """Stop the path: established connections drop and new ones are refused."""
        self.client.update(self.proxy_name, enabled=False)

    def restore(self) -> None:
        """Undo :meth:`cut`."""
        self.client.update(self.proxy_name, enabled=True)

    def remove(self) -> None:
        """Delete the proxy entry; never raises."""
        try:
            self.client.delete(self.proxy_name)
        except Exception:  # best effort at teardown; the proxy server may be gone already
            logger.exception("could not delete proxy %s", self.proxy_name)
