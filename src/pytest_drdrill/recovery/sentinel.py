"""Redis Sentinel as the system that decides a Redis failover, and a follower of its choice.

A drill that tests Sentinel lets Sentinel detect the failure, elect, promote and reconfigure
on its own; the drill only follows the result, repointing the client endpoint (a fault-proxy
entry) when Sentinel announces a new master. Sentinel learns replicas from the master's
``INFO replication``, so replicas announce their own address (see
:class:`~pytest_drdrill.topology.redis.LocalRedisNode`) even when they replicate through a
proxy.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from typing import TYPE_CHECKING

import redis

from pytest_drdrill import timing
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.topology import _process
from pytest_drdrill.topology.redis import lost_port_race, sync_client, wait_answering

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from pytest_drdrill.topology.redis import RedisInstall

logger = logging.getLogger(__name__)

#: Starts retried when another process took the chosen port between choice and bind.
_BIND_ATTEMPTS = 5


class LocalSentinel(_process.ServerProcess):
    """One Redis Sentinel process monitoring one master.

    :param workdir: directory for its config file (Sentinel rewrites it as it learns).
    :param install: the binaries.
    :param master_name: the name Sentinel knows the master by.
    :param master_address: ``host:port`` of the master itself (not a proxy in front of it).
    :param down_after_ms: silence after which the master is considered down.
    :param failover_timeout_ms: Sentinel's ``failover-timeout``.
    :param quorum: sentinels that must agree the master is down.
    :param log: the log file.

    .. versionadded:: 0.2
    """

    stop_timeout = 5.0

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
    ) -> None:
        self.name = f"sentinel-{master_name}"
        self.workdir = workdir
        self.install = install
        self.master_name = master_name
        self.initial_master = master_address
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.quorum = quorum
        self.log = log
        self.host = "127.0.0.1"
        self.port = _process.free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.master_name} {self.host}:{self.port}>"

    @property
    def address(self) -> str:
        """``host:port`` of the Sentinel itself."""
        return f"{self.host}:{self.port}"

    def url(self) -> str:
        """A ``redis://`` URL of the Sentinel."""
        return f"redis://{self.host}:{self.port}/0"

    def _write_config(self) -> Path:
        host, _, port = self.initial_master.rpartition(":")
        name = self.master_name
        config = self.workdir / f"{self.name}.conf"
        config.write_text(
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
        )
        return config

    def start(self, *, timeout: float = 10.0) -> LocalSentinel:
        """Write a fresh config file, start Sentinel and wait until it answers PING.

        A fresh file each time: Sentinel rewrites its config with what it learned (replicas,
        peers, the current master, its epoch), which must not leak into the next start.

        :raises TopologyError: when it exits or stays silent; its log is attached.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        for attempt in range(_BIND_ATTEMPTS):
            log_size = self.log.stat().st_size if self.log.exists() else 0
            config = self._write_config()
            self.process = _process.spawn(
                self.install.sentinel_argv(config), log=self.log, run_as=None, cwd=self.workdir
            )
            try:
                wait_answering(
                    self.url(), timeout=timeout, process=self.process, log=self.log, what=self.name
                )
                break
            except TopologyError:
                if attempt + 1 == _BIND_ATTEMPTS or not lost_port_race(self.log, log_size):
                    raise
                self.port = _process.free_port()
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
        exc.add_note(f"last lines of {self.log}:\n{_process.tail(self.log)}")
        raise exc


class SentinelFollower:
    """Calls ``on_switch(old, new)`` once each time Sentinel moves the master elsewhere.

    A background thread subscribes to Sentinel's ``+switch-master`` channel and, as a
    fallback for a missed message (the subscription is lost whenever its connection is),
    polls ``SENTINEL GET-MASTER-ADDR-BY-NAME``. Both feed one comparison with the last
    known address, so each switch is reported once, by whichever sees it first.

    :param sentinel: the Sentinel to follow.
    :param master_name: the master's name in Sentinel.
    :param on_switch: called in the follower's thread with the old and new ``host:port``.
    :param poll_interval: seconds between fallback polls.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        sentinel: LocalSentinel,
        master_name: str,
        on_switch: Callable[[str, str], None],
        *,
        poll_interval: float = 0.1,
    ) -> None:
        self.sentinel = sentinel
        self.master_name = master_name
        self.on_switch = on_switch
        self.poll_interval = poll_interval
        self.current: str | None = None
        self.switches: list[tuple[float, str, str]] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SentinelFollower:
        """Read the current master and start following.

        :raises TopologyError: when Sentinel does not know the master.
        :raises redis.RedisError: when Sentinel cannot be reached.
        """
        self.current = self.sentinel.master_address()
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"drdrill-follow-{self.master_name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, *, timeout: float = 5.0) -> None:
        """Stop following and wait for the thread to end; never raises."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("follower of %s did not stop in %ss", self.master_name, timeout)
            self._thread = None

    def _observe(self, address: str | None) -> None:
        if address is None or address == self.current:
            return
        old, self.current = self.current or "", address
        self.switches.append((timing.monotonic(), old, address))
        try:
            self.on_switch(old, address)
        except Exception:  # the follower must keep following whatever the callback does
            logger.exception("on_switch(%s, %s) failed", old, address)

    def _poll(self, client: redis.Redis) -> str | None:
        reply = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)
        return f"{reply[0]}:{reply[1]}" if reply else None

    def _switch_message(self, message: dict[str, object] | None) -> str | None:
        if message is None or message.get("type") != "message":
            return None
        # "<master name> <old ip> <old port> <new ip> <new port>"
        parts = str(message.get("data")).split()
        if len(parts) != 5 or parts[0] != self.master_name:
            return None
        return f"{parts[3]}:{parts[4]}"

    def _run(self) -> None:
        while not self._stopping.is_set():
            client = self.sentinel.client(timeout=max(1.0, 2 * self.poll_interval))
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe("+switch-master")
                next_poll = timing.monotonic()
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=self.poll_interval)
                    self._observe(self._switch_message(message))
                    if timing.monotonic() >= next_poll:
                        self._observe(self._poll(client))
                        next_poll = timing.monotonic() + self.poll_interval
            except (redis.RedisError, OSError) as exc:
                logger.debug("following %s: %s; reconnecting", self.sentinel.name, exc)
                self._stopping.wait(self.poll_interval)
            finally:
                pubsub.close()
                client.close()
