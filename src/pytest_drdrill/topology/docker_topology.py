"""The Docker backend's topology: the two-region topology as containers, one network per region.

The backup region's object store runs on a network of its own too.

Wired as every proxied topology (:mod:`pytest_drdrill.topology.proxied`); only how
nodes start, stop, crash and are reached differs (:mod:`.docker_nodes`). Data
directories are mounted from the host at the same paths, so backups, the WAL spool and
forensic reads work on the host as on the local backend. The session's resources
(networks, fault proxy, template cluster) are :class:`~.docker.DockerBackend`'s; this
module sees them through :class:`ContainerHost`.
"""

from __future__ import annotations

import concurrent.futures
import shutil
import subprocess
from typing import TYPE_CHECKING, Any, Protocol

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.ledger import SELECT_IDS
from pytest_drdrill.proxy import ProxyClient
from pytest_drdrill.topology._protocol import BACKUP_REGION
from pytest_drdrill.topology.docker_engine import LABEL_NODE, LABEL_TOPOLOGY
from pytest_drdrill.topology.docker_nodes import (
    ContainerNode,
    DockerPostgresNode,
    DockerRedisNode,
    DockerS3Node,
)
from pytest_drdrill.topology.postgres import BASE_SETTINGS as PG_SETTINGS
from pytest_drdrill.topology.postgres import archive_settings
from pytest_drdrill.topology.proxied import (
    BUCKET,
    DR,
    PRIMARY,
    REDIS_DR,
    REDIS_PRIMARY,
    S3_BACKUP,
    S3_DR,
    S3_PRIMARY,
    SYNC,
    ProxiedTopology,
)
from pytest_drdrill.topology.redis import BASE_SETTINGS as REDIS_SETTINGS
from pytest_drdrill.topology.redis import settings_args

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from testcontainers.core.container import DockerContainer

    from pytest_drdrill.proxy import ProxyInfo
    from pytest_drdrill.topology.docker_engine import Images
    from pytest_drdrill.topology.docker_networks import RegionNetworks
    from pytest_drdrill.topology.docker_nodes import HostTools
    from pytest_drdrill.topology.links import Link

PG_PORT, REDIS_PORT, S3_PORT = 5432, 6379, 5000


def pg_settings(extra: Mapping[str, str] | None = None) -> list[str]:
    """``postgres`` arguments for a node in a container: the base settings, listening on all."""
    settings = {**PG_SETTINGS, "listen_addresses": "*", "port": str(PG_PORT), **(extra or {})}
    return [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]


class ContainerHost(Protocol):
    """What a Docker topology uses of its session (:class:`~.docker.DockerBackend`).

    .. versionadded:: 0.5
    """

    dataroot: Path | None
    proxy: ProxyClient
    images: Images
    prefix: str
    pg_user: str
    template: Path
    tools: HostTools
    #: Region -> the fault proxy's address in that region's network.
    proxy_address: dict[str, str]

    @property
    def networks(self) -> RegionNetworks:
        """The regions' networks."""
        ...

    def create_container(
        self,
        image: str,
        *,
        name: str,
        region: str,
        address: str,
        labels: Mapping[str, str] | None = None,
        **options: Any,
    ) -> DockerContainer:
        """A labelled container attached to ``region``'s network at ``address``, not started."""
        ...

    def own_pg(self, path: Path) -> None:
        """Give ``path`` to the account PostgreSQL runs as in the image."""
        ...


def _copy_datadir(source: Path, target: Path) -> None:
    # cp -a keeps the owner (the image's postgres account) and the modes the server checks.
    subprocess.run(["cp", "-a", str(source), str(target)], check=True)


class _ListenOn(ProxyClient):
    """The fault proxy's client, creating every proxy on one of the proxy's own addresses.

    :class:`~pytest_drdrill.topology.links.Link` asks for a loopback listener, which is
    right for a proxy on the host; in a container, a path must listen on the proxy's
    address in the network of whoever uses it (clients: the primary region's, which the
    host reaches; a DR replica: the DR region's).
    """

    def __init__(self, base: ProxyClient, host: str) -> None:
        super().__init__(base.base_url, timeout=base.timeout)
        self.listen_host = host

    def create(self, name: str, *, listen: str, upstream: str, enabled: bool = True) -> ProxyInfo:
        """Create the proxy on ``listen_host``, on a port the proxy picks."""
        return super().create(
            name, listen=f"{self.listen_host}:0", upstream=upstream, enabled=enabled
        )


class DockerTopology(ProxiedTopology):
    """The two-region topology as containers behind the fault proxy's container.

    It shares the wiring of every proxied topology (links, endpoints, the object
    replicator and every method of the :class:`~pytest_drdrill.topology._protocol.Topology`
    protocol); the nodes are containers. Of the optional capabilities it has a WAL spool
    and forensic reads of a node's disk, not a Sentinel. Build it with :meth:`start_in`.

    .. versionadded:: 0.4
    """

    backend = "docker"
    bucket = BUCKET

    def __init__(self, workdir: Path, backend: ContainerHost) -> None:
        assert backend.dataroot is not None
        super().__init__(workdir, backend.dataroot, backend.proxy)
        self.docker = backend
        #: Where every PostgreSQL node archives its finished WAL segments.
        self.wal_spool: Path | None = None
        self._regions: dict[str, str] = {}
        self._extra: list[ContainerNode] = []

    @classmethod
    def start_in(cls, backend: ContainerHost, workdir: Path) -> DockerTopology:
        """Start the topology's containers and wait until every replica replicates.

        :param backend: the started Docker backend (networks, proxy, template).
        :param workdir: a directory for the containers' logs (pytest's ``tmp_path``).
        :raises TopologyError: when a node does not come up; what was started is removed.
        """
        topo = cls(workdir, backend)
        try:
            topo._start_containers()
        except BaseException:
            topo.close()
            raise
        return topo

    # --- wiring -----------------------------------------------------------------------------

    def _proxy_for(self, source: str) -> ProxyClient:
        """Paths listen on the proxy's address in the network of whoever uses them."""
        region = "primary" if source == "clients" else self._regions[source]
        return _ListenOn(self.proxy, self.docker.proxy_address[region])

    def _container(
        self, name: str, region: str, image: str, **options: Any
    ) -> tuple[DockerContainer, dict[str, Any]]:
        """Create (not start) a node's container at a fresh address of its region."""
        address = self.docker.networks.allocate(region)
        container = self.docker.create_container(
            image,
            name=f"{self.docker.prefix}-{self.id}-{name}",
            region=region,
            address=address,
            labels={LABEL_TOPOLOGY: self.id, LABEL_NODE: name},
            **options,
        )
        self._regions[name] = region
        where = {
            "network": self.docker.networks.network(region),
            "host": address,
            "log": self.workdir / f"{name}.log",
        }
        return container, where

    def _start_containers(self) -> None:
        t0 = timing.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        data = self.dataroot / self.id
        data.mkdir(mode=0o711)
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            futures = [
                pool.submit(self._start_postgres_containers, data, t0),
                pool.submit(self._start_redis_containers, data, t0),
                pool.submit(self._start_storage_containers, t0),
            ]
            errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
        self.timings["ready"] = timing.monotonic() - t0

    # --- PostgreSQL -------------------------------------------------------------------------

    def _pg_node(
        self, name: str, region: str, data: Path, script: str, args: list[str]
    ) -> DockerPostgresNode:
        home = data / name
        home.mkdir(mode=0o700)
        self.docker.own_pg(home)
        mounts = {str(home): {"bind": str(home), "mode": "rw"}}
        assert self.wal_spool is not None
        mounts[str(self.wal_spool)] = {"bind": str(self.wal_spool), "mode": "rw"}
        container, where = self._container(
            name,
            region,
            self.docker.images.postgres,
            user=self.docker.pg_user,
            entrypoint=["sh", "-c", script, name],
            command=args,
            environment={"DATADIR": str(home / "data")},
            volumes=mounts,
            stop_signal="SIGINT",  # PostgreSQL's fast shutdown; SIGTERM waits for clients
        )
        node = DockerPostgresNode(
            name, region, container, datadir=home / "data", tools=self.docker.tools,
            port=PG_PORT, **where,
        )  # fmt: skip
        self.pg_nodes[name] = node
        return node

    def _start_postgres_containers(self, data: Path, t0: float) -> None:
        self.wal_spool = data / "wal-spool"
        self.wal_spool.mkdir(mode=0o700)
        self.docker.own_pg(self.wal_spool)
        archiving = archive_settings(self.wal_spool)
        self._sync_names = (SYNC,)
        primary_args = [
            *pg_settings(archiving),
            "-c",
            f'synchronous_standby_names=FIRST 1 ("{SYNC}")',
        ]
        primary = self._pg_node(
            PRIMARY, "primary", data, 'exec postgres -D "$DATADIR" "$@"', primary_args
        )
        _copy_datadir(self.docker.template, primary.datadir)
        primary.start()
        primary.wait_accepting()
        self.timings["postgres primary"] = timing.monotonic() - t0
        standbys = []
        for name, region in ((SYNC, "primary"), (DR, "dr")):
            self._regions[name] = region
            link = self._link(
                f"repl-{name}",
                primary,
                f"{name} -> {PRIMARY} (replication)",
                source=name,
                kind="replication",
            )
            self.replication_links[name] = link
            clone = (
                f'pg_basebackup -h {link.host} -p {link.port} -U postgres -D "$DATADIR" -R '
                f"-X stream -c fast -N -d application_name={name} && "
                'exec postgres -D "$DATADIR" "$@"'
            )
            standbys.append(self._pg_node(name, region, data, clone, pg_settings(archiving)))
        for standby in standbys:
            standby.start()
        for standby in standbys:
            standby.wait_accepting()
        for node in (primary, *standbys):
            self._client_path(node)
        self.pg_endpoint = self._endpoint("postgres", primary)
        self._wait_streaming(primary, timeout=30)
        self.timings["postgres streaming"] = timing.monotonic() - t0

    # --- Redis ------------------------------------------------------------------------------

    def _redis_node(
        self, name: str, region: str, data: Path, replicaof: Link | None
    ) -> DockerRedisNode:
        workdir = data / name
        workdir.mkdir(mode=0o700)
        settings = {
            **REDIS_SETTINGS,
            "bind": "0.0.0.0",
            "port": str(REDIS_PORT),
            "dir": str(workdir),
            "dbfilename": f"{name}.rdb",
            "logfile": "",
        }
        argv = ["redis-server", *settings_args(settings)]
        if replicaof is not None:
            argv += ["--replicaof", replicaof.host, str(replicaof.port)]
        container, where = self._container(
            name,
            region,
            self.docker.images.redis,
            entrypoint=argv[:1],
            command=argv[1:],
            volumes={str(workdir): {"bind": str(workdir), "mode": "rw"}},
        )
        node = DockerRedisNode(
            name, region, container, workdir=workdir, tools=self.docker.tools, port=REDIS_PORT,
            **where,
        )  # fmt: skip
        self.redis_nodes[name] = node
        return node

    def _start_redis_containers(self, data: Path, t0: float) -> None:
        primary = self._redis_node(REDIS_PRIMARY, "primary", data, None)
        primary.start()
        self._regions[REDIS_DR] = "dr"
        link = self._link(
            f"repl-{REDIS_DR}",
            primary,
            f"{REDIS_DR} -> {REDIS_PRIMARY} (replication)",
            source=REDIS_DR,
            kind="replication",
        )
        self.redis_links[REDIS_DR] = link
        replica = self._redis_node(REDIS_DR, "dr", data, link)
        replica.start()
        primary.wait_answering()
        for node in (primary, replica):
            self._client_path(node)
        self.redis_endpoint = self._endpoint("redis", primary)
        replica.wait_replicating()
        self.timings["redis replicating"] = timing.monotonic() - t0

    # --- object storage ---------------------------------------------------------------------

    def _start_storage_containers(self, t0: float) -> None:

        nodes = []
        for name, region in ((S3_PRIMARY, "primary"), (S3_DR, "dr"), (S3_BACKUP, BACKUP_REGION)):
            container, where = self._container(
                name,
                region,
                self.docker.images.s3,
                entrypoint=["moto_server"],
                command=["-H", "0.0.0.0", "-p", str(S3_PORT)],
            )
            node = DockerS3Node(name, region, container, port=S3_PORT, **where)
            self.s3_nodes[name] = node
            nodes.append(node)
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_answering()
        self._wire_storage(nodes[0], nodes[1], t0, backup=nodes[2])

    # --- forensics --------------------------------------------------------------------------

    def ledger_ids_of(self, name: str) -> set[int]:
        """Read the ledger that node ``name`` holds on disk, without reviving the node.

        Its data directory is copied and the copy started in a new container, behind no
        endpoint and with no standby attached, so a fenced node stays fenced. Crash
        recovery on the copy yields every row the node had committed.
        """
        node = self.pg_nodes[name]
        if not isinstance(node, DockerPostgresNode):
            raise TopologyError(f"{name} is not a container of this topology")
        if node.is_running():
            raise TopologyError(f"{name} still runs; crash or stop it before reading its disk")
        data = self.dataroot / self.id
        copy = self._pg_node(
            f"{name}-forensic", node.region, data, 'exec postgres -D "$DATADIR" "$@"',
            pg_settings(),
        )  # fmt: skip
        self._extra.append(copy)
        try:
            _copy_datadir(node.datadir, copy.datadir)
            for leftover in ("postmaster.pid", "standby.signal", "recovery.signal"):
                (copy.datadir / leftover).unlink(missing_ok=True)
            copy.start()
            copy.wait_accepting()
            with psycopg.connect(copy.dsn(), autocommit=True) as conn:
                return {row[0] for row in conn.execute(SELECT_IDS)}
        finally:
            copy.cleanup()
            del self.pg_nodes[copy.name]
            self._extra.remove(copy)
            shutil.rmtree(data / copy.name, ignore_errors=True)

    def close(self) -> None:
        """Remove every container, proxy entry and data directory; never raises."""
        for extra in self._extra:
            extra.cleanup()
        super().close()
