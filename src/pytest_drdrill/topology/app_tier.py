"""The application tier: sample-application replicas, a load balancer per region, DNS.

What the requirements' architecture puts in front of the stores. Each region has its
replicas (gunicorn processes running :mod:`pytest_drdrill.app.service`) behind one
HAProxy that sends requests only to replicas whose ``GET /health`` (every store
answers) returned 200 at the last check. The front door is a DNS name served by
dnsmasq (:mod:`.dnsmasq`) that leads to the serving region's load balancer.

Load balancers listen on one port, each on its region's own loopback address
(127.0.10.1 for the first region, 127.0.10.2 for the next): a DNS A record carries an
address, never a port, so the failover changes the address only, as it would between
two sites. The DR region's replicas and load balancer start only in the region
failover (:meth:`AppTier.fail_over`), the requirements' "start DR application services".
"""

from __future__ import annotations

import concurrent.futures
import http.client
import socket
import sys
from typing import TYPE_CHECKING

from pytest_drdrill.app.schema import AppSettings, create_tables
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.servers import processes
from pytest_drdrill.servers.lifecycle import ServerProcess
from pytest_drdrill.topology.dnsmasq import FRONT_DOOR, LocalDnsmasq, find_dnsmasq
from pytest_drdrill.topology.haproxy import LocalHAProxy, find_haproxy
from pytest_drdrill.topology.proxied import READ

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from pytest_drdrill.topology._protocol import Topology

#: Replicas per region by default: small enough for two cores.
DEFAULT_REPLICAS: dict[str, int] = {"primary": 2, "dr": 1}

#: Each region's load-balancer address, in the order regions are given.
_REGION_ADDRESSES = ("127.0.10.1", "127.0.10.2", "127.0.10.3")

#: The WSGI application gunicorn runs (a factory: it reads its settings from the environment).
WSGI_APP = "pytest_drdrill.app.service:create_app()"


def settings_for(
    topology: Topology, *, reporting: str | None = None, region: str = "primary"
) -> AppSettings:
    """The sample application's settings: the topology's service endpoints, like any client.

    :param reporting: the DSN reporting reads go to; default the path to the topology's
        read-only replica (``pg-read``) when it has one, else the PostgreSQL service endpoint.
    """
    database = topology.pg_endpoint.dsn(app="drdrill-app")
    read = getattr(topology, "client_paths", {}).get(READ)
    if reporting is None and read is not None:
        reporting = read.dsn(app="drdrill-app-reporting")
    return AppSettings(
        database=database,
        reporting=reporting or database,
        redis=topology.redis_endpoint.url(),
        s3=topology.s3_endpoint.endpoint_url,
        bucket=topology.bucket,
        region=region,
    )


class AppReplica(ServerProcess):
    """One replica of the sample application: a gunicorn master and one threaded worker.

    :param name: e.g. ``app-primary-1``.
    :param region: the region it runs in.
    :param settings: where it finds its stores.
    :param log: the log file.
    """

    ready_phrase = "answer HTTP"
    program = "gunicorn"
    port_taken = b"Connection in use"
    stop_timeout = 5.0

    def __init__(self, name: str, region: str, settings: AppSettings, *, log: Path) -> None:
        super().__init__(name, log=log)
        self.region = region
        self.settings = settings

    def command(self) -> list[str]:
        """Gunicorn on :attr:`port` with one worker of four threads."""
        return [
            sys.executable, "-m", "gunicorn",
            "--bind", f"{self.host}:{self.port}",
            "--workers", "1", "--threads", "4",
            "--timeout", "30", "--graceful-timeout", "2",
            WSGI_APP,
        ]  # fmt: skip

    def environment(self) -> Mapping[str, str]:
        """The replica's settings, which the application factory reads."""
        return self.settings.environment()

    def check_ready(self) -> str | None:
        """Ready once this gunicorn holds the port and its worker answers HTTP."""
        assert self.process is not None
        if not processes.owns_listener(self.process.pid, self.port):
            return "not listening yet"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=2)
        try:
            conn.request("GET", "/health")
            conn.getresponse().read()
        except OSError as exc:
            return f"no HTTP answer: {exc}"
        finally:
            conn.close()
        return None

    def start(self, *, timeout: float = 20.0) -> AppReplica:
        """Start the replica and wait until it answers."""
        self.launch(timeout=timeout)
        return self


def http_balancer_config(
    address: str, port: int, replicas: Sequence[tuple[str, str]], *, check_interval_ms: int = 500
) -> str:
    """HAProxy's configuration for one region: HTTP, health-checked on ``GET /health``.

    Two failed checks take a replica out and shut its sessions; one good check brings it
    back. A request whose replica refused the connection is sent to another
    (``option redispatch``). With no healthy replica HAProxy answers 503 itself.

    :param replicas: ``(name, host:port)`` per replica.
    """
    lines = [
        "global",
        "    maxconn 200",
        "defaults",
        "    mode http",
        "    timeout connect 1s",
        "    timeout client 10s",
        "    timeout server 10s",
        "    timeout check 2s",
        "    retries 1",
        "    option redispatch",
        "listen app",
        f"    bind {address}:{port}",
        "    balance roundrobin",
        "    option httpchk GET /health",
        "    http-check expect status 200",
        f"    default-server inter {check_interval_ms}ms fall 2 rise 1 "
        "on-marked-down shutdown-sessions",
    ]
    lines += [f"    server {name} {where} check" for name, where in replicas]
    return "\n".join(lines) + "\n"


class HttpLoadBalancer(LocalHAProxy):
    """One region's HAProxy in front of its application replicas.

    :param address: the loopback address it listens on (the front door's A record).
    :param port: the port, the same in every region.
    """

    def __init__(
        self,
        workdir: Path,
        region: str,
        replicas: Sequence[AppReplica],
        *,
        address: str,
        port: int,
        log: Path,
        haproxy: str = "haproxy",
    ) -> None:
        super().__init__(workdir, [], log=log, haproxy=haproxy, name=f"lb-{region}")
        self.region = region
        self.replicas = list(replicas)
        self.host = address
        self.port = port

    def prepare(self) -> None:
        """Write the HTTP configuration before each start attempt."""
        ServerProcess.prepare(self)
        servers = [(r.name, r.address) for r in self.replicas]
        self.config_file.write_text(http_balancer_config(self.host, self.port, servers))

    def choose_ports(self) -> None:
        """The port is the front door's, shared by every region: it cannot move."""
        raise TopologyError(
            f"{self.name} could not bind {self.host}:{self.port}, the front door's port; "
            "another process holds it"
        )


def free_port_on(addresses: Sequence[str]) -> int:
    """A port free on every one of ``addresses`` a moment ago."""
    for _ in range(50):
        port = processes.free_port()
        try:
            for address in addresses:
                with socket.socket() as probe:
                    probe.bind((address, port))
        except OSError:
            continue
        return port
    raise TopologyError(f"no port free on all of {', '.join(addresses)}")


class AppTier:
    """Replicas and a load balancer per region, and the front door's DNS name.

    :param workdir: directory for configurations and logs.
    :param settings: where replicas find their stores (see :func:`settings_for`).
    :param replicas: replicas per region, the serving region first.
    :param ttl: the front door's TTL in seconds.
    :param name: the front door's DNS name.

    .. versionadded:: 0.8
    """

    def __init__(
        self,
        workdir: Path,
        settings: AppSettings,
        *,
        replicas: Mapping[str, int] | None = None,
        ttl: int = 1,
        name: str = FRONT_DOOR,
    ) -> None:
        self.workdir = workdir
        self.settings = settings
        self.replica_counts = dict(replicas or DEFAULT_REPLICAS)
        if any(count < 1 for count in self.replica_counts.values()):
            raise TopologyError(
                f"application replicas {self.replica_counts}: every region needs at least 1"
            )
        regions = list(self.replica_counts)
        self.addresses = dict(zip(regions, _REGION_ADDRESSES, strict=False))
        self.port = free_port_on(list(self.addresses.values()))
        self.replicas: dict[str, list[AppReplica]] = {}
        self.balancers: dict[str, HttpLoadBalancer] = {}
        self.serving = regions[0]
        self.dns = LocalDnsmasq(
            workdir / "dnsmasq",
            name,
            self.addresses[self.serving],
            ttl=ttl,
            log=workdir / "dnsmasq.log",
            dnsmasq=find_dnsmasq(),
        )

    @property
    def front_door(self) -> tuple[str, str, int, int]:
        """``(DNS name, DNS server host, DNS server port, HTTP port)`` for clients."""
        return self.dns.record_name, self.dns.host, self.dns.port, self.port

    def start(self) -> AppTier:
        """Create the tables, start the serving region and the DNS server."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        create_tables(self.settings.database)
        self.start_region(self.serving)
        self.dns.start()
        return self

    def start_region(self, region: str) -> HttpLoadBalancer:
        """Start ``region``'s replicas and its load balancer (idempotent)."""
        if region in self.balancers and self.balancers[region].is_running():
            return self.balancers[region]
        settings = AppSettings(**{**vars(self.settings), "region": region})
        if region != next(iter(self.replica_counts)):
            # The read replica lives in the first region; another region reports from its
            # own promoted database.
            settings = AppSettings(**{**vars(settings), "reporting": settings.database})
        replicas = self.replicas.setdefault(region, [])
        for i in range(len(replicas), self.replica_counts[region]):
            replicas.append(
                AppReplica(
                    f"app-{region}-{i + 1}",
                    region,
                    settings,
                    log=self.workdir / f"app-{region}-{i + 1}.log",
                )
            )
        # Each replica's start is mostly its worker importing the application: start them
        # side by side, and let the first failure raise.
        stopped = [r for r in replicas if not r.is_running()]
        with concurrent.futures.ThreadPoolExecutor(max(1, len(stopped))) as pool:
            for started in [pool.submit(r.start) for r in stopped]:
                started.result()
        balancer = self.balancers.get(region) or HttpLoadBalancer(
            self.workdir / f"lb-{region}",
            region,
            replicas,
            address=self.addresses[region],
            port=self.port,
            log=self.workdir / f"lb-{region}.log",
            haproxy=find_haproxy(),
        )
        self.balancers[region] = balancer
        balancer.start()
        return balancer

    def lose_region(self, region: str) -> list[str]:
        """Crash ``region``'s load balancer and replicas, as a region outage does."""
        lost = []
        for server in [self.balancers.get(region), *self.replicas.get(region, [])]:
            if server is not None and server.is_running():
                server.crash()
                lost.append(server.name)
        return lost

    def fail_over(self, region: str) -> str:
        """Start ``region``'s replicas and load balancer, then point the front door at it.

        :returns: what was done, for the failover's phase note.
        """
        balancer = self.start_region(region)
        self.dns.repoint(balancer.host)
        self.serving = region
        names = [r.name for r in self.replicas[region]]
        return (
            f"app: {names} and {balancer.name} started; {self.dns.record_name} -> {balancer.host}"
        )

    def servers(self) -> list[ServerProcess]:
        """Every process of the tier."""
        found: list[ServerProcess] = [self.dns, *self.balancers.values()]
        for replicas in self.replicas.values():
            found += replicas
        return found

    def close(self) -> None:
        """Kill every process of the tier; never raises."""
        for server in self.servers():
            server.cleanup()
