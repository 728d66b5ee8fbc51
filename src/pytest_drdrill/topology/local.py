"""The embedded default backend: the PostgreSQL topology as local processes.

Primary region: the primary and one synchronous standby. DR region: one asynchronous
standby. Every standby replicates through its own proxied link, and clients reach the
primary through the proxied service endpoint, so all three paths can be faulted.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.topology import _process
from pytest_drdrill.topology.links import Link
from pytest_drdrill.topology.postgres import LocalPostgresNode, PostgresInstall
from pytest_drdrill.topology.postgres import make_template as postgres_template

if TYPE_CHECKING:
    from pytest_drdrill.proxy import ProxyClient, ProxyServer
    from pytest_drdrill.topology._process import RunAs
    from pytest_drdrill.topology._protocol import PostgresNode

logger = logging.getLogger(__name__)

PRIMARY, SYNC, DR = "pg-primary", "pg-sync", "pg-dr"


class LocalTopology:
    """Primary + synchronous standby (primary region) + asynchronous standby (DR region).

    Build it with :meth:`build`; :meth:`close` removes every process and proxy.

    .. versionadded:: 0.1
    """

    backend = "local"

    def __init__(self, workdir: Path, dataroot: Path, proxy: ProxyClient) -> None:
        self.workdir = workdir
        self.dataroot = dataroot
        self.proxy = proxy
        self.id = uuid.uuid4().hex[:8]
        self.pg_nodes: dict[str, PostgresNode] = {}
        self.replication_links: dict[str, Link] = {}
        self._sync_names: tuple[str, ...] = ()
        self._links: list[Link] = []
        self.timings: dict[str, float] = {}

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
    ) -> LocalTopology:
        """Start the topology and wait until both standbys stream from the primary.

        :param workdir: a directory for logs (pytest's ``tmp_path``).
        :param dataroot: a directory the server account can reach, for data directories.
        :param install: the PostgreSQL binaries.
        :param template: the session's template data directory.
        :param run_as: the account servers run as when pytest runs as root.
        :param proxy: the fault proxy that carries the endpoint and replication links.
        :raises TopologyError: when a node does not come up; what was started is removed.
        """
        topo = cls(workdir, dataroot, proxy)
        try:
            topo._start(install, template, run_as)
        except BaseException:
            topo.close()
            raise
        return topo

    def _link(self, name: str, target: PostgresNode, label: str) -> Link:
        link = Link(self.proxy, f"drdrill-{self.id}-{name}", target, label)
        self._links.append(link)
        return link

    def _start(self, install: PostgresInstall, template: Path, run_as: RunAs | None) -> None:
        t0 = timing.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        data = self.dataroot / self.id
        data.mkdir()
        if run_as is not None:
            run_as.own(data)

        def make(name: str, region: str) -> LocalPostgresNode:
            return LocalPostgresNode(
                name, region, data / name, install, run_as, log=self.workdir / f"{name}.log"
            )

        primary, sync, dr = make(PRIMARY, "primary"), make(SYNC, "primary"), make(DR, "dr")
        for node in (primary, sync, dr):
            self.pg_nodes[node.name] = node
        self._sync_names = (SYNC,)
        primary.init_from_template(template)
        primary.start(extra={"synchronous_standby_names": f'FIRST 1 ("{SYNC}")'})
        self.timings["primary"] = timing.monotonic() - t0
        self.pg_endpoint = self._link("pg", primary, "clients -> postgres")
        for standby in (sync, dr):
            self.replication_links[standby.name] = self._link(
                f"repl-{standby.name}", primary, f"{standby.name} -> {PRIMARY} (replication)"
            )

        def clone_and_start(standby: LocalPostgresNode) -> None:
            link = self.replication_links[standby.name]
            standby.init_from_basebackup(link.host, link.port)
            standby.start()

        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(clone_and_start, s) for s in (sync, dr)]:
                future.result()
        self.timings["standbys"] = timing.monotonic() - t0
        self._wait_streaming(primary, timeout=30)
        self.timings["streaming"] = timing.monotonic() - t0

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
            sync_ok = all(seen.get(n, ("", ""))[1] == "sync" for n in self._sync_names)
            if expected <= streaming and sync_ok:
                return
            timing.sleep(0.01)
        raise TopologyError(
            f"standbys {sorted(expected)} were not all streaming from {primary.name} within "
            f"{timeout:.0f}s; pg_stat_replication showed {seen or 'nothing'}. The server logs "
            f"are in {self.workdir}."
        )

    # --- the Topology protocol --------------------------------------------------------------

    @property
    def primary(self) -> PostgresNode:
        """The node behind the service endpoint."""
        return self.pg_endpoint.target

    def standbys(self) -> list[PostgresNode]:
        """Unfenced nodes other than the primary, synchronous standbys first."""
        others = [n for n in self.pg_nodes.values() if n is not self.primary and not n.fenced]
        return sorted(others, key=lambda n: n.name not in self._sync_names)

    def sync_standby_names(self) -> tuple[str, ...]:
        """Names configured in the primary's ``synchronous_standby_names``."""
        return self._sync_names

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
        if node.is_running():
            raise TopologyError(f"{name} still runs; crash or stop it before reading its disk")
        copy = LocalPostgresNode(
            f"{name}-forensic", node.region, self.dataroot / self.id / f"{name}-forensic",
            node.install, node.run_as, log=self.workdir / f"{name}-forensic.log",
        )  # fmt: skip
        copy.init_from_template(node.datadir)
        (copy.datadir / "postmaster.pid").unlink(missing_ok=True)
        for signal_file in ("standby.signal", "recovery.signal"):
            (copy.datadir / signal_file).unlink(missing_ok=True)
        try:
            copy.start()
            with psycopg.connect(copy.dsn(), autocommit=True) as conn:
                return {row[0] for row in conn.execute("SELECT id FROM drdrill_ledger")}
        finally:
            copy.cleanup()

    def close(self) -> None:
        """Kill every node, delete every proxy entry and the data directories; never raises."""
        for node in self.pg_nodes.values():
            if isinstance(node, LocalPostgresNode):
                node.cleanup()
        for link in self._links:
            link.remove()
        shutil.rmtree(self.dataroot / self.id, ignore_errors=True)


DATAROOT_PREFIX = "drdrill-"


def make_dataroot() -> Path:
    """Create the directory that holds server data directories for one session.

    It lies outside pytest's ``/tmp/pytest-of-<user>``, which pytest keeps at mode 0700
    and resets at every start, so servers running as another account could lose access
    mid-run when another pytest starts. An ``owner`` file lets a later run remove it if
    this one is killed.
    """
    root = Path(tempfile.mkdtemp(prefix=DATAROOT_PREFIX))
    root.chmod(0o711)
    (root / "owner").write_text(_process.owner_tag())
    return root


def reap_dataroots() -> list[str]:
    """Remove data roots whose owning pytest process is gone."""
    removed = []
    for root in Path(tempfile.gettempdir()).glob(f"{DATAROOT_PREFIX}*"):
        try:
            owner = (root / "owner").read_text().strip()
        except OSError:
            continue
        if not _process.owner_alive(owner):
            shutil.rmtree(root, ignore_errors=True)
            removed.append(f"data directory {root} left by dead run {owner}")
    return removed


TOXIPROXY_URL_ENV = "DRDRILL_TOXIPROXY_URL"


class LocalBackend:
    """Session-wide resources of the local backend: binaries, template, fault proxy.

    :param basedir: a session temp directory (pytest's) for logs.
    :param pg_bin: ``--drill-pg-bin`` / ``drill_pg_bin``, or ``None`` to discover.
    :param run_as: ``--drill-run-as`` / ``drill_run_as``, or ``None`` for ``postgres``.

    .. versionadded:: 0.1
    """

    name = "local"

    def __init__(
        self, basedir: Path, *, pg_bin: str | None = None, run_as: str | None = None
    ) -> None:
        self.basedir = basedir
        self._pg_bin = pg_bin
        self._run_as_name = run_as
        self.reaped: list[str] = []
        self.dataroot: Path | None = None
        self._proxy_server: ProxyServer | None = None

    def start(self) -> LocalBackend:
        """Remove leftovers of killed runs, find PostgreSQL, build the template, start the proxy."""
        from pytest_drdrill.proxy import ProxyClient, ProxyServer

        self.reaped = _process.reap_leftovers() + reap_dataroots()
        for line in self.reaped:
            logger.warning("removed leftover: %s", line)
        self.install = PostgresInstall.discover(self._pg_bin)
        self.run_as = _process.RunAs.resolve(self._run_as_name)
        self.dataroot = make_dataroot()
        pgdir = self.dataroot / "template"
        pgdir.mkdir()
        if self.run_as is not None:
            self.run_as.own(pgdir)
        t0 = timing.monotonic()
        self.template = postgres_template(
            self.install, pgdir, self.run_as, log=self.basedir / "template.log"
        )
        self.template_seconds = timing.monotonic() - t0
        external = os.environ.get(TOXIPROXY_URL_ENV)
        if external:
            self.proxy = ProxyClient(external)
            self.proxy.version()  # fail now, with the client's hint, if it is not there
        else:
            server = ProxyServer(
                self.basedir / "proxy", env={_process.OWNER_ENV: _process.owner_tag()}
            )
            (self.basedir / "proxy").mkdir()
            self._proxy_server = server.start()
            self.proxy = server.client()
        return self

    def topology(self, workdir: Path) -> LocalTopology:
        """Build a fresh topology for one drill.

        :raises TopologyError: when called before :meth:`start` or after :meth:`close`.
        """
        if self.dataroot is None:
            raise TopologyError("the local backend is not started: call start() first")
        return LocalTopology.build(
            workdir,
            dataroot=self.dataroot,
            install=self.install,
            template=self.template,
            run_as=self.run_as,
            proxy=self.proxy,
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
