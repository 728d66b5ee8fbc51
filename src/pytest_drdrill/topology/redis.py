"""Redis servers as local processes: discovery of the binaries and one node per server.

Every setting is passed on the command line, so a node has no config file to clean up
and Sentinel cannot rewrite one. Nothing is persisted (``save ""``, no AOF): a crashed
node restarts empty, as a node that lost its disk would, and only replication protects
the data, which is what a drill measures.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pytest_drdrill import timing
from pytest_drdrill.errors import ExecutableMissing, TopologyError
from pytest_drdrill.topology import _process

if TYPE_CHECKING:
    from collections.abc import Mapping

logger = logging.getLogger(__name__)

_REMEDY = (
    "Install Redis (Debian: apt-get install redis-server redis-sentinel) or point "
    "--drill-redis-bin / drill_redis_bin at the directory holding redis-server and "
    "redis-sentinel."
)

#: Settings every node runs with; each one is here for a measured or documented reason.
BASE_SETTINGS: dict[str, str] = {
    "bind": "127.0.0.1",
    "protected-mode": "no",
    "daemonize": "no",
    # Redis rewrites its title over argv and environ, erasing the DRDRILL_OWNER tag that
    # _process.reap_leftovers reads from /proc/PID/environ after a killed run.
    "set-proc-title": "no",
    "save": "",
    "appendonly": "no",
    # Link-up takes 5 s with the default delay of 5 and 26 ms with 0 (FIELD-NOTES, Redis).
    "repl-diskless-sync": "yes",
    "repl-diskless-sync-delay": "0",
    # A cut replication link must be noticed within a drill, not after the 60 s default.
    "repl-timeout": "5",
    # Must stay well below repl-timeout, or an idle but healthy link times out.
    "repl-ping-replica-period": "1",
    # On SIGTERM a primary waits this long for lagging replicas; 10 s by default.
    "shutdown-timeout": "2",
}

#: Starts retried when another process took the chosen port between choice and bind.
_BIND_ATTEMPTS = 5


class RedisInstall:
    """The Redis binaries a local topology uses.

    :param server: path of ``redis-server``.
    :param sentinel: path of ``redis-sentinel``, or ``None`` to run ``redis-server
        --sentinel``, which is the same program in Sentinel mode.

    .. versionadded:: 0.2
    """

    def __init__(self, server: Path, sentinel: Path | None = None) -> None:
        if not server.is_file():
            raise ExecutableMissing(f"redis-server not found at {server}. {_REMEDY}")
        self.server = server
        self.sentinel = sentinel if sentinel is not None and sentinel.is_file() else None
        out = subprocess.run(
            [str(server), "--version"], capture_output=True, text=True, check=False
        ).stdout
        match = re.search(r"v=(\d+(?:\.\d+)*)", out)
        self.version = match.group(1) if match else "unknown"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.server} {self.version}>"

    @classmethod
    def discover(cls, explicit: str | None = None) -> RedisInstall:
        """Find the binaries: in ``explicit``, else on PATH.

        :param explicit: the ``--drill-redis-bin`` / ``drill_redis_bin`` value, a directory.
        :raises ExecutableMissing: with the remedy, when ``redis-server`` is not found.
        """
        if explicit:
            bindir = Path(explicit)
            if not (bindir / "redis-server").is_file():
                raise ExecutableMissing(
                    f"redis-server not found in {bindir} (--drill-redis-bin / "
                    f"drill_redis_bin). {_REMEDY}"
                )
            return cls(bindir / "redis-server", bindir / "redis-sentinel")
        # Not resolved: Debian's redis-server is a symlink whose target name (redis-check-rdb)
        # selects another mode of the same binary.
        server = shutil.which("redis-server")
        if server is None:
            raise ExecutableMissing(f"No redis-server found on PATH. {_REMEDY}")
        sentinel = shutil.which("redis-sentinel")
        return cls(Path(server), Path(sentinel) if sentinel else None)

    def sentinel_argv(self, config: Path) -> list[str]:
        """The command that runs Sentinel with ``config``."""
        if self.sentinel is not None:
            return [str(self.sentinel), str(config)]
        return [str(self.server), str(config), "--sentinel"]


def settings_args(settings: Mapping[str, str]) -> list[str]:
    """Turn settings into ``redis-server`` arguments (``--key value``)."""
    return [arg for key, value in settings.items() for arg in (f"--{key}", value)]


def sync_client(url: str, *, timeout: float) -> redis.Redis:
    """A blocking client for control commands: bounded by ``timeout``, never retrying.

    :param url: a ``redis://`` URL.
    :param timeout: limit of each connect, send and read, in seconds.
    """
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
        driver_info=None,
    )


def wait_answering(
    url: str,
    *,
    timeout: float,
    process: subprocess.Popen[bytes],
    log: Path,
    what: str,
) -> None:
    """Poll until the server started as ``process`` answers at ``url``.

    Fails early if the process exits. The answering server must report ``process``'s pid:
    whoever else listens on the port (a server that won the port, a proxy) must not pass
    for this one.

    :raises TopologyError: with the log's last lines, when it exits or stays silent.
    """
    deadline = timing.monotonic() + timeout
    last: Exception | str | None = None
    while timing.monotonic() < deadline:
        if process.poll() is not None:
            exc = TopologyError(f"{what} exited with status {process.returncode} during start")
            exc.add_note(f"last lines of {log}:\n{_process.tail(log)}")
            raise exc
        try:
            with sync_client(url, timeout=1.0) as client:
                pid = client.info("server").get("process_id")
            if pid == process.pid:
                return
            last = f"another server answers on its port (pid {pid})"
        except redis.RedisError as err:
            last = err
        timing.sleep(0.01)
    exc = TopologyError(f"{what} did not answer PING within {timeout:.0f}s: {last}")
    exc.add_note(f"last lines of {log}:\n{_process.tail(log)}")
    raise exc


def lost_port_race(log: Path, offset: int) -> bool:
    """Whether a start logged to ``log`` after ``offset`` failed only because its port was taken."""
    try:
        with open(log, "rb") as out:
            out.seek(offset)
            return b"Address already in use" in out.read()
    except OSError:
        return False


class LocalRedisNode(_process.ServerProcess):
    """One Redis server running as a local process.

    :param name: e.g. ``redis-primary``.
    :param region: ``primary`` or ``dr``.
    :param workdir: its working directory (replicas write the received RDB there).
    :param install: the binaries.
    :param log: the server's log file.

    .. versionadded:: 0.2
    """

    def __init__(
        self, name: str, region: str, workdir: Path, install: RedisInstall, *, log: Path
    ) -> None:
        self.name = name
        self.region = region
        self.workdir = workdir
        self.install = install
        self.log = log
        self.host = "127.0.0.1"
        self.port = _process.free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.fenced = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.host}:{self.port}>"

    @property
    def address(self) -> str:
        """``host:port`` of the server itself, as a proxy upstream."""
        return f"{self.host}:{self.port}"

    def url(self) -> str:
        """A ``redis://`` URL straight to this node (not through any endpoint)."""
        return f"redis://{self.host}:{self.port}/0"

    def client(self, *, timeout: float = 2.0) -> redis.Redis:
        """A blocking client straight to this node, bounded by ``timeout``; close it after use."""
        return sync_client(self.url(), timeout=timeout)

    def _argv(self, replicaof: str | None) -> list[str]:
        settings = {
            **BASE_SETTINGS,
            "port": str(self.port),
            "dir": str(self.workdir),
            "dbfilename": f"{self.name}.rdb",
            "logfile": str(self.log),
            # A replica reaches its primary through a proxy; this makes the primary (and so
            # Sentinel, which learns replicas from the primary) list the replica's own port.
            "replica-announce-ip": self.host,
            "replica-announce-port": str(self.port),
        }
        argv = [str(self.install.server), *settings_args(settings)]
        if replicaof is not None:
            host, _, port = replicaof.rpartition(":")
            argv += ["--replicaof", host, port]
        return argv

    def start(self, *, replicaof: str | None = None, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers PING.

        :param replicaof: ``host:port`` to replicate from (for a replica, the proxy in front
            of the primary); ``None`` starts a primary.
        :param timeout: how long it may take to answer.
        :raises TopologyError: when fenced, or when it exits or stays silent; its log is
            attached.
        """
        if self.fenced:
            raise TopologyError(f"{self.name} is fenced: a fenced node is never started again")
        self.workdir.mkdir(parents=True, exist_ok=True)
        for attempt in range(_BIND_ATTEMPTS):
            log_size = self.log.stat().st_size if self.log.exists() else 0
            self.process = _process.spawn(
                self._argv(replicaof), log=self.log, run_as=None, cwd=self.workdir
            )
            try:
                wait_answering(
                    self.url(),
                    timeout=timeout,
                    process=self.process,
                    log=self.log,
                    what=self.name,
                )
                return
            except TopologyError:
                if attempt + 1 == _BIND_ATTEMPTS or not lost_port_race(self.log, log_size):
                    raise
                self.port = _process.free_port()

    def wait_replicating(self, timeout: float = 10.0) -> None:
        """Wait until this replica reports ``master_link_status:up``.

        :raises TopologyError: when the link is not up within ``timeout``; the log is attached.
        """
        deadline = timing.monotonic() + timeout
        info: Mapping[str, object] = {}
        while timing.monotonic() < deadline:
            try:
                with self.client(timeout=1.0) as client:
                    info = client.info("replication")
                if info.get("master_link_status") == "up":
                    return
            except redis.RedisError as err:
                info = {"error": str(err)}
            timing.sleep(0.005)
        exc = TopologyError(
            f"{self.name} did not start replicating within {timeout:.0f}s: "
            f"role {info.get('role')}, master_link_status {info.get('master_link_status')}"
            f"{', ' + str(info['error']) if 'error' in info else ''}"
        )
        exc.add_note(f"last lines of {self.log}:\n{_process.tail(self.log)}")
        raise exc
