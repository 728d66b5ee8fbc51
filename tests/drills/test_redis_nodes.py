"""Redis nodes, the Redis ledger, health checks, promotion and Sentinel, with real processes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drill_helpers import tagged_processes
from pytest_drdrill import timing
from pytest_drdrill.errors import ExecutableMissing, TopologyError
from pytest_drdrill.measure._protocol import Indeterminate, LedgerClient, NotApplied
from pytest_drdrill.measure.redis import RedisLedger
from pytest_drdrill.recovery.redis import (
    check_redis,
    lag_bytes,
    promote,
    replicate_from,
    replication_offsets,
)
from pytest_drdrill.recovery.sentinel import SentinelFollower
from pytest_drdrill.servers import processes
from pytest_drdrill.topology._protocol import RedisNode
from pytest_drdrill.topology.redis import LocalRedisNode, RedisInstall
from pytest_drdrill.topology.sentinel import LocalSentinel, start_group


class Relay:
    """A loopback TCP relay standing in for the fault proxy in front of the primary."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._closed = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                server = socket.create_connection(self.upstream, timeout=1)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            self._sockets += [client, server]
            for src, dst in ((client, server), (server, client)):
                pump = threading.Thread(target=self._pump, args=(src, dst), daemon=True)
                pump.start()
                self._threads.append(pump)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        # Either side closing ends the relayed connection, as a proxy does.
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed.set()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(2)
        for sock in [self._listener, *self._sockets]:
            sock.close()


def own_redis_processes() -> list[str]:
    """Redis processes this pytest process started and did not stop."""
    return [p for p in tagged_processes(processes.owner_tag()) if "redis" in p]


class Lab:
    """Builds nodes, relays and sentinels under one directory and removes them all."""

    def __init__(self, install: RedisInstall, root: Path) -> None:
        self.install = install
        self.root = root
        self.nodes: list[LocalRedisNode] = []
        self.relays: list[Relay] = []
        self.sentinels: list[LocalSentinel] = []

    def node(self, name: str, region: str = "primary") -> LocalRedisNode:
        node = LocalRedisNode(
            name, region, self.root / name, self.install, log=self.root / f"{name}.log"
        )
        self.nodes.append(node)
        return node

    def primary(self) -> LocalRedisNode:
        node = self.node("redis-primary")
        node.start()
        return node

    def pair(self) -> tuple[LocalRedisNode, LocalRedisNode, Relay]:
        """A primary and a replica that reaches it only through a relay."""
        primary = self.primary()
        relay = Relay(primary.address)
        self.relays.append(relay)
        replica = self.node("redis-dr", "dr")
        started = timing.monotonic()
        replica.start(replicaof=relay.address)
        answering = timing.monotonic()
        replica.wait_replicating()
        done = timing.monotonic()
        print(
            f"\nreplica start -> PING {(answering - started) * 1000:.1f} ms, "
            f"-> link up {(done - answering) * 1000:.1f} ms more"
        )
        return primary, replica, relay

    def sentinel(self, master: LocalRedisNode) -> LocalSentinel:
        sentinel = LocalSentinel(
            self.root / "sentinel",
            self.install,
            master_name="drdrill",
            master_address=master.address,
            log=self.root / "sentinel.log",
        )
        self.sentinels.append(sentinel)
        return sentinel.start()

    def close(self) -> None:
        for sentinel in self.sentinels:
            sentinel.cleanup()
        for node in self.nodes:
            node.cleanup()
        for relay in self.relays:
            relay.close()


@pytest.fixture(scope="module")
def install() -> RedisInstall:
    try:
        return RedisInstall.discover()
    except ExecutableMissing as exc:
        pytest.skip(str(exc))


@pytest.fixture
def lab(install: RedisInstall, tmp_path: Path) -> Iterator[Lab]:
    built = Lab(install, tmp_path)
    try:
        yield built
    finally:
        built.close()
    assert own_redis_processes() == []


def test_replica_replicates_through_the_relay(lab: Lab):
    """A replica syncs through the relay, announces its own port, and receives ledger writes."""
    primary, replica, relay = lab.pair()
    assert isinstance(primary, RedisNode)
    with replica.client() as client:
        assert client.info("replication")["master_port"] == relay.port
    with primary.client() as client:
        announced = client.info("replication")["slave0"]
    assert (announced["ip"], announced["port"]) == ("127.0.0.1", replica.port)

    async def write() -> None:
        ledger = RedisLedger(primary.url())
        assert isinstance(ledger, LedgerClient)
        for op_id in range(1, 11):
            await ledger.write(op_id, 1.0)
        await ledger.aclose()

    asyncio.run(write())
    deadline = timing.monotonic() + 5
    while lag_bytes(primary.url(), replica.url()) != 0 and timing.monotonic() < deadline:
        timing.sleep(0.005)
    assert RedisLedger(replica.url()).read_ids() == set(range(1, 11))
    written, applied = replication_offsets(primary.url(), replica.url())
    assert written == applied


def test_ledger_writes_probes_and_reads_back(lab: Lab):
    """Acknowledged writes are all read back; the probe answers."""
    primary = lab.primary()

    async def run() -> None:
        ledger = RedisLedger(primary.url())
        for op_id in range(1, 51):
            await ledger.write(op_id, 1.0)
        await ledger.probe(1.0)
        await ledger.aclose()
        await ledger.aclose()

    asyncio.run(run())
    assert RedisLedger(primary.url()).read_ids() == set(range(1, 51))


def test_write_to_a_replica_is_not_applied(lab: Lab):
    """A replica's READONLY reply means the write certainly did not apply."""
    _, replica, _ = lab.pair()

    async def run() -> None:
        ledger = RedisLedger(replica.url())
        with pytest.raises(NotApplied, match="ReadOnlyError: .*read only replica"):
            await ledger.write(1, 1.0)
        await ledger.aclose()

    asyncio.run(run())


def test_write_to_a_frozen_server_returns_in_time(lab: Lab):
    """Against a SIGSTOPped server, writes and probes give up within their timeout."""
    primary = lab.primary()

    async def run() -> None:
        ledger = RedisLedger(primary.url())
        fresh = RedisLedger(primary.url())
        await ledger.write(1, 1.0)
        primary.freeze()
        try:
            started = timing.monotonic()
            with pytest.raises(Indeterminate):
                await ledger.write(2, 0.3)
            with pytest.raises((Indeterminate, NotApplied)):
                await fresh.write(3, 0.3)
            with pytest.raises(RuntimeError):
                await ledger.probe(0.3)
            assert timing.monotonic() - started < 1.5
        finally:
            primary.thaw()
        await ledger.write(4, 1.0)
        await ledger.aclose()
        await fresh.aclose()

    asyncio.run(run())
    assert {1, 4} <= RedisLedger(primary.url()).read_ids()


def test_write_after_a_crash_is_not_applied(lab: Lab):
    """A connection the crashed server closed is replaced; the refused reconnect is NotApplied."""
    primary = lab.primary()

    async def run() -> None:
        ledger = RedisLedger(primary.url())
        await ledger.write(1, 1.0)
        primary.crash()
        await asyncio.sleep(0.05)
        with pytest.raises(NotApplied, match="connect"):
            await ledger.write(2, 1.0)
        await ledger.aclose()

    asyncio.run(run())


def test_crash_promote_first_write_and_rejoin(lab: Lab):
    """After the primary dies the replica is promoted and writable; the old node rejoins."""
    primary, replica, _ = lab.pair()

    async def write(url: str, ids: range) -> None:
        ledger = RedisLedger(url)
        for op_id in ids:
            await ledger.write(op_id, 1.0)
        await ledger.aclose()

    asyncio.run(write(primary.url(), range(1, 21)))
    deadline = timing.monotonic() + 5
    while lag_bytes(primary.url(), replica.url()) != 0 and timing.monotonic() < deadline:
        timing.sleep(0.005)
    primary.crash()
    started = timing.monotonic()
    promote(replica)
    asyncio.run(write(replica.url(), range(21, 22)))
    print(f"\npromote -> first write: {(timing.monotonic() - started) * 1000:.1f} ms")
    assert RedisLedger(replica.url()).read_ids() == set(range(1, 22))

    primary.start()
    replicate_from(primary, replica.address)
    primary.wait_replicating()
    assert RedisLedger(primary.url()).read_ids() == set(range(1, 22))


def test_lag_is_unknown_while_the_replica_is_disconnected(lab: Lab):
    """lag_bytes returns None once the replica has lost its primary."""
    primary, replica, _ = lab.pair()
    assert lag_bytes(primary.url(), replica.url()) is not None
    survivor = lab.primary()
    primary.crash()
    deadline = timing.monotonic() + 5
    while lag_bytes(survivor.url(), replica.url()) is not None:
        assert timing.monotonic() < deadline
        timing.sleep(0.01)


def test_check_redis(lab: Lab):
    """Healthy only as a master; a replica, a frozen and a dead server are unhealthy in time."""
    primary, replica, _ = lab.pair()

    async def run() -> None:
        healthy = await check_redis(primary.url(), 1.0)
        assert healthy.ok, healthy
        assert healthy.in_recovery is False
        as_replica = await check_redis(replica.url(), 1.0)
        assert not as_replica.ok
        assert as_replica.in_recovery is True
        assert "role slave: not a primary" in as_replica.error
        primary.freeze()
        try:
            frozen = await check_redis(primary.url(), 0.3)
        finally:
            primary.thaw()
        assert not frozen.ok
        assert frozen.error == "no answer within 0.3s"
        assert frozen.seconds < 1.0
        primary.crash()
        dead = await check_redis(primary.url(), 1.0)
        assert not dead.ok
        assert dead.error.startswith("Error 111 connecting")  # ECONNREFUSED

    asyncio.run(run())


def test_fenced_node_never_starts_again(lab: Lab):
    """fence() kills the node and later starts are refused."""
    primary = lab.primary()
    primary.fence()
    assert not primary.is_running()
    with pytest.raises(TopologyError, match="fenced"):
        primary.start()


def test_node_retries_on_a_port_taken_before_it_binds(lab: Lab):
    """If another process grabs the chosen port first, the node starts on another one."""
    node = lab.node("port-race")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", node.port))
        squatter.listen()
        taken = node.port
        node.start()
    assert node.port != taken
    with node.client() as client:
        assert client.ping()
    assert "Address already in use" in node.log.read_text()


def test_sentinel_fails_over_and_the_follower_reports_it(lab: Lab):
    """Real Sentinel promotes the replica it found at its real address; on_switch fires once."""
    primary, replica, _ = lab.pair()
    sentinel = lab.sentinel(primary)
    assert sentinel.master_address() == primary.address
    sentinel.wait_replicas([replica.address])
    switched = threading.Event()
    calls: list[tuple[str, str]] = []

    def on_switch(old: str, new: str) -> None:
        calls.append((old, new))
        switched.set()

    follower = SentinelFollower(sentinel, "drdrill", on_switch).start()
    try:
        primary.crash()
        started = timing.monotonic()
        assert switched.wait(10), f"no switch; sentinel log:\n{processes.tail(sentinel.log)}"
        print(f"\nsentinel kill -> switch: {(timing.monotonic() - started) * 1000:.0f} ms")
        timing.sleep(0.3)
    finally:
        follower.stop()
    assert calls == [(primary.address, replica.address)]
    assert sentinel.master_address() == replica.address
    health = asyncio.run(check_redis(replica.url(), 1.0))
    assert health.ok, health


def test_sentinel_group_fails_over_in_region_and_follows_a_live_sentinel(lab: Lab):
    """Three Sentinels (quorum 2) form at once, skip the priority-0 replica, survive one dead.

    The follower is given the group with a dead Sentinel first: it must ask the others.
    """
    primary = lab.primary()
    dr = lab.node("redis-dr", "dr")
    dr.replica_priority = 0
    dr.start(replicaof=primary.address)
    local = lab.node("redis-replica-1")
    local.start(replicaof=primary.address)
    for replica in (dr, local):
        replica.wait_replicating()
    started = timing.monotonic()
    group = start_group(
        lab.root,
        lab.install,
        master_name="drdrill",
        master_address=primary.address,
        replicas=[dr.address, local.address],
        logdir=lab.root,
    )
    lab.sentinels += group
    print(f"\nsentinel group ready in {(timing.monotonic() - started) * 1000:.0f} ms")
    assert [s.quorum for s in group] == [2, 2, 2]
    assert all(len(s.peers_seen()) == 2 for s in group)
    group[0].crash()
    switched = threading.Event()
    follower = SentinelFollower(group, "drdrill", lambda old, new: switched.set()).start()
    try:
        primary.crash()
        assert switched.wait(15), f"no switch; log:\n{processes.tail(group[1].log)}"
    finally:
        follower.stop()
    assert follower.current == local.address
    assert group[1].master_address() == local.address
    with dr.client() as client:
        assert client.info("replication")["role"] == "slave"


def test_cleanup_leaves_no_process(lab: Lab):
    """Cleanup kills every node and Sentinel, frozen ones included."""
    primary, replica, _ = lab.pair()
    lab.sentinel(primary)
    replica.freeze()
    assert len(own_redis_processes()) == 3
    lab.close()
    assert own_redis_processes() == []


def test_discover_names_the_remedy(tmp_path: Path):
    """A directory without the binaries raises ExecutableMissing naming the fix."""
    with pytest.raises(ExecutableMissing) as info:
        RedisInstall.discover(str(tmp_path))
    message = str(info.value)
    assert "apt-get install redis-server redis-sentinel" in message
    assert "--drill-redis-bin" in message
    assert "drill_redis_bin" in message
