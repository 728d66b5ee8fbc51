"""The Docker backend: the two-region topology as containers, one network per region.

The same topology as the local backend (:mod:`pytest_drdrill.topology.local`), wired the
same way: every path (clients to each node, each replica to its upstream, the object
replicator to the primary store, one endpoint per service) is an entry of the fault proxy,
which runs as a container attached to both regions' networks, and so is the only way
between them. Failover, restore and measurement code is shared with the local backend;
only how nodes start, stop, crash and are reached differs (:mod:`.docker_nodes`).

Per session: the region networks, the fault proxy container, and a template cluster
(``initdb`` in a container, once). Per drill: seven containers (three PostgreSQL, two
Redis, two object stores), removed at teardown. Data directories are mounted from the
host at the same paths, so backups, the WAL spool and forensic reads work on the host as
on the local backend. Everything carries the run's labels; leftovers of a killed run are
removed when the next one starts (:mod:`.reaper`).
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import shutil
import subprocess
import uuid
from typing import TYPE_CHECKING, Any

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.ledger import LEDGER_DDL, SELECT_IDS
from pytest_drdrill.proxy import ProxyClient
from pytest_drdrill.topology import processes
from pytest_drdrill.topology.dataroot import make_dataroot, reap_dataroots
from pytest_drdrill.topology.docker_engine import (
    LABEL_NODE,
    LABEL_TOPOLOGY,
    Images,
    connect,
    require_images,
    run_labels,
)
from pytest_drdrill.topology.docker_networks import RegionNetworks
from pytest_drdrill.topology.docker_nodes import (
    ContainerNode,
    DockerPostgresNode,
    DockerRedisNode,
    DockerS3Node,
    HostTools,
)
from pytest_drdrill.topology.links import Link
from pytest_drdrill.topology.postgres import BASE_SETTINGS as PG_SETTINGS
from pytest_drdrill.topology.postgres import PostgresInstall, archive_settings
from pytest_drdrill.topology.proxied import (
    BUCKET,
    DR,
    PRIMARY,
    REDIS_DR,
    REDIS_PRIMARY,
    S3_DR,
    S3_PRIMARY,
    SYNC,
    ProxiedTopology,
)
from pytest_drdrill.topology.redis import BASE_SETTINGS as REDIS_SETTINGS
from pytest_drdrill.topology.redis import RedisInstall, settings_args

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import docker
    from docker.models.containers import Container

    from pytest_drdrill.proxy import ProxyInfo

logger = logging.getLogger(__name__)

PG_PORT, REDIS_PORT, S3_PORT, PROXY_API_PORT = 5432, 6379, 5000, 8474

#: Lines PostgreSQL needs so the host, the proxy and the standbys reach it by TCP.
_HBA = "host all all all trust\nhost replication all all trust\n"


def _pg_settings(extra: Mapping[str, str] | None = None) -> list[str]:
    settings = {**PG_SETTINGS, "listen_addresses": "*", "port": str(PG_PORT), **(extra or {})}
    return [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]


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

    def __init__(self, workdir: Path, backend: DockerBackend) -> None:
        assert backend.dataroot is not None
        super().__init__(workdir, backend.dataroot, backend.proxy)
        self.docker = backend
        #: Where every PostgreSQL node archives its finished WAL segments.
        self.wal_spool: Path | None = None
        self._regions: dict[str, str] = {}
        self._extra: list[ContainerNode] = []

    @classmethod
    def start_in(cls, backend: DockerBackend, workdir: Path) -> DockerTopology:
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
    ) -> tuple[Container, dict[str, Any]]:
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
            *_pg_settings(archiving),
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
            standbys.append(self._pg_node(name, region, data, clone, _pg_settings(archiving)))
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
        from pytest_drdrill.clients.s3 import ensure_bucket, s3_client
        from pytest_drdrill.topology.s3_replication import Replicator

        nodes = []
        for name, region in ((S3_PRIMARY, "primary"), (S3_DR, "dr")):
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
            ensure_bucket(s3_client(node.endpoint_url), self.bucket, versioned=True)
            self._client_path(node)
        primary, dr = nodes
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
            _pg_settings(),
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


class DockerBackend:
    """Session-wide resources of the Docker backend: networks, fault proxy, template cluster.

    :param basedir: a session temp directory (pytest's) for logs.
    :param images: the image of each service.
    :param run_id: the run's id; every container, network and volume is labelled with it.
    :param pg_bin: host PostgreSQL binaries for backups and restores (``--drill-pg-bin``).
    :param run_as: host account for those tools (``--drill-run-as``).
    :param redis_bin: host Redis binaries for snapshot checks and restores.

    .. versionadded:: 0.4
    """

    name = "docker"

    def __init__(
        self,
        basedir: Path,
        *,
        images: Images | None = None,
        run_id: str | None = None,
        pg_bin: str | None = None,
        run_as: str | None = None,
        redis_bin: str | None = None,
    ) -> None:
        self.basedir = basedir
        self.images = images or Images()
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.prefix = f"drdrill-{uuid.uuid4().hex[:6]}"
        self._pg_bin, self._redis_bin, self._run_as_name = pg_bin, redis_bin, run_as
        self.reaped: list[str] = []
        self.versions: dict[str, str] = {}
        self.dataroot: Path | None = None
        self.client: docker.DockerClient | None = None
        self._networks: RegionNetworks | None = None
        self._proxy_node: ContainerNode | None = None
        self.proxy_address: dict[str, str] = {}
        self.timings: dict[str, float] = {}

    # --- session ----------------------------------------------------------------------------

    def start(self) -> DockerBackend:
        """Reap leftovers, check the images, create the networks, template and fault proxy.

        :raises TopologyError: when no daemon answers, an image is missing, or a
            container does not come up; what was created is removed.
        """
        import docker.errors

        from pytest_drdrill.topology.reaper import reap

        t0 = timing.monotonic()
        self.client = connect()
        self.labels = run_labels(self.run_id)
        self.tools = HostTools(
            lambda: PostgresInstall.discover(self._pg_bin),
            lambda: RedisInstall.discover(self._redis_bin),
            processes.RunAs.resolve(self._run_as_name),
        )
        try:
            self.reaped = reap(self.client) + reap_dataroots()
            for line in self.reaped:
                logger.warning("removed leftover: %s", line)
            require_images(self.client, self.images)
            self.dataroot = make_dataroot()
            self._networks = RegionNetworks(self.client, self.prefix, self.labels).create()
            with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
                steps = [
                    pool.submit(step)
                    for step in (self._start_proxy, self._make_template, self._redis_version)
                ]
                for step in steps:
                    step.result()
        except docker.errors.DockerException as exc:
            self.close()
            raise TopologyError(f"the Docker daemon refused a request: {exc}") from exc
        except BaseException:
            self.close()
            raise
        self.timings["session"] = timing.monotonic() - t0
        return self

    @property
    def networks(self) -> RegionNetworks:
        """The regions' networks (after :meth:`start`)."""
        if self._networks is None:
            raise TopologyError("the Docker backend is not started: call start() first")
        return self._networks

    @property
    def install(self) -> PostgresInstall:
        """The host's PostgreSQL binaries, which backups and restores run."""
        return self.tools.postgres

    @property
    def redis_install(self) -> RedisInstall:
        """The host's Redis binaries, which snapshot checks and restores run."""
        return self.tools.redis

    @property
    def run_as(self) -> processes.RunAs | None:
        """The host account that runs PostgreSQL tools and restored servers."""
        return self.tools.run_as

    def create_container(
        self,
        image: str,
        *,
        name: str,
        region: str,
        address: str,
        labels: Mapping[str, str] | None = None,
        **options: Any,
    ) -> Container:
        """Create a labelled container attached to ``region``'s network at ``address``."""
        assert self.client is not None
        network = self.networks.network(region)
        return self.client.containers.create(
            image,
            name=name,
            labels={**self.labels, **(labels or {})},
            network=network.name,
            networking_config=self.networks.endpoint(region, address),
            detach=True,
            **options,
        )

    def own_pg(self, path: Path) -> None:
        """Give ``path`` to the PostgreSQL image's account, which the servers run as."""
        processes.RunAs(self.pg_user, self._pg_ids[0], self._pg_ids[1]).own(path)

    def _make_template(self) -> None:
        """``initdb`` once in a container, with the drill tables and TCP access for all."""
        assert self.client is not None and self.dataroot is not None
        image = self.images.postgres
        out = self.client.containers.run(
            image, entrypoint=["sh", "-c", "id -u postgres; id -g postgres; postgres --version"],
            remove=True, labels=self.labels,
        )  # fmt: skip
        lines = out.decode(errors="replace").split("\n")
        self.pg_user = "postgres"
        self._pg_ids = (int(lines[0]), int(lines[1]))
        found = re.search(r"\(PostgreSQL\) (\S+)", out.decode(errors="replace"))
        self.versions["postgresql"] = found.group(1) if found else "unknown"
        home = self.dataroot / "template"
        home.mkdir(mode=0o700)
        self.own_pg(home)
        datadir = home / "data"
        script = (
            f"initdb --no-sync -A trust -U postgres -E UTF8 --locale=C -D {datadir} >/dev/null && "
            f"printf '{_HBA}' >> {datadir}/pg_hba.conf && "
            f'exec postgres -D {datadir} "$@"'
        )
        address = self.networks.allocate("primary")
        container = self.create_container(
            image, name=f"{self.prefix}-template", region="primary", address=address,
            user=self.pg_user, entrypoint=["sh", "-c", script, "template"],
            command=_pg_settings(), volumes={str(home): {"bind": str(home), "mode": "rw"}},
            stop_signal="SIGINT",
        )  # fmt: skip
        node = DockerPostgresNode(
            "template", "primary", container, datadir=datadir, tools=self.tools,
            network=self.networks.network("primary"), host=address, port=PG_PORT,
            log=self.basedir / "template.log",
        )  # fmt: skip
        try:
            node.start()
            node.wait_accepting(timeout=120)
            with psycopg.connect(node.dsn(), autocommit=True) as conn:
                conn.execute(LEDGER_DDL)
                conn.execute("CHECKPOINT")
            node.stop()  # a fast shutdown: the template must be clean
        finally:
            node.cleanup()
        self.template = datadir

    def _redis_version(self) -> None:
        assert self.client is not None
        out = self.client.containers.run(
            self.images.redis, entrypoint=["redis-server", "--version"], remove=True,
            labels=self.labels,
        )  # fmt: skip
        found = re.search(r"v=(\S+)", out.decode(errors="replace"))
        self.versions["redis"] = found.group(1) if found else "unknown"

    def _start_proxy(self) -> None:
        """The fault proxy as a container on both regions' networks: their only way across."""
        assert self.client is not None
        image = self.images.proxy
        options: dict[str, Any] = {"command": ["--listen", f"0.0.0.0:{PROXY_API_PORT}"]}
        if "toxiproxy" in image.rsplit("/", 1)[-1]:
            options = {"command": ["-host=0.0.0.0", f"-port={PROXY_API_PORT}"]}
        addresses = {region: self.networks.allocate(region) for region in ("primary", "dr")}
        container = self.create_container(
            image, name=f"{self.prefix}-proxy", region="primary", address=addresses["primary"],
            **options,
        )  # fmt: skip
        node = ContainerNode(
            "fault-proxy", "primary", container, network=self.networks.network("primary"),
            host=addresses["primary"], port=PROXY_API_PORT, log=self.basedir / "proxy.log",
        )  # fmt: skip
        self._proxy_node = node
        self.networks.network("dr").connect(container, ipv4_address=addresses["dr"])
        self.proxy_address = addresses
        node.start()
        self.proxy = ProxyClient(f"http://{node.address}")

        def check() -> str | None:
            try:
                self.versions["fault proxy"] = self.proxy.version()
            except Exception as exc:  # any failure means: not ready yet
                return str(exc)
            return None

        node.wait_ready(check, timeout=30, what="serving its API")

    def topology(self, workdir: Path, *, sentinel: bool = False) -> DockerTopology:
        """Build a fresh topology for one drill.

        :param sentinel: a Redis Sentinel; not available on this backend yet.
        :raises TopologyError: when called before :meth:`start`, or with ``sentinel``.
        """
        if self.dataroot is None or self._networks is None:
            raise TopologyError("the Docker backend is not started: call start() first")
        if sentinel:
            raise TopologyError(
                "--drill-redis-failover=sentinel is not available on the Docker backend yet; "
                "use --drill-redis-failover=orchestrator or --drill-backend=local"
            )
        return DockerTopology.start_in(self, workdir)

    def close(self) -> None:
        """Remove the proxy, the networks and the data root; never raises."""
        if self._proxy_node is not None:
            self._proxy_node.cleanup()
            self._proxy_node = None
        if self._networks is not None:
            self._networks.remove()
            self._networks = None
        if self.dataroot is not None:
            shutil.rmtree(self.dataroot, ignore_errors=True)
            self.dataroot = None
        if self.client is not None:
            self.client.close()
            self.client = None
