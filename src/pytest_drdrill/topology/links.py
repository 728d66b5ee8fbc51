"""Network paths of a topology: each is an entry in a Toxiproxy-API fault proxy.

The service endpoint that clients use and every replication link are proxies, so
"repoint the endpoint", "cut the link" and (later) latency or bandwidth faults are all
proxy API calls, identical on every backend and against a real Toxiproxy.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pytest_drdrill.topology.postgres import conninfo

if TYPE_CHECKING:
    from pytest_drdrill.proxy import ProxyClient
    from pytest_drdrill.topology._protocol import PostgresNode

logger = logging.getLogger(__name__)


class Link:
    """A proxied path to a node; clients connect to ``host:port`` and reach ``target``.

    :param client: the fault proxy's API client.
    :param proxy_name: the proxy's name in that API.
    :param target: the node currently behind it.
    :param label: what the path is, for reports (e.g. ``clients -> postgres``).
    """

    def __init__(
        self, client: ProxyClient, proxy_name: str, target: PostgresNode, label: str
    ) -> None:
        self.client = client
        self.proxy_name = proxy_name
        self.label = label
        self.target = target
        info = client.create(proxy_name, listen="127.0.0.1:0", upstream=target.address)
        self.host = info.host
        self.port = info.port

    def __repr__(self) -> str:
        return f"<Link {self.label} {self.host}:{self.port} -> {self.target.name}>"

    def dsn(self, *, app: str = "drdrill") -> str:
        """A libpq connection string through this path."""
        return conninfo(self.host, self.port, app=app)

    def repoint(self, node: PostgresNode) -> None:
        """Send new connections to ``node``; established ones are cut, as Toxiproxy does."""
        self.client.update(self.proxy_name, upstream=node.address)
        self.target = node

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
