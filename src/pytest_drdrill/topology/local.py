"""The embedded default backend: the two-region topology as local processes.

Primary region: PostgreSQL primary and synchronous standby, Redis primary and two
replicas (with three Sentinels when Sentinel decides Redis failovers), an object
store. DR region: asynchronous PostgreSQL standby, Redis replica, its own object store
fed by the project's cross-region replicator. Backup region: an object store that only
receives backup copies, started when a drill first takes backups. Every path between
them, and every path from clients, is a fault-proxy entry (see
:mod:`pytest_drdrill.topology.links`). The three services start in parallel.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.ledger import SELECT_IDS
from pytest_drdrill.servers import processes
from pytest_drdrill.topology import template_cache
from pytest_drdrill.topology._protocol import BACKUP_REGION
from pytest_drdrill.topology.dataroot import make_dataroot, reap_dataroots
from pytest_drdrill.topology.postgres import (
    LocalPostgresNode,
    PostgresInstall,
    archive_settings,
    write_auto_conf,
)
from pytest_drdrill.topology.postgres import make_template as postgres_template
from pytest_drdrill.topology.proxied import (
    DR,
    PRIMARY,
    REDIS_DR,
    REDIS_PRIMARY,
    S3_BACKUP,
    S3_DR,
    S3_PRIMARY,
    ProxiedTopology,
    sync_setting,
)
from pytest_drdrill.topology.sizes import Sizes

if TYPE_CHECKING:
    from pytest_drdrill.proxy import ProxyClient, ProxyServer
    from pytest_drdrill.proxy.identity import FaultProxyIdentity
    from pytest_drdrill.servers.processes import RunAs
    from pytest_drdrill.topology.nodes import ServiceNode
    from pytest_drdrill.topology.redis import RedisInstall
    from pytest_drdrill.topology.sentinel import LocalSentinel

logger = logging.getLogger(__name__)


class LocalTopology(ProxiedTopology):
    """The two-region topology as local processes behind the fault proxy.

    Build it with :meth:`build`; :meth:`close` removes every process and proxy. Besides
    the :class:`~pytest_drdrill.topology._protocol.Topology` protocol it has every
    optional capability: the primary region's Sentinels when asked for, a WAL spool, and forensic
    reads of a node's disk.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 two regions with Redis and object storage.
    """

    backend = "local"

    def __init__(
        self, workdir: Path, dataroot: Path, proxy: ProxyClient, *, sizes: Sizes | None = None
    ) -> None:
        super().__init__(workdir, dataroot, proxy)
        #: How many of each server to build (``--drill-sizes``).
        self.sizes = sizes or Sizes()
        #: The primary region's Sentinels, when Sentinel decides Redis failovers.
        self.sentinels: list[LocalSentinel] = []
        #: The first of :attr:`sentinels` (``None`` without them), as the protocol names it.
        self.sentinel: LocalSentinel | None = None
        #: Where every PostgreSQL node archives its finished WAL segments.
        self.wal_spool: Path | None = None

    @classmethod
    def build(
        cls,
        workdir: Path,
        *,
        dataroot: Path,
        install: PostgresInstall,
        template: Path,
        run_as: RunAs | None,
        proxy: ProxyClient,
        redis_install: RedisInstall,
        sentinel: bool = False,
        **options: Any,
    ) -> Self:
        """Start the topology and wait until every replica replicates.

        :param workdir: a directory for logs (pytest's ``tmp_path``).
        :param dataroot: a directory the server account can reach, for data directories.
        :param install: the PostgreSQL binaries.
        :param template: the session's template data directory.
        :param run_as: the account servers run as when pytest runs as root.
        :param proxy: the fault proxy that carries every path.
        :param redis_install: the Redis binaries.
        :param sentinel: also start the primary region's three Redis Sentinels (quorum 2)
            watching the Redis primary.
        :param options: passed to the constructor of a subclass that takes more (the
            Patroni topology's settings).
        :raises TopologyError: when a node does not come up; what was started is removed.
        """
        topo = cls(workdir, dataroot, proxy, **options)
        try:
            topo._start(install, template, run_as, redis_install, sentinel=sentinel)
        except BaseException:
            topo.close()
            raise
        return topo

    def _start(
        self,
        install: PostgresInstall,
        template: Path,
        run_as: RunAs | None,
        redis_install: RedisInstall,
        *,
        sentinel: bool,
    ) -> None:
        t0 = timing.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        data = self.dataroot / self.id
        data.mkdir()
        if run_as is not None:
            run_as.own(data)
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            futures = [
                pool.submit(self._start_postgres, data, install, template, run_as, t0),
                pool.submit(self._start_redis, data, redis_install, t0, sentinel=sentinel),
                pool.submit(self._start_storage, data, t0),
            ]
            errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
        self.timings["ready"] = timing.monotonic() - t0

    # --- PostgreSQL -------------------------------------------------------------------------

    def _start_postgres(
        self, data: Path, install: PostgresInstall, template: Path, run_as: RunAs | None,
        t0: float,
    ) -> None:  # fmt: skip
        def make(name: str, region: str) -> LocalPostgresNode:
            return LocalPostgresNode(
                name, region, data / name, install, run_as, log=self.workdir / f"{name}.log"
            )

        primary, dr = make(PRIMARY, "primary"), make(DR, "dr")
        in_region = (*self.sizes.sync_names(), *self.sizes.read_names())
        standbys = (*(make(name, "primary") for name in in_region), dr)
        # Every node archives finished WAL segments into one spool, the cluster's WAL
        # repository: after a failover the new primary goes on archiving into it. Backup
        # drills ship the spool, encrypted, to object storage (backup/postgres.py).
        self.wal_spool = data / "wal-spool"
        self.wal_spool.mkdir(mode=0o700)
        if run_as is not None:
            run_as.own(self.wal_spool)
        archiving = archive_settings(self.wal_spool)
        for node in (primary, *standbys):
            self.pg_nodes[node.name] = node
            node.settings["archive_mode"] = archiving["archive_mode"]
        self._sync_names = self.sizes.sync_names()
        primary.init_from_template(template)
        # In the data directory, not on the command line: a backup tool (pgBackRest)
        # replaces it with ALTER SYSTEM while the servers run; standbys copy it.
        auto_conf = {"archive_command": archiving["archive_command"]}
        write_auto_conf(primary.datadir, auto_conf)
        primary.start(extra={"synchronous_standby_names": sync_setting(self._sync_names)})
        self.timings["postgres primary"] = timing.monotonic() - t0
        for standby in standbys:
            self.replication_links[standby.name] = self._link(
                f"repl-{standby.name}",
                primary,
                f"{standby.name} -> {PRIMARY} (replication)",
                source=standby.name,
                kind="replication",
            )

        def clone_and_start(standby: LocalPostgresNode) -> None:
            link = self.replication_links[standby.name]
            standby.init_standby_from_template(template, link.host, link.port, auto_conf)
            standby.start()

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(standbys)) as pool:
            for future in [pool.submit(clone_and_start, s) for s in standbys]:
                future.result()
        for node in (primary, *standbys):
            self._client_path(node)
        self.pg_endpoint = self._endpoint("postgres", primary)
        self._wait_streaming(primary, timeout=30)
        self.timings["postgres streaming"] = timing.monotonic() - t0

    # --- Redis ------------------------------------------------------------------------------

    def _start_redis(self, data: Path, install: RedisInstall, t0: float, *, sentinel: bool) -> None:
        from pytest_drdrill.topology.redis import LocalRedisNode

        def make(name: str, region: str) -> LocalRedisNode:
            workdir = data / name
            workdir.mkdir()
            return LocalRedisNode(name, region, workdir, install, log=self.workdir / f"{name}.log")

        primary = make(REDIS_PRIMARY, "primary")
        # The DR replica stays first after the primary: the reference failover
        # (recovery.services.redis_candidate) still promotes it, as before the primary
        # region gained its own replicas.
        in_region = self.sizes.redis_replica_names()
        if sentinel and not in_region:
            raise TopologyError(
                "Sentinel fails Redis over inside the primary region, which has no replica: "
                "give --drill-sizes a redis_replicas of 1 or more"
            )
        replicas = [make(REDIS_DR, "dr")] + [make(name, "primary") for name in in_region]
        self.redis_nodes = {node.name: node for node in (primary, *replicas)}
        if sentinel:
            # Sentinel fails over inside the primary region only; the DR node is promoted
            # by a region failover, whose REPLICAOF NO ONE ignores the priority.
            replicas[0].replica_priority = 0
        primary.start()
        for replica in replicas:
            link = self._link(
                f"repl-{replica.name}",
                primary,
                f"{replica.name} -> {primary.name} (replication)",
                source=replica.name,
                kind="replication",
            )
            self.redis_links[replica.name] = link
            replica.start(replicaof=link.address)
        for node in (primary, *replicas):
            self._client_path(node)
        self.redis_endpoint = self._endpoint("redis", primary)
        for replica in replicas:
            replica.wait_replicating(timeout=15)
        self.timings["redis replicating"] = timing.monotonic() - t0
        if sentinel:
            from pytest_drdrill.topology.sentinel import start_group

            self.sentinels = start_group(
                data,
                install,
                master_name=f"drdrill-{self.id}",
                master_address=primary.address,
                replicas=[r.address for r in replicas],
                logdir=self.workdir,
            )
            self.sentinel = self.sentinels[0]
            self.timings["redis sentinels"] = timing.monotonic() - t0

    # --- object storage ---------------------------------------------------------------------

    def _start_storage(self, data: Path, t0: float) -> None:
        from pytest_drdrill.topology.s3 import LocalS3Node

        nodes = [
            LocalS3Node(name, region, data / name, log=self.workdir / f"{name}.log")
            for name, region in (
                (S3_PRIMARY, "primary"), (S3_DR, "dr"), (S3_BACKUP, BACKUP_REGION)
            )
        ]  # fmt: skip
        for node in nodes:
            (data / node.name).mkdir()
            self.s3_nodes[node.name] = node
        serving, backup = nodes[:2], nodes[2]
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(serving)) as pool:
            for future in [pool.submit(node.start) for node in serving]:
                future.result()
        self._wire_storage(serving[0], serving[1], t0)

        def start_backup() -> None:
            backup.start()
            self._client_path(backup)

        # Started by the first drill that takes backups (backup_store()), not here: its
        # start competes for the CPU with PostgreSQL's, on every drill.
        self._start_backup_store = start_backup

    def ledger_ids_of(self, name: str) -> set[int]:
        """Read the ledger that node ``name`` holds on disk, without reviving the node.

        Its data directory is copied and the copy started as an isolated server on a new
        port, behind no endpoint and with no standby attached, so a fenced node stays
        fenced. Crash recovery on the copy yields every row the node had committed: the
        ground truth to check measured data loss against.
        """
        node = self.pg_nodes[name]
        if not isinstance(node, LocalPostgresNode):
            raise TopologyError(f"{name} is not a local node")
        return self._ledger_on_disk(node, node.datadir, node.install, node.run_as)

    def _ledger_on_disk(
        self, node: ServiceNode, datadir: Path, install: PostgresInstall, run_as: RunAs | None
    ) -> set[int]:
        """The ledger ids in a copy of ``node``'s stopped data directory ``datadir``."""
        name = node.name
        if node.is_running():
            raise TopologyError(f"{name} still runs; crash or stop it before reading its disk")
        copy = LocalPostgresNode(
            f"{name}-forensic", node.region, self.dataroot / self.id / f"{name}-forensic",
            install, run_as, log=self.workdir / f"{name}-forensic.log",
        )  # fmt: skip
        copy.init_from_template(datadir)
        (copy.datadir / "postmaster.pid").unlink(missing_ok=True)
        for signal_file in ("standby.signal", "recovery.signal"):
            (copy.datadir / signal_file).unlink(missing_ok=True)
        try:
            copy.start()
            with psycopg.connect(copy.dsn(), autocommit=True) as conn:
                return {row[0] for row in conn.execute(SELECT_IDS)}
        finally:
            copy.cleanup()

    def close(self) -> None:
        """Kill every node and the Sentinel, delete every proxy entry and the data; never raises."""
        for sentinel in self.sentinels:
            sentinel.cleanup()
        super().close()


TOXIPROXY_URL_ENV = "DRDRILL_TOXIPROXY_URL"


class LocalBackend:
    """Session-wide resources of the local backend: binaries, template, fault proxy.

    :param basedir: a session temp directory (pytest's) for logs.
    :param pg_bin: ``--drill-pg-bin`` / ``drill_pg_bin``, or ``None`` to discover.
    :param run_as: ``--drill-run-as`` / ``drill_run_as``, or ``None`` for ``postgres``.
    :param redis_bin: ``--drill-redis-bin`` / ``drill_redis_bin``, or ``None`` to discover.
    :param sizes: ``--drill-sizes`` / ``drill_sizes``: server counts of the reference topology
        (an HA stack's topology keeps its own shape).

    .. versionadded:: 0.1
    """

    name = "local"

    def __init__(
        self,
        basedir: Path,
        *,
        pg_bin: str | None = None,
        run_as: str | None = None,
        redis_bin: str | None = None,
        sizes: Sizes | None = None,
    ) -> None:
        self.basedir = basedir
        #: ``--drill-sizes``: how many of each server the reference topology has.
        self.sizes = sizes or Sizes()
        self._pg_bin = pg_bin
        self._redis_bin = redis_bin
        self._run_as_name = run_as
        self.reaped: list[str] = []
        self.dataroot: Path | None = None
        self._proxy_server: ProxyServer | None = None
        self._proxy_identity: FaultProxyIdentity | None = None

    def fault_proxy(self) -> FaultProxyIdentity:
        """``DRDRILL_TOXIPROXY_URL``'s proxy, else ``toxiproxy-server`` on PATH, else the built-in.

        Before :meth:`start` the choice :meth:`start` will make; after it, the proxy in use
        as its API names its version.
        """
        from pytest_drdrill.proxy import find_toxiproxy_server, identity

        if self._proxy_identity is not None:
            return self._proxy_identity
        external = os.environ.get(TOXIPROXY_URL_ENV)
        if external:
            return identity.of_url(external)
        program = find_toxiproxy_server()
        if program is not None:
            return identity.of_program(program)
        return identity.builtin()

    def _build_template(self) -> Path:
        assert self.dataroot is not None
        pgdir = self.dataroot / "template"
        pgdir.mkdir()
        if self.run_as is not None:
            self.run_as.own(pgdir)
        return postgres_template(
            self.install, pgdir, self.run_as, log=self.basedir / "template.log"
        )

    def start(self) -> LocalBackend:
        """Remove leftovers of killed runs, find PostgreSQL, build the template, start the proxy."""
        from pytest_drdrill.proxy import ProxyClient, ProxyServer, find_toxiproxy_server
        from pytest_drdrill.proxy.identity import TOXIPROXY_SERVER, from_api_version

        self.reaped = processes.reap_leftovers() + reap_dataroots()
        for line in self.reaped:
            logger.warning("removed leftover: %s", line)
        from pytest_drdrill.topology.redis import RedisInstall

        self.install = PostgresInstall.discover(self._pg_bin)
        self.redis_install = RedisInstall.discover(self._redis_bin)
        self.run_as = processes.RunAs.resolve(self._run_as_name)
        self.dataroot = make_dataroot()
        t0 = timing.monotonic()
        self.template, self.template_cached = template_cache.template_for(
            self.install, self.run_as, self._build_template
        )
        self.template_seconds = timing.monotonic() - t0
        external = os.environ.get(TOXIPROXY_URL_ENV)
        if external:
            self.proxy = ProxyClient(external)
            # Fails now, with the client's hint, if it is not there.
            self._proxy_identity = from_api_version(self.proxy.version(), where=external)
        else:
            # A toxiproxy-server on PATH is used when there is one; else the built-in proxy.
            program = find_toxiproxy_server()
            server = ProxyServer(self.basedir / "proxy", toxiproxy_server=program)
            (self.basedir / "proxy").mkdir()
            self._proxy_server = server.start()
            self.proxy = server.client()
            name = TOXIPROXY_SERVER if program else None
            self._proxy_identity = from_api_version(
                self.proxy.version(), name=name, where=program or ""
            )
        return self

    @property
    def versions(self) -> dict[str, str]:
        """The host's PostgreSQL and Redis versions and the fault proxy's (once started)."""
        return {
            "postgresql": self.install.version,
            "redis": self.redis_install.version,
            "fault proxy": self.fault_proxy().label,
        }

    def topology(
        self,
        workdir: Path,
        *,
        sentinel: bool = False,
        kind: type[LocalTopology] | None = None,
        **options: Any,
    ) -> LocalTopology:
        """Build a fresh topology for one drill.

        :param sentinel: also start a Redis Sentinel (``--drill-redis-failover=sentinel``).
        :param kind: a subclass of :class:`LocalTopology` to build (an HA stack's, which
            runs PostgreSQL its own way); ``options`` go to its constructor.

        :raises TopologyError: when called before :meth:`start` or after :meth:`close`.
        """
        if self.dataroot is None:
            raise TopologyError("the local backend is not started: call start() first")
        if kind is None:
            options.setdefault("sizes", self.sizes)
        return (kind or LocalTopology).build(
            workdir,
            dataroot=self.dataroot,
            install=self.install,
            template=self.template,
            run_as=self.run_as,
            proxy=self.proxy,
            redis_install=self.redis_install,
            sentinel=sentinel,
            **options,
        )

    def close(self) -> None:
        """Stop the fault proxy this backend started, remove the data root; never raises."""
        if self.dataroot is not None:
            shutil.rmtree(self.dataroot, ignore_errors=True)
            self.dataroot = None
        server = self._proxy_server
        if server is not None:
            try:
                server.stop()
            except Exception:
                logger.exception("stopping the fault proxy failed")
            self._proxy_server = None
