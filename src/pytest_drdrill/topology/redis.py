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

from pytest_drdrill import timing
from pytest_drdrill.clients.redis import sync_client
from pytest_drdrill.errors import ExecutableMissing, TopologyError
from pytest_drdrill.servers import processes
from pytest_drdrill.servers.lifecycle import ServerProcess

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
    # processes.reap_leftovers reads from /proc/PID/environ after a killed run.
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


def check_pid(server: ServerProcess, url: str) -> str | None:
    """Readiness of a Redis server or Sentinel: ``None`` once the one at ``url`` is ``server``.

    The answering server must report ``server``'s pid: whoever else listens on the port
    (a server that won the port, a proxy) must not pass for this one.

    :returns: ``None`` when ready, else why not.
    """
    assert server.process is not None
    try:
        with sync_client(url, timeout=1.0) as client:
            pid = client.info("server").get("process_id")
    except redis.RedisError as err:
        return str(err)
    if pid == server.process.pid:
        return None
    return f"another server answers on its port (pid {pid})"


class LocalRedisNode(ServerProcess):
    """One Redis server running as a local process.

    :param name: e.g. ``redis-primary``.
    :param region: ``primary`` or ``dr``.
    :param workdir: its working directory (replicas write the received RDB there).
    :param install: the binaries.
    :param log: the server's log file.

    .. versionadded:: 0.2
    """

    ready_phrase = "answer PING"

    def __init__(
        self, name: str, region: str, workdir: Path, install: RedisInstall, *, log: Path
    ) -> None:
        super().__init__(name, log=log, workdir=workdir)
        self.workdir: Path = workdir
        self.region = region
        self.install = install
        self.replicaof: str | None = None
        #: ``replica-priority``; 0 means Sentinel never promotes this node. ``None``: Redis's.
        self.replica_priority: int | None = None

    def url(self) -> str:
        """A ``redis://`` URL straight to this node (not through any endpoint)."""
        return f"redis://{self.host}:{self.port}/0"

    def client(self, *, timeout: float = 2.0) -> redis.Redis:
        """A blocking client straight to this node, bounded by ``timeout``; close it after use."""
        return sync_client(self.url(), timeout=timeout)

    def command(self) -> list[str]:
        """``redis-server`` with every setting on the command line."""
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
        if self.replica_priority is not None:
            settings["replica-priority"] = str(self.replica_priority)
        argv = [str(self.install.server), *settings_args(settings)]
        if self.replicaof is not None:
            host, _, port = self.replicaof.rpartition(":")
            argv += ["--replicaof", host, port]
        return argv

    def check_ready(self) -> str | None:
        """Ready once the server answering at :meth:`url` reports this process's pid."""
        return check_pid(self, self.url())

    def start(self, *, replicaof: str | None = None, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers PING.

        :param replicaof: ``host:port`` to replicate from (for a replica, the proxy in front
            of the primary); ``None`` starts a primary.
        :param timeout: how long it may take to answer.
        :raises TopologyError: when fenced, or when it exits or stays silent; its log is
            attached.
        """
        self.replicaof = replicaof
        self.launch(timeout=timeout)

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
        exc.add_note(f"last lines of {self.log}:\n{processes.tail(self.log)}")
        raise exc
