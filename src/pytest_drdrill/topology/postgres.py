"""PostgreSQL servers as local processes: discovery, a per-session template, nodes.

A node is built either by copying a template cluster (``initdb`` runs once per session,
and the template already holds the drill tables) or by ``pg_basebackup -R`` from the
primary, so standbys replicate for real. Servers are started directly (not with
``pg_ctl -w``, which polls every 100 ms) and without Unix sockets: clients use TCP only,
which also avoids the ~107-character socket path limit of deep pytest temp dirs.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.errors import ExecutableMissing, TopologyError
from pytest_drdrill.topology import _process

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pytest_drdrill.topology._process import RunAs

LEDGER_DDL = """
CREATE TABLE drdrill_ledger (
    id bigint PRIMARY KEY,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE drdrill_validation (
    token text PRIMARY KEY,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""

#: Settings every node runs with; each one is here for a measured reason.
BASE_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    # TCP only: no socket-path length limit, no shared socket directory.
    "unix_socket_directories": "",
    # Crashed clusters leak /dev/shm segments with the default "posix".
    "dynamic_shared_memory_type": "mmap",
    # The 5 s default stalls about one promotion in four by ~5.05 s.
    "wal_retrieve_retry_interval": "100ms",
    "wal_level": "replica",
    "max_wal_senders": "10",
    "wal_keep_size": "128MB",
    "hot_standby": "on",
    "shared_buffers": "16MB",
    "max_connections": "40",
    # A crashed node must stay down until the drill decides otherwise.
    "restart_after_crash": "off",
    "logging_collector": "off",
    "log_line_prefix": "%m [%p] %a ",
    "log_min_messages": "warning",
}

_REMEDY = (
    "Install PostgreSQL server binaries (Debian: apt-get install postgresql-15) or point "
    "--drill-pg-bin / drill_pg_bin at the directory holding initdb, postgres and pg_basebackup."
)


class PostgresInstall:
    """The PostgreSQL server binaries a local topology uses.

    :param bindir: directory with ``initdb``, ``postgres`` and ``pg_basebackup``.
    """

    TOOLS = ("initdb", "postgres", "pg_basebackup")

    def __init__(self, bindir: Path) -> None:
        missing = [t for t in self.TOOLS if not (bindir / t).is_file()]
        if missing:
            raise ExecutableMissing(
                f"PostgreSQL binaries {', '.join(missing)} not found in {bindir}. {_REMEDY}"
            )
        self.bindir = bindir
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False
        ).stdout
        match = re.search(r"(\d+)(?:\.(\d+))?", out)
        self.version = match.group(0) if match else "unknown"
        self.major = int(match.group(1)) if match else 0

    @classmethod
    def discover(cls, explicit: str | None = None) -> PostgresInstall:
        """Find the binaries: ``explicit``, else ``pg_config --bindir`` / PATH, else Debian's.

        :param explicit: the ``--drill-pg-bin`` / ``drill_pg_bin`` value.
        :raises ExecutableMissing: with the remedy, when nothing usable is found.
        """
        if explicit:
            return cls(Path(explicit))
        on_path = shutil.which("postgres")
        if on_path:
            return cls(Path(on_path).resolve().parent)
        debian = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/postgres"),
            key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        )
        if debian:
            return cls(debian[-1].parent)
        raise ExecutableMissing(
            f"No PostgreSQL server found on PATH or in /usr/lib/postgresql. {_REMEDY}"
        )

    def tool(self, name: str) -> str:
        """Return the full path of a binary."""
        return str(self.bindir / name)


def conninfo(host: str, port: int, *, dbname: str = "postgres", app: str = "drdrill") -> str:
    """A libpq connection string for a node or endpoint."""
    return f"host={host} port={port} user=postgres dbname={dbname} application_name={app}"


def wait_accepting(
    dsn: str,
    *,
    timeout: float,
    process: subprocess.Popen[bytes],
    datadir: Path,
    log: Path,
    what: str,
) -> None:
    """Poll until the server started as ``process`` accepts a query.

    Fails early if the process exits. The answering server must report ``datadir`` as
    its data directory: whoever else listens on the port (a server that won the port,
    a proxy) must not pass for this one.
    """
    deadline = timing.monotonic() + timeout
    last: Exception | str | None = None
    while timing.monotonic() < deadline:
        if process.poll() is not None:
            exc = TopologyError(f"{what} exited with status {process.returncode} during start")
            exc.add_note(f"last lines of {log}:\n{_process.tail(log)}")
            raise exc
        try:
            with psycopg.connect(dsn, connect_timeout=2, autocommit=True) as conn:
                row = conn.execute("SELECT current_setting('data_directory')").fetchone()
            if row is not None and Path(str(row[0])) == datadir:
                return
            last = f"another server answers on its port (data directory {row[0] if row else '?'})"
        except psycopg.OperationalError as err:
            last = err
        timing.sleep(0.01)
    exc = TopologyError(f"{what} did not accept connections within {timeout:.0f}s: {last}")
    exc.add_note(f"last lines of {log}:\n{_process.tail(log)}")
    raise exc


def make_template(
    install: PostgresInstall, directory: Path, run_as: RunAs | None, log: Path
) -> Path:
    """Create the session's template cluster: initdb once, with the drill tables in it.

    :param install: the binaries.
    :param directory: an empty directory owned by ``run_as``; the template goes inside.
    :param run_as: the account servers run as.
    :param log: where the template server logs.
    :returns: the template's data directory.
    """
    datadir = directory / "template"
    _process.run(
        [install.tool("initdb"), "--no-sync", "-A", "trust", "-U", "postgres", "-E", "UTF8",
         "--locale=C", "-D", str(datadir)],
        run_as=run_as, timeout=120, what="initdb",
    )  # fmt: skip
    port = _process.free_port()
    proc = _process.spawn(
        [install.tool("postgres"), "-D", str(datadir), "-p", str(port),
         *_settings_args(BASE_SETTINGS)],
        log=log, run_as=run_as,
    )  # fmt: skip
    try:
        dsn = conninfo("127.0.0.1", port)
        wait_accepting(
            dsn, timeout=30, process=proc, datadir=datadir, log=log, what="template PostgreSQL"
        )
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(LEDGER_DDL)
            conn.execute("CHECKPOINT")
    finally:
        proc.send_signal(signal.SIGINT)  # fast shutdown: the template must be clean
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _process.kill_tree(proc.pid)
            proc.wait()
    return datadir


def _settings_args(settings: Mapping[str, str]) -> list[str]:
    return [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]


#: Starts retried when another process took the chosen port between choice and bind.
_BIND_ATTEMPTS = 5


class LocalPostgresNode:
    """One PostgreSQL server running as a local process.

    :param name: e.g. ``pg-primary``; also its ``application_name`` towards the primary.
    :param region: ``primary`` or ``dr``.
    :param datadir: its data directory.
    :param install: the binaries.
    :param run_as: the account it runs as.
    :param log: the server's log file; opened by this process, so it may lie anywhere.
    """

    def __init__(
        self,
        name: str,
        region: str,
        datadir: Path,
        install: PostgresInstall,
        run_as: RunAs | None,
        log: Path,
    ) -> None:
        self.name = name
        self.region = region
        self.datadir = datadir
        self.install = install
        self.run_as = run_as
        self.host = "127.0.0.1"
        self.port = _process.free_port()
        self.log = log
        self.settings: dict[str, str] = dict(BASE_SETTINGS)
        self.process: subprocess.Popen[bytes] | None = None
        self.fenced = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.host}:{self.port}>"

    def dsn(self, *, app: str = "drdrill") -> str:
        """Connection string to this node directly (not through any endpoint)."""
        return conninfo(self.host, self.port, app=app)

    @property
    def address(self) -> str:
        """``host:port``, as a proxy upstream."""
        return f"{self.host}:{self.port}"

    # --- building ---------------------------------------------------------------------------

    def init_from_template(self, template: Path) -> LocalPostgresNode:
        """Copy a stopped data directory (the session template) into this node's."""
        # cp -a keeps ownership and modes, which the server checks (data dir must be 0700).
        subprocess.run(["cp", "-a", str(template), str(self.datadir)], check=True)
        return self

    def init_from_basebackup(self, source_host: str, source_port: int) -> LocalPostgresNode:
        """Clone a running primary with ``pg_basebackup -R`` (a streaming standby).

        :param source_host: where the primary (or the replication link in front of it) listens.
        :param source_port: its port.
        """
        _process.run(
            [self.install.tool("pg_basebackup"), "-h", source_host, "-p", str(source_port),
             "-U", "postgres", "-D", str(self.datadir), "-R", "-X", "stream", "-c", "fast",
             "-N", "-d", f"application_name={self.name}"],
            run_as=self.run_as, timeout=300, what=f"pg_basebackup for {self.name}",
        )  # fmt: skip
        return self

    # --- running ----------------------------------------------------------------------------

    def start(self, *, timeout: float = 30.0, extra: Mapping[str, str] | None = None) -> None:
        """Start the server and wait until it accepts queries.

        :raises TopologyError: when it exits or does not answer in time; its log is attached.
        """
        if self.fenced:
            raise TopologyError(f"{self.name} is fenced: a fenced node is never started again")
        if extra:
            self.settings.update(extra)
        for attempt in range(_BIND_ATTEMPTS):
            log_size = self.log.stat().st_size if self.log.exists() else 0
            self.process = _process.spawn(
                [self.install.tool("postgres"), "-D", str(self.datadir), "-p", str(self.port),
                 *_settings_args(self.settings)],
                log=self.log, run_as=self.run_as,
            )  # fmt: skip
            try:
                wait_accepting(
                    self.dsn(),
                    timeout=timeout,
                    process=self.process,
                    datadir=self.datadir,
                    log=self.log,
                    what=self.name,
                )
                return
            except TopologyError:
                if attempt + 1 == _BIND_ATTEMPTS or not self._lost_port_race(log_size):
                    raise
                self.port = _process.free_port()

    def _lost_port_race(self, log_offset: int) -> bool:
        """Whether the last start failed only because another process took its port."""
        with open(self.log, "rb") as log:
            log.seek(log_offset)
            return b"could not create any TCP/IP sockets" in log.read()

    def is_running(self) -> bool:
        """Whether the postmaster process exists (a frozen one counts as running)."""
        return self.process is not None and self.process.poll() is None

    def pids(self) -> list[int]:
        """The postmaster and its children; empty when it is not running."""
        if not self.is_running():
            return []
        assert self.process is not None
        return _process.process_tree(self.process.pid)

    def crash(self) -> None:
        """Kill the postmaster and all its children at once, as a power loss would."""
        if self.process is None:
            return
        shmid = _process.postmaster_shmid(self.datadir)
        pids = _process.kill_tree(self.process.pid)
        self.process.wait()
        _process.wait_gone(pids)
        if shmid is not None:
            _process.remove_sysv_shm(shmid)

    def freeze(self) -> None:
        """SIGSTOP the postmaster and its children: it keeps its sockets but answers nothing."""
        if self.process is not None:
            _process.signal_tree(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT what :meth:`freeze` stopped."""
        if self.process is not None and self.process.poll() is None:
            _process.signal_tree(self.process.pid, signal.SIGCONT)

    def stop(self, *, timeout: float = 10.0) -> None:
        """Fast shutdown (SIGINT); crash it if it does not stop within ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.thaw()
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.crash()

    def fence(self) -> None:
        """Make sure this node never accepts writes again: kill it and refuse restarts."""
        self.fenced = True
        self.crash()

    def cleanup(self) -> None:
        """Kill the node if it runs and free its shared memory; never raises."""
        try:
            self.crash()
        except Exception:  # cleanup must not hide the test's own failure
            import logging

            logging.getLogger(__name__).exception("cleanup of %s failed", self.name)
