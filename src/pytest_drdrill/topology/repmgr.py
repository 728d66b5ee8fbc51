"""repmgr members: PostgreSQL started by ``pg_ctl`` with ``repmgrd`` watching it.

repmgr restarts and promotes PostgreSQL itself (``repmgr standby promote`` / ``follow``
call ``pg_ctl``), so the postmaster is not a child of the drill: it is found by line 1 of
``postmaster.pid``, as for Patroni. The drill's own process for a member is ``repmgrd``
(in the foreground); a node loss kills both trees. Every process inherits the reaper's
owner tag through ``pg_ctl``'s environment.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

import psycopg

from pytest_drdrill.errors import TopologyError
from pytest_drdrill.servers import processes
from pytest_drdrill.servers.lifecycle import ServerProcess
from pytest_drdrill.topology.postgres import BASE_SETTINGS, conninfo
from pytest_drdrill.topology.supervised import SupervisedPostgres

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from pytest_drdrill.servers.processes import RunAs

_REMEDY = (
    "Install repmgr (Debian: apt-get install postgresql-15-repmgr; scripts/bootstrap does this)."
)

#: repmgrd's timings the drills run with unless the team's settings say otherwise: the
#: primary is declared lost after ``reconnect_attempts × reconnect_interval`` seconds of
#: failed reconnects, checked every ``monitor_interval_secs``. With
#: ``primary_visibility_consensus`` a sibling that saw the primary less than
#: ``2 × monitor_interval_secs`` ago vetoes the election, and a vetoed standby then only
#: pings the lost primary (no second election): the reconnect window must outlast that
#: veto. 2 × 1 s did not (an election cancelled, no failover in 60 s); 3 × 1 s does.
FAST_REPMGRD: dict[str, Any] = {
    "reconnect_attempts": 3,
    "reconnect_interval": 1,
    "monitor_interval_secs": 1,
    "failover": "automatic",
}

#: Server settings besides :data:`~pytest_drdrill.topology.postgres.BASE_SETTINGS`.
REPMGR_SETTINGS: dict[str, str] = {
    "shared_preload_libraries": "repmgr",
    # repmgr's follow and rejoin rewind an old primary: pg_rewind needs hint bits logged.
    "wal_log_hints": "on",
    # repmgr restarts servers itself; a crash must still leave a node down.
    "restart_after_crash": "off",
}


def find_repmgr(bin_dir: Path) -> tuple[str, str]:
    """``repmgr`` and ``repmgrd`` beside PostgreSQL's binaries (Debian installs them there).

    :raises ExecutableMissing: with the remedy, when there is none.
    """
    return (
        processes.find_program("repmgr", str(bin_dir / "repmgr"), _REMEDY),
        processes.find_program("repmgrd", str(bin_dir / "repmgrd"), _REMEDY),
    )


def _quote(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


class RepmgrMember(SupervisedPostgres):
    """One PostgreSQL server under repmgr and the ``repmgrd`` watching it.

    :param name: the node's name in repmgr (and the drill's node name).
    :param node_id: repmgr's node id.
    :param region: ``primary`` or ``dr``.
    :param workdir: its configuration, data directory and logs (short: sockets).
    :param bin_dir: PostgreSQL's binaries (``repmgr`` and ``repmgrd`` are there too).
    :param log: repmgrd's log file (PostgreSQL logs to ``postgres.log`` beside it).
    :param run_as: the account PostgreSQL and repmgrd run as.
    :param settings: repmgr.conf settings over :data:`FAST_REPMGRD` (``priority`` …).
    :param witness: a witness node: no data, only a vote on the primary's visibility.

    :attr:`port` is PostgreSQL's; :attr:`connect_address` is what the other nodes dial
    (a fault-proxy link, set by the cluster) and goes into repmgr's ``conninfo``.
    """

    ready_phrase = "monitor its node with repmgrd"
    program = "repmgrd"
    stop_timeout = 10.0

    def __init__(
        self,
        name: str,
        node_id: int,
        region: str,
        workdir: Path,
        *,
        bin_dir: Path,
        log: Path,
        run_as: RunAs | None = None,
        settings: Mapping[str, Any] | None = None,
        witness: bool = False,
    ) -> None:
        super().__init__(name, log=log, workdir=workdir, run_as=run_as)
        self.workdir: Path = workdir
        self.node_id = node_id
        self.region = region
        self.bin_dir = bin_dir
        self.repmgr, self.repmgrd = find_repmgr(bin_dir)
        self.settings: dict[str, Any] = {**FAST_REPMGRD, **(settings or {})}
        self.witness = witness
        self.connect_address = self.address
        #: The other data nodes, asked at boot who leads (set by the cluster once built).
        self.peers: list[RepmgrMember] = []

    @property
    def datadir(self) -> Path:
        """PostgreSQL's data directory."""
        return self.workdir / "data"

    @property
    def config_file(self) -> Path:
        """repmgr.conf."""
        return self.workdir / "repmgr.conf"

    def dsn(self, *, app: str = "drdrill") -> str:
        """Connection string straight to this node's PostgreSQL."""
        return conninfo(self.host, self.port, app=app)

    def peer_conninfo(self) -> str:
        """The ``conninfo`` the other nodes (and replication) use: through the proxy."""
        host, _, port = self.connect_address.rpartition(":")
        return f"host={host} port={port} user=postgres dbname=postgres connect_timeout=2"

    # --- configuration ----------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """repmgr.conf as a dict."""
        conf = shlex.quote(str(self.config_file))
        psql = shlex.quote(str(self.bin_dir / "psql"))
        # The new primary stops waiting for a synchronous standby that is gone: writes go
        # on without one (what Patroni's non-strict synchronous mode does).
        unsync = (
            f"{psql} -X -q -h {self.host} -p {self.port} -U postgres -d postgres -c "
            "\"ALTER SYSTEM SET synchronous_standby_names = ''\" -c 'SELECT pg_reload_conf()'"
        )
        return {
            "node_id": self.node_id,
            "node_name": self.name,
            "conninfo": self.peer_conninfo(),
            "data_directory": str(self.datadir),
            "pg_bindir": str(self.bin_dir),
            "pg_ctl_options": f"-l {self.workdir / 'postgres.log'}",
            "use_replication_slots": False,
            "primary_visibility_consensus": True,
            "promote_command": f"{self.repmgr} standby promote -f {conf} && {unsync}",
            "follow_command": f"{self.repmgr} standby follow -f {conf} --upstream-node-id=%n",
            "repmgrd_pid_file": str(self.workdir / "repmgrd.pid"),
            "log_level": "INFO",
            "priority": 100,
            **self.settings,
        }

    def write_config(self) -> None:
        """Write repmgr.conf for the current ports."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        body = "".join(f"{key}={_quote(value)}\n" for key, value in self.config().items())
        self.config_file.write_text(body)
        if self.run_as is not None:
            self.run_as.own(self.config_file)

    def server_settings(self) -> dict[str, str]:
        """PostgreSQL settings of this node, appended to ``postgresql.auto.conf``."""
        return {**BASE_SETTINGS, **REPMGR_SETTINGS, "port": str(self.port)}

    def tool(self, *args: str, timeout: float = 60.0) -> str:
        """Run ``repmgr -f repmgr.conf ARGS`` as the server account; its output."""
        argv = [self.repmgr, "-f", str(self.config_file), *args]
        return processes.run(argv, run_as=self.run_as, timeout=timeout, what=" ".join(args)).stdout

    # --- PostgreSQL, started the way repmgr starts it ---------------------------------------

    def pg_ctl(self, action: str, *extra: str, timeout: float = 60.0) -> None:
        """``pg_ctl ACTION`` on this node's data directory, as the server account.

        :raises TopologyError: with the server log's last lines (pg_ctl only says to
            examine it, and the data directory is gone by the time anyone could).
        """
        log = self.workdir / "postgres.log"
        try:
            processes.run(
                [str(self.bin_dir / "pg_ctl"), action, "-w", "-D", str(self.datadir),
                 "-l", str(log), *extra],
                run_as=self.run_as, timeout=timeout, what=f"pg_ctl {action} for {self.name}",
            )  # fmt: skip
        except TopologyError as err:
            raise TopologyError(f"{err}\nlast lines of {log}:\n{processes.tail(log, 15)}") from err

    def start_postgres(self) -> None:
        """Start PostgreSQL with ``pg_ctl`` unless it runs: as a standby if it was deposed.

        repmgr itself starts a failed primary as it was, writable beside the new one
        (repmgr#766, #439). The guard a team puts before its service's start does what
        repmgr's documentation prescribes instead: a node that a peer's ``repmgr.nodes``
        no longer records as primary rejoins that primary (:meth:`rejoin`).
        """
        if self.fenced:
            raise TopologyError(f"{self.name} is fenced: a fenced node is never started again")
        if self.postmaster_pid() is not None:
            return
        leader = self.deposed_by()
        if leader is None:
            self.pg_ctl("start")
        else:
            self.rejoin(leader)

    def deposed_by(self) -> RepmgrMember | None:
        """The peer that leads now, if this node was the primary before it; else ``None``."""
        if not self.peers or self._own_role() != "primary":
            return None
        for peer in self.peers:
            try:
                with psycopg.connect(peer.dsn(app="drdrill-boot"), connect_timeout=2) as conn:
                    row = conn.execute(
                        "SELECT NOT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM repmgr.nodes "
                        "WHERE node_id = %s AND type = 'primary' AND active)",
                        (peer.node_id,),
                    ).fetchone()
            except psycopg.Error:
                continue
            if row is not None and row[0]:
                return peer
        return None

    def _own_role(self) -> str:
        """Whether the data directory was last a primary or a standby (standby.signal)."""
        return "standby" if (self.datadir / "standby.signal").exists() else "primary"

    def rejoin(self, leader: RepmgrMember) -> None:
        """``repmgr node rejoin --force-rewind`` to ``leader``: back as its standby.

        A crashed server first finishes crash recovery in single-user mode, which ends
        in a clean shutdown: pg_rewind works only on a cleanly stopped data directory.
        """
        processes.run(
            [str(self.bin_dir / "postgres"), "--single", "-D", str(self.datadir), "postgres"],
            run_as=self.run_as, timeout=120, what=f"crash recovery of {self.name}",
        )  # fmt: skip
        archive = self.workdir / "config-archive"
        archive.mkdir(exist_ok=True)  # repmgr makes its own directory inside, not this one
        if self.run_as is not None:
            self.run_as.own(archive)
        self.tool(
            "node", "rejoin", "-d", leader.peer_conninfo(), "--force-rewind",
            "--config-files=postgresql.auto.conf", "--config-archive-dir",
            str(archive), "--verbose", timeout=180,
        )  # fmt: skip

    # --- repmgrd, the process the drill owns ------------------------------------------------

    def command(self) -> list[str]:
        """``repmgrd`` in the foreground on repmgr.conf."""
        return [self.repmgrd, "-f", str(self.config_file), "--daemonize=false"]

    def choose_ports(self) -> None:
        """Nothing to re-pick: repmgrd listens on no port."""

    def check_ready(self) -> str | None:
        """Ready once PostgreSQL answers and repmgrd logs that it monitors its node."""
        try:
            with psycopg.connect(self.dsn(), connect_timeout=2, autocommit=True) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError as err:
            return str(err)
        try:
            text = self.log.read_text(errors="replace")
        except OSError as err:
            return str(err)
        return None if "monitoring" in text[self._log_from :] else "repmgrd not monitoring yet"

    def start(self, *, timeout: float = 30.0) -> RepmgrMember:
        """Start PostgreSQL (unless it runs), then repmgrd, and wait until it monitors."""
        self.start_postgres()
        self._log_from = self.log.stat().st_size if self.log.exists() else 0
        self.launch(timeout=timeout)
        return self

    _log_from = 0

    def freeze_repmgrd(self) -> None:
        """SIGSTOP repmgrd alone: PostgreSQL goes on serving, nobody watches it."""
        if self._supervisor_alive():
            ServerProcess.freeze(self)

    def thaw_repmgrd(self) -> None:
        """SIGCONT what :meth:`freeze_repmgrd` stopped."""
        if self._supervisor_alive():
            ServerProcess.thaw(self)

    def stop(self, *, timeout: float | None = None) -> None:
        """Stop repmgrd, then PostgreSQL (fast shutdown); crash what does not stop."""
        if self._supervisor_alive():
            super().stop(timeout=timeout)
        if self.postmaster_pid() is not None:
            try:
                self.pg_ctl("stop", "-m", "fast", timeout=timeout or 20.0)
            except TopologyError:
                self.crash()
