"""The two-region topology wired through the fault proxy, whatever runs the nodes.

Every backend builds the same shape: PostgreSQL primary, synchronous standby and DR
standby, a Redis primary and its DR replica, one object store per region (the local and
Docker backends add the backup region's store for backup copies), and every path
between them (clients to each node, each replica to its upstream, the object replicator
to the primary store, one endpoint per service) an entry of the fault proxy.
:class:`ProxiedTopology` holds that wiring and implements the
:class:`~pytest_drdrill.topology._protocol.Topology` protocol on it; the local, Docker
and running-stack topologies are its subclasses and differ only in how nodes are started
(or found) and reached. Capabilities only some of them have (a Sentinel, a WAL spool,
forensic reads of a node's disk) are declared by the subclass that has them, as the
protocols of :mod:`pytest_drdrill.topology._protocol` describe.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from pytest_drdrill import timing
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.topology._protocol import BACKUP_REGION, OwnedNode
from pytest_drdrill.topology.links import Link

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from pytest_drdrill.proxy import ProxyClient
    from pytest_drdrill.topology._protocol import (
        ObjectStoreNode,
        PostgresNode,
        RedisNode,
        ServiceNode,
    )
    from pytest_drdrill.topology.s3_replication import Replicator

logger = logging.getLogger(__name__)

#: Node names of the two-region topology, the same on every backend.
PRIMARY, SYNC, DR = "pg-primary", "pg-sync", "pg-dr"
#: The second synchronous standby and the read-only replica of the primary region (the
#: requirements' 'sync1,sync2' and async read replica).
SYNC2, READ = "pg-sync2", "pg-read"


def sync_setting(names: tuple[str, ...]) -> str:
    """``synchronous_standby_names`` for ``names``: a commit waits for any one of them.

    ``ANY 1``, not the ``FIRST 1`` PostgreSQL makes of the requirements' bare list
    'sync1,sync2': under ``FIRST 1`` a commit in flight when the first standby dies waits
    for the second's next status reply (measured: 10.0 s at the default
    ``wal_receiver_status_interval``), under ``ANY 1`` the second's confirmation releases
    it at once (docs/architecture.md).
    """
    quoted = ", ".join(f'"{n}"' for n in names)
    return f"ANY 1 ({quoted})" if names else ""


REDIS_PRIMARY, REDIS_DR = "redis-primary", "redis-dr"
S3_PRIMARY, S3_DR = "s3-primary", "s3-dr"
#: The backup region's object store (:data:`~pytest_drdrill.topology._protocol.BACKUP_REGION`).
S3_BACKUP = "s3-backup"
#: The bucket the object workload writes to, replicated across regions.
BUCKET = "drdrill-objects"


class ProxiedTopology:
    """The two-region topology's wiring through the fault proxy, for every backend.

    :param workdir: a directory for logs (pytest's ``tmp_path``).
    :param dataroot: a directory for data directories and scratch space.
    :param proxy: the fault proxy that carries every path.

    Subclasses start (or find) the nodes and fill :attr:`pg_nodes`, :attr:`redis_nodes`,
    :attr:`s3_nodes`, the links and the three endpoints.

    .. versionadded:: 0.5
    """

    backend: str
    bucket = BUCKET

    def __init__(self, workdir: Path, dataroot: Path, proxy: ProxyClient) -> None:
        self.workdir = workdir
        self.dataroot = dataroot
        self.proxy = proxy
        self.id = uuid.uuid4().hex[:8]
        self.pg_nodes: dict[str, PostgresNode] = {}
        self.redis_nodes: dict[str, RedisNode] = {}
        self.s3_nodes: dict[str, ObjectStoreNode] = {}
        self.replication_links: dict[str, Link] = {}
        self.redis_links: dict[str, Link] = {}
        self.client_paths: dict[str, Link] = {}
        self._sync_names: tuple[str, ...] = ()
        self._links: list[Link] = []
        #: The cross-region object replicator, once started; ``None`` when there is none.
        self.replicator: Replicator | None = None
        #: Starts the backup region's store when it was built but left stopped.
        self._start_backup_store: Callable[[], None] | None = None
        self.timings: dict[str, float] = {}
        self.pg_endpoint: Link
        self.redis_endpoint: Link
        self.s3_endpoint: Link
        self.storage_link: Link

    # --- wiring -----------------------------------------------------------------------------

    def _proxy_for(self, source: str) -> ProxyClient:
        """The fault proxy's client that creates the paths ``source`` uses."""
        return self.proxy

    def _link(
        self,
        name: str,
        target: ServiceNode,
        label: str,
        *,
        source: str = "clients",
        upstream_of: Callable[[ServiceNode], str] | None = None,
        kind: str = "path",
    ) -> Link:
        link = Link(
            self._proxy_for(source),
            f"drdrill-{self.id}-{name}",
            target,
            label,
            source=source,
            upstream_of=upstream_of,
            kind=kind,
        )
        self._links.append(link)
        return link

    def _client_path(self, node: ServiceNode) -> Link:
        link = self._link(f"to-{node.name}", node, f"clients -> {node.name}")
        self.client_paths[node.name] = link
        return link

    def _endpoint(self, service: str, node: ServiceNode) -> Link:
        return self._link(
            service,
            node,
            f"clients -> {service} (service endpoint)",
            upstream_of=lambda n: self.client_paths[n.name].address,
            kind="endpoint",
        )

    def _wait_streaming(self, primary: PostgresNode, timeout: float) -> None:
        expected = {n for n in self.pg_nodes if n != primary.name}
        deadline = timing.monotonic() + timeout
        seen: dict[str, tuple[str, str]] = {}
        while timing.monotonic() < deadline:
            with psycopg.connect(primary.dsn(), autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT application_name, state, sync_state FROM pg_stat_replication"
                ).fetchall()
            seen = {r[0]: (r[1], r[2]) for r in rows}
            streaming = {n for n, (state, _) in seen.items() if state == "streaming"}
            # ANY n lists every named standby as "quorum"; FIRST n (other stacks) as "sync".
            states = [seen.get(n, ("", ""))[1] for n in self._sync_names]
            sync_ok = all(s in ("sync", "quorum", "potential") for s in states) and (
                not states or any(s in ("sync", "quorum") for s in states)
            )
            if expected <= streaming and sync_ok:
                return
            timing.sleep(0.01)
        raise TopologyError(
            f"standbys {sorted(expected)} were not all streaming from {primary.name} within "
            f"{timeout:.0f}s; pg_stat_replication showed {seen or 'nothing'}. The server logs "
            f"are in {self.workdir}."
        )

    def _wire_storage(
        self,
        primary: ObjectStoreNode,
        dr: ObjectStoreNode,
        t0: float,
        *,
        backup: ObjectStoreNode | None = None,
    ) -> None:
        """Wire running stores: the bucket, client paths, endpoint, replication to ``dr``.

        The backup region's store gets a client path only: it holds backup copies, not
        the clients' bucket, and nothing replicates into it but the backups' own copy.
        Give it running; a store started later (:meth:`backup_store`) gets its path then.
        """
        from pytest_drdrill.clients.s3 import ensure_bucket, s3_client
        from pytest_drdrill.topology.s3_replication import Replicator

        for node in (primary, dr):
            ensure_bucket(s3_client(node.endpoint_url), self.bucket, versioned=True)
            self._client_path(node)
        if backup is not None:
            self._client_path(backup)
        self.storage_link = self._link(
            f"repl-{dr.name}",
            primary,
            f"{dr.name} <- {primary.name} (replication)",
            source=dr.name,
            kind="replication",
        )
        self.s3_endpoint = self._endpoint("s3", primary)
        self.replicator = Replicator(self.storage_link.endpoint_url, dr.endpoint_url, self.bucket)
        self.replicator.start()
        self.timings["storage replicating"] = timing.monotonic() - t0

    def backup_store(self) -> ObjectStoreNode | None:
        """The backup region's object store, started on first use; ``None`` when there is none.

        Only backups use it, so a backend may build it stopped and leave the start to the
        first drill that takes backups: on the local backend a third ``moto_server`` at
        topology start added 1-2 s to every drill's cold start on a loaded 2-core machine.

        .. versionadded:: 0.9
        """
        start, self._start_backup_store = self._start_backup_store, None
        if start is not None:
            start()
        return next((n for n in self.s3_nodes.values() if n.region == BACKUP_REGION), None)

    # --- services ---------------------------------------------------------------------------

    @property
    def redis_primary(self) -> RedisNode:
        """The Redis node the Redis endpoint points at."""
        return self.redis_endpoint.target  # type: ignore[return-value]

    @property
    def s3_primary(self) -> ObjectStoreNode:
        """The object store the storage endpoint points at."""
        return self.s3_endpoint.target  # type: ignore[return-value]

    def stop_storage_replication(self) -> None:
        """Stop the cross-region replicator (the DR store takes over)."""
        if self.replicator is not None:
            self.replicator.stop()

    def storage_replication_lag(self) -> float:
        """Seconds the DR store is behind, as the replicator measures it."""
        return self.replicator.lag_seconds() if self.replicator is not None else 0.0

    # --- the Topology protocol --------------------------------------------------------------

    @property
    def primary(self) -> PostgresNode:
        """The node behind the service endpoint."""
        return self.pg_endpoint.target  # type: ignore[return-value]

    def serving(self, service: str) -> ServiceNode:
        """The node serving ``service`` now: for PostgreSQL the primary, else the endpoint's."""
        return self.primary if service == "postgres" else self.endpoint(service).target

    def standbys(self) -> list[PostgresNode]:
        """Unfenced nodes other than the primary, synchronous standbys first."""
        others = [n for n in self.pg_nodes.values() if n is not self.primary and not n.fenced]
        return sorted(others, key=lambda n: n.name not in self._sync_names)

    def sync_standby_names(self) -> tuple[str, ...]:
        """Names configured in the primary's ``synchronous_standby_names``."""
        return self._sync_names

    def require_sync(self, primary: PostgresNode, names: tuple[str, ...]) -> None:
        """Make ``names`` the synchronous standbys of ``primary`` (``ALTER SYSTEM``, reload)."""
        with psycopg.connect(primary.dsn(app="drdrill-failover"), autocommit=True) as conn:
            # A utility statement takes no bind parameters: quote the value client-side.
            conn.execute(
                sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}").format(
                    sql.Literal(sync_setting(names))
                )
            )
            conn.execute("SELECT pg_reload_conf()")
        self._sync_names = names

    def endpoint(self, service: str) -> Link:
        """The clients' endpoint of ``service``: ``postgres``, ``redis`` or ``s3``."""
        endpoints = {"postgres": self.pg_endpoint, "redis": self.redis_endpoint}
        endpoints["s3"] = self.s3_endpoint
        try:
            return endpoints[service]
        except KeyError:
            raise TopologyError(
                f"no service {service!r} in this topology; services: {sorted(endpoints)}"
            ) from None

    def nodes(self) -> dict[str, ServiceNode]:
        """Every node of every service, by name."""
        return {**self.pg_nodes, **self.redis_nodes, **self.s3_nodes}

    def links(self) -> list[Link]:
        """Every proxied path, endpoints included."""
        return list(self._links)

    def close(self) -> None:
        """Kill every node, delete every proxy entry and the data directories; never raises."""
        if self.replicator is not None:
            try:
                self.replicator.stop()
            except Exception:  # teardown goes on; nothing else depends on the replicator
                logger.exception("stopping the object replicator failed")
        for node in self.nodes().values():
            if isinstance(node, OwnedNode):
                node.cleanup()
        for link in self._links:
            link.remove()
        shutil.rmtree(self.dataroot / self.id, ignore_errors=True)
