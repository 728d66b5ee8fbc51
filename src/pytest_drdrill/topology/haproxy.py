"""HAProxy in front of Patroni's PostgreSQL nodes, as Patroni's documentation sets it up.

HAProxy sends clients to whichever node answers Patroni's REST ``GET /primary`` with 200.
Checks run every 500 ms, two misses mark a node down and its sessions are shut, so
clients notice a demotion instead of writing into a server that became read-only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill.servers import processes
from pytest_drdrill.servers.lifecycle import ServerProcess

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from pytest_drdrill.servers.processes import RunAs

_REMEDY = "Install HAProxy (Debian: apt-get install haproxy; scripts/bootstrap does this)."


def find_haproxy(explicit: str | None = None) -> str:
    """The ``haproxy`` executable: ``explicit``, else the one on PATH or in /usr/sbin.

    :raises ExecutableMissing: with the remedy, when there is none.
    """
    return processes.find_program("haproxy", explicit, _REMEDY, also_in="/usr/sbin")


def haproxy_config(
    port: int, backends: Sequence[tuple[str, str, str]], *, check_interval_ms: int = 500
) -> str:
    """HAProxy's configuration: one TCP frontend on ``port`` leading to the primary.

    :param port: the loopback port clients connect to.
    :param backends: ``(name, postgres host:port, Patroni REST host:port)`` per node.
    :param check_interval_ms: how often each node's ``/primary`` is asked.
    """
    lines = [
        "global",
        "    maxconn 200",
        "defaults",
        "    mode tcp",
        "    timeout connect 2s",
        "    timeout client 30m",
        "    timeout server 30m",
        "    timeout check 1s",
        "listen postgres",
        f"    bind 127.0.0.1:{port}",
        "    option httpchk GET /primary",
        "    http-check expect status 200",
        f"    default-server inter {check_interval_ms}ms fall 2 rise 1 "
        "on-marked-down shutdown-sessions",
    ]
    for name, pg, rest in backends:
        rest_host, _, rest_port = rest.rpartition(":")
        lines.append(f"    server {name} {pg} check addr {rest_host} port {rest_port}")
    return "\n".join(lines) + "\n"


class LocalHAProxy(ServerProcess):
    """One HAProxy process routing PostgreSQL clients to Patroni's primary.

    :param workdir: directory for its configuration.
    :param backends: ``(name, postgres host:port, Patroni REST host:port)`` per node.
    :param log: the log file.
    :param run_as: the account it runs as.
    :param haproxy: the ``haproxy`` executable.
    """

    ready_phrase = "listen"
    program = "haproxy"
    stop_timeout = 5.0
    port_taken = b"cannot bind socket"

    def __init__(
        self,
        workdir: Path,
        backends: Sequence[tuple[str, str, str]],
        *,
        log: Path,
        run_as: RunAs | None = None,
        haproxy: str = "haproxy",
        name: str = "haproxy",
    ) -> None:
        super().__init__(name, log=log, workdir=workdir, run_as=run_as)
        self.workdir: Path = workdir
        self.region = "primary"
        self.backends = list(backends)
        self.haproxy = haproxy

    @property
    def config_file(self) -> Path:
        """HAProxy's configuration file."""
        return self.workdir / "haproxy.cfg"

    def prepare(self) -> None:
        """Write the configuration for the current port before each start attempt."""
        super().prepare()
        self.config_file.write_text(haproxy_config(self.port, self.backends))

    def command(self) -> list[str]:
        """``haproxy`` in the foreground (``-db``) on its configuration."""
        return [self.haproxy, "-db", "-f", str(self.config_file)]

    def check_ready(self) -> str | None:
        """Ready once this process holds the listening socket on :attr:`port`."""
        assert self.process is not None
        if processes.owns_listener(self.process.pid, self.port):
            return None
        return "not listening yet"

    def start(self, *, timeout: float = 10.0) -> LocalHAProxy:
        """Start HAProxy and wait until it listens."""
        self.launch(timeout=timeout)
        return self
