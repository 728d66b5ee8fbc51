"""The front door's DNS name, served by a real dnsmasq on a loopback port.

The requirements' region failover "updates DNS to point to the DR site". Here that is
a real DNS server: one dnsmasq process in the foreground, configured only by its
command line (``--conf-file=/dev/null``: no system configuration is read, nothing under
/etc changes, no upstream resolver is asked), answering one name from its own hosts
file with a short TTL. Repointing rewrites that file and sends SIGHUP, which makes
dnsmasq re-read it; clients caching the old answer move within the TTL, as real
clients do.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.servers import processes
from pytest_drdrill.servers.lifecycle import ServerProcess

if TYPE_CHECKING:
    from pathlib import Path

_REMEDY = "Install dnsmasq (Debian: apt-get install dnsmasq-base; scripts/bootstrap does this)."

#: The front door's default name; ``.test`` is reserved and never resolves on the internet.
FRONT_DOOR = "app.drdrill.test"


def find_dnsmasq(explicit: str | None = None) -> str:
    """The ``dnsmasq`` executable: ``explicit``, else the one on PATH or in /usr/sbin.

    :raises ExecutableMissing: with the remedy, when there is none.
    """
    return processes.find_program("dnsmasq", explicit, _REMEDY, also_in="/usr/sbin")


def dnsmasq_command(
    dnsmasq: str, port: int, hosts_file: Path, *, ttl: int, domain: str
) -> list[str]:
    """Dnsmasq's command line: one loopback port, one hosts file, nothing from the system."""
    return [
        dnsmasq,
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
        f"--port={port}",
        f"--addn-hosts={hosts_file}",
        f"--local-ttl={ttl}",
        f"--local=/{domain}/",
        "--user=root",
        "--pid-file",
        "--log-facility=-",
        "--log-queries",
    ]


class LocalDnsmasq(ServerProcess):
    """A dnsmasq answering ``name`` with one address that :meth:`repoint` changes.

    :param workdir: directory for its hosts file.
    :param name: the DNS name it serves.
    :param address: the IPv4 address the name resolves to at the start.
    :param ttl: the answers' time to live, in seconds.
    :param log: the log file.
    :param dnsmasq: the ``dnsmasq`` executable.
    """

    ready_phrase = "listen"
    program = "dnsmasq"
    stop_timeout = 5.0

    def __init__(
        self,
        workdir: Path,
        name: str,
        address: str,
        *,
        ttl: int = 1,
        log: Path,
        dnsmasq: str = "dnsmasq",
    ) -> None:
        super().__init__("dnsmasq", log=log, workdir=workdir)
        self.workdir: Path = workdir
        self.region = "global"
        self.record_name = name
        self.record_address = address
        self.ttl = ttl
        self.dnsmasq = dnsmasq

    @property
    def hosts_file(self) -> Path:
        """The hosts file dnsmasq serves the name from."""
        return self.workdir / "front-door.hosts"

    def prepare(self) -> None:
        """Write the hosts file before each start attempt."""
        super().prepare()
        self._write_hosts()

    def _write_hosts(self) -> None:
        staging = self.hosts_file.with_suffix(".new")
        staging.write_text(f"{self.record_address} {self.record_name}\n")
        staging.replace(self.hosts_file)

    def command(self) -> list[str]:
        """Dnsmasq in the foreground on :attr:`port`."""
        domain = self.record_name.split(".", 1)[-1]
        return dnsmasq_command(
            self.dnsmasq, self.port, self.hosts_file, ttl=self.ttl, domain=domain
        )

    def check_ready(self) -> str | None:
        """Ready once this process holds the port and answers the name."""
        assert self.process is not None
        if not processes.owns_listener(self.process.pid, self.port):
            return "not listening yet"
        answer = self.query()
        return None if answer == self.record_address else f"answers {answer!r}"

    def query(self) -> str | None:
        """Ask this server (never a cache) for the name's address; ``None`` when it fails."""
        import dns.exception
        import dns.resolver

        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [self.host]
        resolver.port = self.port
        resolver.lifetime = 0.5
        try:
            return str(resolver.resolve(self.record_name, "A")[0])
        except dns.exception.DNSException:
            return None

    def start(self, *, timeout: float = 10.0) -> LocalDnsmasq:
        """Start dnsmasq and wait until it answers the name."""
        self.launch(timeout=timeout)
        return self

    def repoint(self, address: str, *, timeout: float = 5.0) -> None:
        """Make the name resolve to ``address``; returns once the server answers it.

        :raises TopologyError: when dnsmasq is not running or still answers the old address.
        """
        if not self.is_running():
            raise TopologyError(f"{self.name} is not running: cannot repoint {self.record_name}")
        assert self.process is not None
        self.record_address = address
        self._write_hosts()
        self.process.send_signal(signal.SIGHUP)
        deadline = timing.monotonic() + timeout
        while (answer := self.query()) != address:
            if timing.monotonic() > deadline:
                raise TopologyError(
                    f"{self.name} still answers {answer!r} for {self.record_name} "
                    f"{timeout:g}s after it was repointed to {address}; see {self.log}"
                )
            timing.sleep(0.01)
