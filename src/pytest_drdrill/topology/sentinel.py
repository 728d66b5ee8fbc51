"""Redis Sentinel, the server that decides a Redis failover on its own, and its group.

Sentinel learns replicas from the master's ``INFO replication``, so replicas announce
their own address (see :class:`~pytest_drdrill.topology.redis.LocalRedisNode`) even when
they replicate through a proxy. The primary region runs three of them with quorum 2
(:func:`start_group`): one Sentinel alone can neither declare the master down nor fail it
over, as in production. Following their decisions is
:class:`~pytest_drdrill.recovery.sentinel.SentinelFollower`.
"""

from __future__ import annotations

import concurrent.futures
import secrets
from typing import TYPE_CHECKING

import redis

from pytest_drdrill import timing
from pytest_drdrill.clients.redis import sync_client
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.servers import processes
from pytest_drdrill.servers.lifecycle import ServerProcess
from pytest_drdrill.topology.redis import check_pid

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_drdrill.topology.redis import RedisInstall


class LocalSentinel(ServerProcess):
    """One Redis Sentinel process monitoring one master.

    :param workdir: directory for its config file (Sentinel rewrites it as it learns).
    :param install: the binaries.
    :param master_name: the name Sentinel knows the master by.
    :param master_address: ``host:port`` of the master itself (not a proxy in front of it).
    :param down_after_ms: silence after which the master is considered down.
    :param failover_timeout_ms: Sentinel's ``failover-timeout``.
    :param quorum: sentinels that must agree the master is down.
    :param log: the log file.
    :param name: its name (default ``sentinel-<master_name>``); a group's members differ.
    :param region: the region it runs in: a region outage takes it down with the region.

    .. versionadded:: 0.2
    .. versionchanged:: 0.8 ``name``, ``region`` and :attr:`peers`, for a group of Sentinels.
    """

    stop_timeout = 5.0
    ready_phrase = "answer PING"

    def __init__(
        self,
        workdir: Path,
        install: RedisInstall,
        *,
        master_name: str,
        master_address: str,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 2000,
        quorum: int = 1,
        log: Path,
        name: str | None = None,
        region: str = "primary",
    ) -> None:
        super().__init__(name or f"sentinel-{master_name}", log=log, workdir=workdir)
        self.workdir: Path = workdir
        self.region = region
        #: Sentinel's run id, chosen here so that its peers can be told it before it starts.
        self.myid = secrets.token_hex(20)
        #: The other Sentinels of its group, written into its config as already known.
        self.peers: list[LocalSentinel] = []
        self.install = install
        self.master_name = master_name
        self.initial_master = master_address
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.quorum = quorum

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.master_name} {self.host}:{self.port}>"

    def url(self) -> str:
        """A ``redis://`` URL of the Sentinel."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def config(self) -> Path:
        """Sentinel's config file, rewritten by Sentinel as it learns."""
        return self.workdir / f"{self.name}.conf"

    def prepare(self) -> None:
        """Write a fresh config file before each start attempt.

        A fresh file each time: Sentinel rewrites its config with what it learned (replicas,
        peers, the current master, its epoch), which must not leak into the next start.
        """
        super().prepare()
        host, _, port = self.initial_master.rpartition(":")
        name = self.master_name
        self.config.write_text(
            f"port {self.port}\n"
            f"bind {self.host}\n"
            "protected-mode no\n"
            "daemonize no\n"
            # Keeps the DRDRILL_OWNER tag readable (see topology.redis.BASE_SETTINGS).
            "set-proc-title no\n"
            f'dir "{self.workdir}"\n'
            f'logfile "{self.log}"\n'
            f"sentinel monitor {name} {host} {port} {self.quorum}\n"
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}\n"
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {name} 1\n"
            f"sentinel myid {self.myid}\n"
            # Known from the start rather than discovered through hello messages, which
            # Sentinel publishes every 2 s: a group is ready to reach quorum at once.
            + "".join(
                f"sentinel known-sentinel {name} {p.host} {p.port} {p.myid}\n" for p in self.peers
            )
        )

    def command(self) -> list[str]:
        """Sentinel on its config file."""
        return self.install.sentinel_argv(self.config)

    def check_ready(self) -> str | None:
        """Ready once the Sentinel answering at :meth:`url` reports this process's pid."""
        return check_pid(self, self.url())

    def start(self, *, timeout: float = 10.0) -> LocalSentinel:
        """Write a fresh config file, start Sentinel and wait until it answers PING.

        :raises TopologyError: when it exits or stays silent; its log is attached.
        """
        self.launch(timeout=timeout)
        return self

    def client(self, *, timeout: float = 2.0) -> redis.Redis:
        """A blocking client of the Sentinel, bounded by ``timeout``; close it after use."""
        return sync_client(self.url(), timeout=timeout)

    def master_address(self, *, timeout: float = 2.0) -> str:
        """``host:port`` of the master as Sentinel currently sees it.

        :raises TopologyError: when Sentinel does not know the master.
        :raises redis.RedisError: when Sentinel cannot be reached.
        """
        with self.client(timeout=timeout) as client:
            reply = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)
        if not reply:
            raise TopologyError(f"{self.name} does not monitor a master named {self.master_name}")
        host, port = reply
        return f"{host}:{port}"

    def replicas(self, *, timeout: float = 2.0) -> dict[str, str]:
        """The replicas Sentinel knows of the master, as ``{address: flags}``."""
        with self.client(timeout=timeout) as client:
            entries = client.sentinel_slaves(self.master_name)
        return {f"{e['ip']}:{e['port']}": str(e["flags"]) for e in entries}

    def wait_replicas(self, addresses: list[str], *, timeout: float = 15.0) -> None:
        """Wait until Sentinel knows every replica in ``addresses`` and thinks it is up.

        Sentinel discovers replicas in the master's ``INFO`` reply, which it asks for every
        10 s once connected; a failover before discovery finds no replica to promote.

        :raises TopologyError: when one is still unknown or down after ``timeout``.
        """
        deadline = timing.monotonic() + timeout
        known: dict[str, str] = {}
        while timing.monotonic() < deadline:
            try:
                known = self.replicas()
            except redis.RedisError:
                known = {}
            if all(a in known and "s_down" not in known[a] for a in addresses):
                return
            timing.sleep(0.02)
        exc = TopologyError(
            f"{self.name} did not discover replicas {addresses} within {timeout:.0f}s "
            f"(knows {known})"
        )
        exc.add_note(f"last lines of {self.log}:\n{processes.tail(self.log)}")
        raise exc

    def peers_seen(self, *, timeout: float = 2.0) -> dict[str, str]:
        """The other Sentinels this one knows, as ``{address: flags}``."""
        with self.client(timeout=timeout) as client:
            entries = client.sentinel_sentinels(self.master_name)
        return {f"{e['ip']}:{e['port']}": str(e["flags"]) for e in entries}

    def wait_peers(self, *, timeout: float = 10.0) -> None:
        """Wait until this Sentinel is linked to every peer and thinks each is up.

        Agreeing that the master is down (quorum) and electing the leader that fails it
        over both need the peers' answers: a failure before the links are up would not be
        failed over.

        :raises TopologyError: when a peer is still unknown, unlinked or down after ``timeout``.
        """
        wanted = [p.address for p in self.peers]
        deadline = timing.monotonic() + timeout
        seen: dict[str, str] = {}
        while timing.monotonic() < deadline:
            try:
                seen = self.peers_seen()
            except redis.RedisError:
                seen = {}
            if all(a in seen and seen[a] == "sentinel" for a in wanted):
                return
            timing.sleep(0.02)
        exc = TopologyError(
            f"{self.name} was not linked to its peers {wanted} within {timeout:.0f}s (sees {seen})"
        )
        exc.add_note(f"last lines of {self.log}:\n{processes.tail(self.log)}")
        raise exc


#: The primary region's Sentinel group: three Sentinels, two of which must agree.
SENTINELS = 3
QUORUM = 2
#: Silence after which a Sentinel deems the master down. Sentinel's default is 30 s; 1 s
#: keeps a drill short while staying far above the loopback round trip (< 1 ms).
DOWN_AFTER_MS = 1000
#: Sentinel's ``failover-timeout`` (default 180 s): how long before a stuck failover is
#: retried by another Sentinel, and the pace of replica reconfiguration.
FAILOVER_TIMEOUT_MS = 2000


def start_group(
    workdir: Path,
    install: RedisInstall,
    *,
    master_name: str,
    master_address: str,
    replicas: list[str],
    logdir: Path,
    size: int = SENTINELS,
    quorum: int = QUORUM,
    region: str = "primary",
) -> list[LocalSentinel]:
    """Start ``size`` Sentinels monitoring one master and wait until they form a group.

    Ready means: every Sentinel answers, knows every replica in ``replicas`` and is linked
    to every other Sentinel, so a failure right after start is already failed over.

    :param workdir: parent of the Sentinels' config directories.
    :param master_address: ``host:port`` of the master itself.
    :param replicas: ``host:port`` of the replicas each Sentinel must know.
    :param logdir: where their logs go (``sentinel-N.log``).
    :raises TopologyError: when one does not start or join; those started are stopped.
    """
    group = [
        LocalSentinel(
            workdir / f"sentinel-{i}",
            install,
            master_name=master_name,
            master_address=master_address,
            down_after_ms=DOWN_AFTER_MS,
            failover_timeout_ms=FAILOVER_TIMEOUT_MS,
            quorum=quorum,
            log=logdir / f"sentinel-{i}.log",
            name=f"sentinel-{i}",
            region=region,
        )
        for i in range(1, size + 1)
    ]
    for sentinel in group:
        sentinel.peers = [s for s in group if s is not sentinel]
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=size) as pool:
            for started in [pool.submit(s.start) for s in group]:
                started.result()
            ready = [pool.submit(s.wait_replicas, replicas) for s in group]
            ready += [pool.submit(s.wait_peers) for s in group]
            for future in ready:
                future.result()
    except BaseException:
        for sentinel in group:
            sentinel.cleanup()
        raise
    return group
