"""What every backend's topology provides, so faults, failover and measurement are shared.

Failover and measurement code talks only to these protocols: SQL over a node's
:meth:`PostgresNode.dsn`, process-level control through the node's methods, and the
network path through :class:`~pytest_drdrill.topology.links.Link` objects, which are
fault-proxy entries on every backend. The node protocols live in
:mod:`~pytest_drdrill.topology.nodes` and are importable from here too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pytest_drdrill.topology.nodes import (
    ObjectStoreNode,
    OwnedNode,
    PostgresNode,
    RedisNode,
    ServiceNode,
)

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_drdrill.topology.links import Link
    from pytest_drdrill.topology.s3_replication import Replicator
    from pytest_drdrill.topology.sentinel import LocalSentinel


__all__ = [
    "BACKUP_REGION",
    "BackupRegion",
    "REGIONS",
    "SERVICES",
    "ForensicLedger",
    "ObjectReplicated",
    "ObjectStoreNode",
    "OwnedNode",
    "PostgresNode",
    "RedisNode",
    "SentinelWatched",
    "ServiceNode",
    "Topology",
    "WalArchived",
]


#: The services of the two-region topology, as named in results and hooks.
SERVICES = ("postgres", "redis", "s3")

#: The two regions: the one serving at the start, and the disaster-recovery one.
REGIONS = ("primary", "dr")

#: The third site of the requirements (``backup_site``): an object store that receives
#: copies of every backup, so a backup survives the loss of both serving regions. It
#: serves no clients and is never a failover target, hence not one of :data:`REGIONS`.
BACKUP_REGION = "backup"


@runtime_checkable
class Topology(Protocol):
    """The two-region system under test: PostgreSQL, Redis and object storage.

    Primary region: PostgreSQL primary + synchronous standby, Redis primary, object
    store. DR region: asynchronous PostgreSQL standby, Redis replica, its own object
    store fed by cross-region replication. Clients reach each service through one
    endpoint; every path is a :class:`~pytest_drdrill.topology.links.Link`.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 two regions, Redis and object storage.
    """

    #: Unique per topology: names its data directories and scratch space.
    id: str
    backend: str
    bucket: str
    pg_nodes: dict[str, PostgresNode]
    redis_nodes: dict[str, RedisNode]
    s3_nodes: dict[str, ObjectStoreNode]
    pg_endpoint: Link
    redis_endpoint: Link
    s3_endpoint: Link
    #: PostgreSQL standby name -> its replication path to the primary.
    replication_links: dict[str, Link]
    #: Redis replica name -> its replication path to the Redis primary.
    redis_links: dict[str, Link]
    #: The object replicator's path to the primary region's store.
    storage_link: Link
    #: Node name -> the clients' own path to that node (service endpoints lead here).
    client_paths: dict[str, Link]

    @property
    def primary(self) -> PostgresNode:
        """The PostgreSQL node the service endpoint currently points at."""
        ...

    def serving(self, service: str) -> ServiceNode:
        """The node serving ``service`` now (PostgreSQL: :attr:`primary`).

        An endpoint may lead to a load balancer rather than to a node (HAProxy in front
        of Patroni): faults and probes aimed at "the serving node" use this.

        .. versionadded:: 0.6
        """
        ...

    def standbys(self) -> list[PostgresNode]:
        """Every PostgreSQL node that is neither the primary nor fenced, sync standbys first."""
        ...

    def sync_standby_names(self) -> tuple[str, ...]:
        """Names of the standbys configured as synchronous."""
        ...

    def endpoint(self, service: str) -> Link:
        """The clients' endpoint of ``service`` (one of :data:`SERVICES`)."""
        ...

    def nodes(self) -> dict[str, ServiceNode]:
        """Every node of every service, by name."""
        ...

    def links(self) -> list[Link]:
        """Every proxied path, endpoints included."""
        ...

    def stop_storage_replication(self) -> None:
        """Stop cross-region object replication (the DR store takes over)."""
        ...

    def storage_replication_lag(self) -> float:
        """Seconds the DR object store is behind the primary region's."""
        ...

    def close(self) -> None:
        """Stop and remove everything the topology started; never raises."""
        ...


# --- optional capabilities of a topology ----------------------------------------------------
# Only some backends have these. Callers check with isinstance() and say what is missing
# when the topology lacks one, rather than probing attributes.


@runtime_checkable
class SentinelWatched(Protocol):
    """A topology that can run Redis Sentinels to decide Redis failovers.

    .. versionadded:: 0.5
    .. versionchanged:: 0.8 :attr:`sentinels`, a group of them.
    """

    #: The first Sentinel watching the Redis primary; ``None`` when the drill asked for none.
    sentinel: LocalSentinel | None
    #: Every Sentinel watching the Redis primary (each has a ``region``); empty without them.
    sentinels: list[LocalSentinel]


@runtime_checkable
class WalArchived(Protocol):
    """A topology whose PostgreSQL nodes archive finished WAL segments into one spool.

    .. versionadded:: 0.5
    """

    #: The spool directory on this host; ``None`` until PostgreSQL has started.
    wal_spool: Path | None


@runtime_checkable
class ForensicLedger(Protocol):
    """A topology that can read the ledger a stopped PostgreSQL node holds on its disk.

    .. versionadded:: 0.5
    """

    def ledger_ids_of(self, name: str) -> set[int]:
        """The ledger ids node ``name`` committed, read from a copy of its data directory."""
        ...


@runtime_checkable
class ObjectReplicated(Protocol):
    """A topology whose DR object store is fed by a replicator process of the drill's own.

    .. versionadded:: 0.5
    """

    #: The replicator; ``None`` when the topology runs none.
    replicator: Replicator | None


@runtime_checkable
class BackupRegion(Protocol):
    """A topology that may hold an object store in :data:`BACKUP_REGION`, started on demand.

    .. versionadded:: 0.9
    """

    def backup_store(self) -> ObjectStoreNode | None:
        """The backup region's store, started if it was left stopped; ``None`` when none."""
        ...
