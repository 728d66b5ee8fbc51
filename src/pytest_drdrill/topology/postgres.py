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

from pytest_drdrill.errors import ExecutableMissing, TopologyError
from pytest_drdrill.ledger import LEDGER_DDL
from pytest_drdrill.servers import processes
from pytest_drdrill.servers.lifecycle import ServerProcess

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pytest_drdrill.servers.processes import RunAs

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
    processes.run(
        [install.tool("initdb"), "--no-sync", "-A", "trust", "-U", "postgres", "-E", "UTF8",
         "--locale=C", "-D", str(datadir)],
        run_as=run_as, timeout=120, what="initdb",
    )  # fmt: skip
    # In the template, not only in each node's settings: servers that HA tools start from
    # a copy (pg_auto_failover's) or clone must not leave /dev/shm segments behind when a
    # drill kills them.
    write_auto_conf(
        datadir, {"dynamic_shared_memory_type": BASE_SETTINGS["dynamic_shared_memory_type"]}
    )
    server = LocalPostgresNode("template PostgreSQL", "", datadir, install, run_as, log)
    try:
        server.start(timeout=30)
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute(LEDGER_DDL)
            conn.execute("CHECKPOINT")
    finally:
        # A fast shutdown (SIGINT), not a crash: the template must be clean.
        server.stop(timeout=30)
    return datadir


def archive_settings(spool: Path) -> dict[str, str]:
    """Server settings that archive each finished WAL segment into ``spool``.

    The copy goes to a hidden name first and is renamed, so a reader of the spool never
    sees half a segment; an existing segment is never overwritten.
    """
    part = f"{spool}/.%f.part"
    return {
        "archive_mode": "on",
        "archive_command": f"test ! -f {spool}/%f && cp %p {part} && mv {part} {spool}/%f",
    }


def write_auto_conf(datadir: Path, settings: Mapping[str, str]) -> None:
    """Append ``settings`` to ``datadir``'s ``postgresql.auto.conf``.

    Unlike settings on the command line, these can be replaced while the server runs
    (``ALTER SYSTEM`` and a reload), and ``pg_basebackup`` copies them to standbys.
    """
    with open(datadir / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
        for key, value in settings.items():
            conf.write(f"{key} = '{value}'\n")


def _settings_args(settings: Mapping[str, str]) -> list[str]:
    return [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]


class LocalPostgresNode(ServerProcess):
    """One PostgreSQL server running as a local process.

    :param name: e.g. ``pg-primary``; also its ``application_name`` towards the primary.
    :param region: ``primary`` or ``dr``.
    :param datadir: its data directory.
    :param install: the binaries.
    :param run_as: the account it runs as.
    :param log: the server's log file; opened by this process, so it may lie anywhere.
    """

    port_taken = b"could not create any TCP/IP sockets"
    ready_phrase = "accept connections"
    stop_signal = signal.SIGINT

    def __init__(
        self,
        name: str,
        region: str,
        datadir: Path,
        install: PostgresInstall,
        run_as: RunAs | None,
        log: Path,
    ) -> None:
        super().__init__(name, log=log, run_as=run_as)
        self.region = region
        self.datadir = datadir
        self.install = install
        self.settings: dict[str, str] = dict(BASE_SETTINGS)

    def dsn(self, *, app: str = "drdrill") -> str:
        """Connection string to this node directly (not through any endpoint)."""
        return conninfo(self.host, self.port, app=app)

    # --- building ---------------------------------------------------------------------------

    def init_from_template(self, template: Path) -> LocalPostgresNode:
        """Copy a stopped data directory (the session template) into this node's."""
        # cp -a keeps ownership and modes, which the server checks (data dir must be 0700).
        subprocess.run(["cp", "-a", str(template), str(self.datadir)], check=True)
        return self

    def init_standby_from_template(
        self, template: Path, source_host: str, source_port: int, auto_conf: Mapping[str, str]
    ) -> LocalPostgresNode:
        """Copy the template the primary was made from, as a standby streaming from it.

        Primary and standby then share the template's system identifier and last
        checkpoint, so the standby replays from there with WAL streamed from the primary
        (kept by ``wal_keep_size``): no ``pg_basebackup`` round trip, and every standby can
        be made at once.

        :param auto_conf: the primary's own ``postgresql.auto.conf`` settings, which a
            ``pg_basebackup`` would have copied.
        """
        self.init_from_template(template)
        conninfo = (
            f"host={source_host} port={source_port} user=postgres application_name={self.name}"
        )
        write_auto_conf(self.datadir, {**auto_conf, "primary_conninfo": conninfo})
        signal = self.datadir / "standby.signal"
        signal.touch()
        if self.run_as is not None:
            self.run_as.own(signal)
        return self

    def init_from_basebackup(self, source_host: str, source_port: int) -> LocalPostgresNode:
        """Clone a running primary with ``pg_basebackup -R`` (a streaming standby).

        :param source_host: where the primary (or the replication link in front of it) listens.
        :param source_port: its port.
        """
        processes.run(
            [self.install.tool("pg_basebackup"), "-h", source_host, "-p", str(source_port),
             "-U", "postgres", "-D", str(self.datadir), "-R", "-X", "stream", "-c", "fast",
             "-N", "-d", f"application_name={self.name}"],
            run_as=self.run_as, timeout=300, what=f"pg_basebackup for {self.name}",
        )  # fmt: skip
        return self

    # --- running ----------------------------------------------------------------------------

    def command(self) -> list[str]:
        """``postgres`` on this node's data directory and port, with its settings."""
        return [
            self.install.tool("postgres"), "-D", str(self.datadir), "-p", str(self.port),
            *_settings_args(self.settings),
        ]  # fmt: skip

    def check_ready(self) -> str | None:
        """Ready once a query answers and the server reports this node's data directory."""
        try:
            with psycopg.connect(self.dsn(), connect_timeout=2, autocommit=True) as conn:
                row = conn.execute("SELECT current_setting('data_directory')").fetchone()
        except psycopg.OperationalError as err:
            return str(err)
        if row is not None and Path(str(row[0])) == self.datadir:
            return None
        return f"another server answers on its port (data directory {row[0] if row else '?'})"

    def start(self, *, timeout: float = 30.0, extra: Mapping[str, str] | None = None) -> None:
        """Start the server and wait until it accepts queries.

        :param timeout: how long one attempt may take to accept a query.
        :param extra: settings added to the node's own for this and later starts.
        :raises TopologyError: when fenced, or when it exits or does not answer in time;
            its log is attached.
        """
        if self.fenced:
            raise TopologyError(f"{self.name} is fenced: a fenced node is never started again")
        if extra:
            self.settings.update(extra)
        self.launch(timeout=timeout)

    def crash(self) -> None:
        """Kill the postmaster and all its children at once, as a power loss would.

        The shared memory segment a killed postmaster leaves is removed too: it would
        block the next start ("pre-existing shared memory block is still in use").
        """
        shmid = processes.postmaster_shmid(self.datadir) if self.is_running() else None
        super().crash()
        if shmid is None:  # killed from outside the drill: its segment may be left over
            shmid = processes.orphaned_shmid(self.datadir)
        if shmid is not None:
            processes.remove_sysv_shm(shmid)
