"""pg_auto_failover processes: the monitor and the keepers, as nodes a drill can fault.

Each is one ``pg_autoctl`` supervisor that starts its PostgreSQL as a child; the
postmaster calls ``setsid()``, so a node loss kills both trees, the postmaster found by
line 1 of ``postmaster.pid`` (as for Patroni). ``pg_autoctl`` keeps its configuration
and state under ``XDG_CONFIG_HOME`` / ``XDG_DATA_HOME``: each process gets its own under
its work directory, so nothing lands in the server account's home.

A keeper registers ``--hostname``/``--pgport`` with the monitor and pg_auto_failover has
no separate advertised port, so the registered address must be a fault-proxy path:
PostgreSQL listens on ``127.0.0.2:P`` and the proxy path to it on ``127.0.0.1:P`` (both
loopback). The monitor's health checks and the standbys' replication then pass the
proxy, and a partition cut there reaches pg_auto_failover's own traffic.
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import psycopg

from pytest_drdrill.errors import TopologyError
from pytest_drdrill.servers import processes
from pytest_drdrill.topology.postgres import conninfo
from pytest_drdrill.topology.supervised import SupervisedPostgres

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from pytest_drdrill.servers.processes import RunAs

_REMEDY = (
    "Install pg_auto_failover (Debian: apt-get install pg-auto-failover-cli "
    "postgresql-15-auto-failover; scripts/bootstrap does this)."
)
#: Where a keeper's PostgreSQL listens; its proxy path takes the same port on 127.0.0.1.
KEEPER_HOST = "127.0.0.2"
#: The database the monitor keeps its state in.
MONITOR_DB = "pg_auto_failover"


def find_pg_autoctl(explicit: str | None = None) -> str:
    """The ``pg_autoctl`` executable; raises ExecutableMissing with the remedy."""
    return processes.find_program("pg_autoctl", explicit, _REMEDY)


class AutoctlProcess(SupervisedPostgres):
    """One ``pg_autoctl`` supervisor and the PostgreSQL server it runs.

    :param name: the node's name (``monitor``, ``pg-primary`` ...).
    :param region: ``primary`` or ``dr``.
    :param workdir: a short directory for data, sockets and pg_autoctl's own files.
    :param bin_dir: PostgreSQL's binaries.
    :param log: the log file.
    :param run_as: the account it runs as.
    :param pg_autoctl: the executable.
    :param template: a stopped data directory copied in before the first start (the
        session template, whose ``postgresql.conf`` keeps dynamic shared memory out of
        ``/dev/shm``), or ``None`` to let pg_autoctl run ``initdb``.
    """

    ready_phrase = "accept connections under pg_autoctl"
    program = "pg_autoctl"
    stop_timeout = 20.0

    def __init__(
        self,
        name: str,
        region: str,
        workdir: Path,
        *,
        bin_dir: Path,
        log: Path,
        run_as: RunAs | None = None,
        pg_autoctl: str = "pg_autoctl",
        template: Path | None = None,
    ) -> None:
        super().__init__(name, log=log, workdir=workdir, run_as=run_as)
        self.template = template
        self.workdir: Path = workdir
        self.region = region
        self.bin_dir = bin_dir
        self.pg_autoctl = pg_autoctl

    @property
    def datadir(self) -> Path:
        """PostgreSQL's data directory."""
        return self.workdir / "data"

    def dsn(self, *, app: str = "drdrill", dbname: str = "postgres") -> str:
        """Connection string straight to this node's PostgreSQL."""
        return conninfo(self.host, self.port, app=app, dbname=dbname)

    def environment(self) -> Mapping[str, str]:
        """pg_autoctl's files under the work directory, PostgreSQL's binaries first on PATH."""
        return {
            "XDG_CONFIG_HOME": str(self.workdir / "xdg-config"),
            "XDG_DATA_HOME": str(self.workdir / "xdg-data"),
            "XDG_RUNTIME_DIR": str(self.workdir / "xdg-run"),
            "PG_CONFIG": str(self.bin_dir / "pg_config"),
            "PATH": f"{self.bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }

    def _created(self) -> bool:
        # pg_autoctl keeps its configuration at XDG_CONFIG_HOME/pg_autoctl/<PGDATA>/.
        config = self.workdir / "xdg-config" / "pg_autoctl" / str(self.datadir).lstrip("/")
        return (config / "pg_autoctl.cfg").exists()

    def prepare(self) -> None:
        """Create pg_autoctl's directories, owned by the server account; copy the template in."""
        super().prepare()
        for sub in ("xdg-config", "xdg-data", "xdg-run"):
            (self.workdir / sub).mkdir(mode=0o700, exist_ok=True)
        if self.run_as is not None:
            self.run_as.own(self.workdir)
        if self.template is not None and not self.datadir.exists():
            processes.run(
                ["cp", "-a", str(self.template), str(self.datadir)],
                run_as=self.run_as, timeout=60, what="cp -a",
            )  # fmt: skip
            (self.datadir / "postmaster.pid").unlink(missing_ok=True)
            self.copied_template()

    def copied_template(self) -> None:
        """Adjust a data directory just copied from the template (nothing by default)."""

    def choose_ports(self) -> None:
        """Keep the port: it is registered with the monitor (and shared with a proxy path)."""

    def create_args(self) -> list[str]:
        """``pg_autoctl create ...`` for a first start."""
        raise NotImplementedError

    def command(self) -> list[str]:
        """``create ... --run`` the first time, ``run`` after (the node is registered)."""
        if self._created():
            return [self.pg_autoctl, "run", "--pgdata", str(self.datadir)]
        return [*self.create_args(), "--run"]

    def check_ready(self) -> str | None:
        """Ready once this node's PostgreSQL, started by this supervisor, answers."""
        if self.postmaster_pid() is None:
            return "PostgreSQL not started yet"
        try:
            with psycopg.connect(self.dsn(), autocommit=True, connect_timeout=2) as conn:
                row = conn.execute("SHOW data_directory").fetchone()
        except psycopg.Error as err:
            return str(err).strip()
        if row is None or row[0] != str(self.datadir):
            return f"another server answers on {self.address}"
        return None

    def autoctl_pids(self) -> list[int]:
        """The pg_autoctl processes of the node (supervisor and services), not PostgreSQL's."""
        return [p for p in self.pids() if "pg_autoctl" in (processes.command_line(p) or "")]

    def signal_autoctl(self, sig: signal.Signals) -> list[int]:
        """Send ``sig`` to :meth:`autoctl_pids` alone: PostgreSQL is left as it is."""
        sent = []
        for pid in self.autoctl_pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                continue
            sent.append(pid)
        return sent

    def start(self, *, timeout: float = 60.0) -> AutoctlProcess:
        """Start the supervisor; return once its PostgreSQL answers."""
        if self.fenced:
            raise TopologyError(f"{self.name} is fenced: a fenced node is never started again")
        self.launch(timeout=timeout)
        return self


class AutoctlMonitor(AutoctlProcess):
    """The pg_auto_failover monitor: it health-checks the keepers and decides failovers."""

    def dsn(self, *, app: str = "drdrill", dbname: str = MONITOR_DB) -> str:
        """Connection string to the monitor's database."""
        return conninfo(self.host, self.port, app=app, dbname=dbname)

    def create_args(self) -> list[str]:
        """``pg_autoctl create monitor`` on loopback, trust auth, no TLS (a drill's sandbox)."""
        return [
            self.pg_autoctl, "create", "monitor", "--pgdata", str(self.datadir),
            "--pgport", str(self.port), "--hostname", self.host, "--listen", self.host,
            "--auth", "trust", "--no-ssl", "--pgctl", str(self.bin_dir / "pg_ctl"),
        ]  # fmt: skip


class AutoctlKeeper(AutoctlProcess):
    """One pg_auto_failover keeper (a PostgreSQL node under the monitor).

    :param monitor_uri: the monitor's URI as this keeper reaches it (a proxy path).
    :param advertised: the ``host`` others reach this node at; the port is :attr:`port`.
    :param candidate_priority: 0..100; 0 never promotes.
    :param replication_quorum: whether its acknowledgement counts for commits.

    Only the first primary takes ``template``: pg_autoctl clones the standbys from it.
    """

    def __init__(
        self,
        name: str,
        region: str,
        workdir: Path,
        *,
        monitor_uri: str,
        candidate_priority: int,
        replication_quorum: bool,
        **kw: object,
    ) -> None:
        super().__init__(name, region, workdir, **kw)  # type: ignore[arg-type]
        self.host = KEEPER_HOST
        self.advertised = "127.0.0.1"
        self.monitor_uri = monitor_uri
        self.candidate_priority = candidate_priority
        self.replication_quorum = replication_quorum

    def copied_template(self) -> None:
        """Trust loopback in ``pg_hba.conf`` (pg_autoctl runs with ``--skip-pg-hba``)."""
        with (self.datadir / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 127.0.0.0/8 trust\nhost replication all 127.0.0.0/8 trust\n")

    def create_args(self) -> list[str]:
        """``pg_autoctl create postgres`` registering the proxy path's address."""
        return [
            self.pg_autoctl, "create", "postgres", "--pgdata", str(self.datadir),
            "--pghost", self.host, "--pgport", str(self.port), "--listen", self.host,
            "--hostname", self.advertised, "--name", self.name, "--dbname", "postgres",
            "--username", "postgres", "--monitor", self.monitor_uri,
            "--skip-pg-hba", "--no-ssl", "--pgctl", str(self.bin_dir / "pg_ctl"),
            "--candidate-priority", str(self.candidate_priority),
            "--replication-quorum", "true" if self.replication_quorum else "false",
        ]  # fmt: skip
