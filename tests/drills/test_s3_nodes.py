"""Object stores on the local backend: moto servers, replication, the S3 ledger, health."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import botocore.exceptions
import pytest

from drill_helpers import tagged_processes
from pytest_drdrill import timing
from pytest_drdrill.clients import s3 as s3_clients
from pytest_drdrill.clients.s3 import ensure_bucket, s3_client
from pytest_drdrill.errors import ExecutableMissing, TopologyError
from pytest_drdrill.measure._protocol import Indeterminate, LedgerClient, NotApplied
from pytest_drdrill.measure.s3 import S3Ledger
from pytest_drdrill.recovery.storage import check_s3
from pytest_drdrill.servers import processes
from pytest_drdrill.topology import s3 as s3_module
from pytest_drdrill.topology._protocol import ObjectStoreNode
from pytest_drdrill.topology.s3 import LocalS3Node
from pytest_drdrill.topology.s3_replication import SOURCE_VERSION_META, Replicator


def moto_pids() -> set[str]:
    """Pids of moto servers this test process started and did not stop."""
    return {p.split()[0] for p in tagged_processes(processes.owner_tag()) if "moto" in p}


def new_bucket(*clients) -> str:
    """Create one fresh versioned bucket, under the same name, on every client's store."""
    name = f"drill-{uuid.uuid4().hex[:12]}"
    for client in clients:
        ensure_bucket(client, name)
    return name


def dead_url() -> str:
    """An endpoint where nothing listens."""
    return f"http://127.0.0.1:{processes.free_port()}"


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalS3Node, LocalS3Node]]:
    root = tmp_path_factory.mktemp("s3")
    nodes = [LocalS3Node(f"s3-{r}", r, root / r, log=root / f"{r}.log") for r in ("primary", "dr")]
    try:
        started = timing.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda node: node.start(), nodes))
        print(f"\ncold start of two moto servers in parallel: {timing.monotonic() - started:.2f}s")
        yield nodes[0], nodes[1]
    finally:
        pids = {str(n.process.pid) for n in nodes if n.process is not None}
        for node in nodes:
            node.cleanup()
    assert not pids & moto_pids()


def test_stores_are_separate_regions(stores):
    """Each server is its own process with its own state, and satisfies ObjectStoreNode."""
    primary, dr = stores
    assert isinstance(primary, ObjectStoreNode)
    assert primary.process.pid != dr.process.pid
    bucket = new_bucket(s3_client(primary.endpoint_url))
    assert bucket not in {b["Name"] for b in s3_client(dr.endpoint_url).list_buckets()["Buckets"]}


def test_client_ignores_the_users_aws_setup(stores, tmp_path: Path, monkeypatch):
    """A profile, config files and an HTTP proxy in the environment change nothing."""
    primary, _ = stores
    bogus = tmp_path / "aws-config"
    bogus.write_text(
        "[default]\nendpoint_url = http://127.0.0.1:9\ns3 =\n  addressing_style = virtual\n"
    )
    for name, value in {
        "AWS_PROFILE": "drdrill-no-such-profile",
        "AWS_CONFIG_FILE": str(bogus),
        "AWS_SHARED_CREDENTIALS_FILE": str(bogus),
        "HTTP_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(s3_clients, "_session", None)
    client = s3_client(primary.endpoint_url)
    assert "Buckets" in client.list_buckets()
    assert client.meta.config.s3 == {"addressing_style": "path"}


def test_missing_moto_names_the_remedy(tmp_path: Path, monkeypatch):
    """Without moto's server extra, a node explains how to install it; with it, -m is used."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(s3_module, "_importable", lambda name: name != "flask_cors")
    with pytest.raises(ExecutableMissing, match=r"flask_cors.*pip install 'moto\[server\]"):
        LocalS3Node("s3-x", "primary", tmp_path, log=tmp_path / "x.log")
    monkeypatch.setattr(s3_module, "_importable", lambda name: True)
    assert s3_module.moto_command() == [str(tmp_path / "python"), "-m", "moto.server"]


# --- replication ----------------------------------------------------------------------------


def describe_versions(client, bucket: str, key: str):
    """A key's history on one store: puts oldest first (body, headers, metadata), markers."""
    listing = client.list_object_versions(Bucket=bucket, Prefix=key)
    puts = [v for v in listing.get("Versions", []) if v["Key"] == key][::-1]
    markers = [m for m in listing.get("DeleteMarkers", []) if m["Key"] == key]
    contents, origins = [], []
    for version in puts:
        got = client.get_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
        metadata = dict(got["Metadata"])
        origins.append(metadata.pop(SOURCE_VERSION_META, version["VersionId"]))
        contents.append((got["Body"].read(), got["ContentType"], got.get("CacheControl"), metadata))
    latest_is_marker = any(m["IsLatest"] for m in markers)
    return (
        {"puts": contents, "markers": len(markers), "latest_is_marker": latest_is_marker},
        [v["VersionId"] for v in puts],
        origins,
    )


def test_replicator_copies_versions_faithfully_and_in_order(stores):
    """Versions, bodies, content types, metadata and delete markers arrive in creation order."""
    primary, dr = stores
    src, dst = s3_client(primary.endpoint_url), s3_client(dr.endpoint_url)
    bucket = new_bucket(src, dst)
    replicator = Replicator(primary.endpoint_url, dr.endpoint_url, bucket, timeout=1.0)
    expected: dict[str, list[bool]] = {}

    def put(key: str, body: bytes, **headers) -> None:
        src.put_object(Bucket=bucket, Key=key, Body=body, **headers)
        expected.setdefault(key, []).append(False)

    def delete(key: str) -> None:
        src.delete_object(Bucket=bucket, Key=key)
        expected.setdefault(key, []).append(True)

    put("doc", b"v1", ContentType="text/plain", Metadata={"author": "a"})
    put("doc", b"v2", ContentType="application/json", Metadata={"author": "b", "n": "2"})
    put("doc", b"v3")
    put("other", b"o1", ContentType="image/png", CacheControl="no-cache", Metadata={"k": "v"})
    assert replicator.sync_once() == 4
    delete("doc")
    assert replicator.sync_once() == 1
    put("doc", b"v4", ContentType="text/csv")
    # Two puts and a delete within one polling period: the listing's latest goes last.
    put("burst", b"b1")
    put("burst", b"b2", Metadata={"second": "yes"})
    delete("burst")
    assert replicator.sync_once() == 4
    assert replicator.sync_once() == 0
    assert (replicator.pending(), replicator.lag_seconds()) == (0, 0.0)

    for key, kinds in expected.items():
        assert [r.delete_marker for r in replicator.records() if r.key == key] == kinds
        source, source_ids, _ = describe_versions(src, bucket, key)
        copy, _, origins = describe_versions(dst, bucket, key)
        assert copy == source
        assert origins == source_ids
    assert replicator.replicated_keys() == {"doc", "other", "burst"}
    assert all(r.lag is not None and r.lag >= 0 for r in replicator.records())


def test_replication_copy_throughput(stores):
    """A large version is copied by get+put; prints the rate."""
    primary, dr = stores
    src, dst = s3_client(primary.endpoint_url, timeout=10), s3_client(dr.endpoint_url)
    bucket = new_bucket(src, dst)
    body = uuid.uuid4().bytes * (8 * 1024 * 1024 // 16)
    src.put_object(Bucket=bucket, Key="big", Body=body)
    replicator = Replicator(primary.endpoint_url, dr.endpoint_url, bucket, timeout=10.0)
    started = timing.monotonic()
    assert replicator.sync_once() == 1
    elapsed = timing.monotonic() - started
    print(f"\nget+put copy of 8 MiB: {elapsed * 1000:.0f} ms ({8 / elapsed:.0f} MiB/s)")
    assert dst.get_object(Bucket=bucket, Key="big")["Body"].read() == body


def test_lag_is_zero_when_idle_grows_during_cuts_and_drains(stores):
    """Idle lag ~0; a frozen destination or source makes it grow; it drains after."""
    primary, dr = stores
    src, dst = s3_client(primary.endpoint_url), s3_client(dr.endpoint_url)
    bucket = new_bucket(src, dst)
    replicator = Replicator(primary.endpoint_url, dr.endpoint_url, bucket, timeout=0.5).start()
    try:
        src.put_object(Bucket=bucket, Key="warm", Body=b"w")
        assert replicator.wait_caught_up(timeout=5)
        idle_from = timing.monotonic()
        # Three samples of an idle replicator; on a loaded machine they take longer than 0.5 s.
        while True:
            timing.sleep(0.1)
            idle = [lag for stamp, lag in replicator.samples if stamp > idle_from]
            if len(idle) >= 3 or timing.monotonic() > idle_from + 5.0:
                break
        assert len(idle) >= 3 and max(idle) == 0.0

        dr.freeze()
        try:
            for i in range(5):
                src.put_object(Bucket=bucket, Key=f"cut/{i}", Body=b"c")
            timing.sleep(1.0)
            dest_cut = replicator.lag_seconds()
            assert replicator.pending() == 5
            assert dest_cut >= 0.9
        finally:
            dr.thaw()
        thawed = timing.monotonic()
        assert replicator.wait_caught_up(timeout=5)
        drain = timing.monotonic() - thawed
        assert replicator.lag_seconds() < 0.2
        listing = dst.list_object_versions(Bucket=bucket, Prefix="cut/")
        origins = {
            dst.head_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Metadata"][
                SOURCE_VERSION_META
            ]
            for v in listing["Versions"]
        }
        assert origins == {
            r.source_version for r in replicator.records() if r.key.startswith("cut/")
        }

        primary.freeze()
        try:
            timing.sleep(1.0)
            source_cut = replicator.lag_seconds()
            assert replicator.pending() == 0
            assert source_cut >= 0.9
            assert "listing source" in replicator.last_error
        finally:
            primary.thaw()
        assert replicator.wait_caught_up(timeout=5)
        assert replicator.lag_seconds() < 0.2
    finally:
        replicator.stop()
    print(
        f"\nreplication lag: idle {max(idle) * 1000:.0f} ms; destination frozen 1 s: "
        f"{dest_cut:.2f}s, drained in {drain * 1000:.0f} ms "
        f"({len(listing['Versions'])} versions for 5 writes); source frozen 1 s: {source_cut:.2f}s"
    )


def test_unreachable_source_makes_lag_grow_without_crashing(stores):
    """With nothing listening at the source, cycles fail quietly and the lag keeps growing."""
    _, dr = stores
    bucket = new_bucket(s3_client(dr.endpoint_url))
    replicator = Replicator(dead_url(), dr.endpoint_url, bucket, interval=0.02, timeout=0.5)
    replicator.start()
    # Until five failed cycles are in (about 0.3 s idle; longer on a loaded machine).
    deadline = timing.monotonic() + 10.0
    while len(replicator.samples) < 5 or replicator.samples[-1][1] < 0.2:
        assert timing.monotonic() < deadline, replicator.samples
        timing.sleep(0.05)
    assert replicator.is_running
    lags = [lag for _, lag in replicator.samples]
    assert len(lags) >= 5 and lags == sorted(lags) and lags[-1] >= 0.2
    assert replicator.last_error == "listing source: could not connect"
    started = timing.monotonic()
    replicator.stop()
    assert timing.monotonic() - started < 1.5 and not replicator.is_running


# --- the ledger -----------------------------------------------------------------------------


def test_ledger_writes_and_reads_back_ids(stores):
    """Acknowledged ids are read back; a missing bucket refuses writes (NotApplied)."""
    primary, _ = stores
    bucket = new_bucket(s3_client(primary.endpoint_url))
    ledger = S3Ledger(primary.endpoint_url, bucket)
    assert isinstance(ledger, LedgerClient)
    assert ledger.key(7) == "drdrill-ledger/000000000007"

    async def run() -> None:
        for op_id in range(1, 21):
            await ledger.write(op_id, 1.0)
        await ledger.probe(1.0)
        refused = S3Ledger(primary.endpoint_url, "drill-no-such-bucket")
        with pytest.raises(NotApplied, match="NoSuchBucket"):
            await refused.write(1, 1.0)
        with pytest.raises(RuntimeError, match="404"):
            await refused.probe(1.0)
        await refused.aclose()
        await ledger.aclose()

    asyncio.run(run())
    assert ledger.read_ids(timeout=2) == set(range(1, 21))


def test_ledger_write_to_a_dead_store_is_not_applied():
    """Nothing listening: the write certainly did not apply, and it fails fast."""
    ledger = S3Ledger(dead_url(), "drill-bucket")

    async def run() -> float:
        started = timing.monotonic()
        with pytest.raises(NotApplied, match="could not connect"):
            await ledger.write(1, 1.0)
        elapsed = timing.monotonic() - started
        with pytest.raises(RuntimeError, match="could not connect"):
            await ledger.probe(1.0)
        await ledger.aclose()
        return elapsed

    assert asyncio.run(run()) < 0.5


def test_ledger_write_to_a_frozen_store_is_indeterminate_within_the_timeout(stores):
    """A SIGSTOPped store accepts the connection and never answers: Indeterminate, in time."""
    _, dr = stores
    bucket = new_bucket(s3_client(dr.endpoint_url))
    ledger = S3Ledger(dr.endpoint_url, bucket)

    async def run() -> float:
        await ledger.write(1, 0.5)  # builds the client before the store freezes
        dr.freeze()
        try:
            started = timing.monotonic()
            with pytest.raises(Indeterminate, match="no answer within 0.5s"):
                await ledger.write(2, 0.5)
            return timing.monotonic() - started
        finally:
            dr.thaw()
            await ledger.aclose()

    elapsed = asyncio.run(run())
    assert 0.5 <= elapsed < 0.8
    # Indeterminate means it: the store applies the write it had received once it resumes.
    deadline = timing.monotonic() + 2
    while (present := ledger.read_ids(timeout=2)) != {1, 2} and timing.monotonic() < deadline:
        timing.sleep(0.02)
    assert present == {1, 2}


# --- health ---------------------------------------------------------------------------------


def test_check_s3_healthy_missing_dead_and_frozen(stores):
    """HeadBucket health: ok, 404, refused, and a frozen store caught within the timeout."""
    _, dr = stores
    bucket = new_bucket(s3_client(dr.endpoint_url))
    healthy = asyncio.run(check_s3(dr.endpoint_url, bucket, 0.5))
    assert healthy.ok and healthy.error == ""
    missing = asyncio.run(check_s3(dr.endpoint_url, "drill-no-such-bucket", 0.5))
    assert not missing.ok and missing.error == "HeadBucket: 404 Not Found"
    dead = asyncio.run(check_s3(dead_url(), bucket, 0.5))
    assert not dead.ok and dead.error == "could not connect" and dead.seconds < 0.5
    dr.freeze()
    try:
        frozen = asyncio.run(check_s3(dr.endpoint_url, bucket, 0.3))
    finally:
        dr.thaw()
    assert not frozen.ok and frozen.error == "no answer within 0.3s"
    assert 0.3 <= frozen.seconds < 0.6


# --- node lifecycle -------------------------------------------------------------------------


def test_crash_loses_every_object(tmp_path: Path):
    """Moto is in memory: after a crash, the restarted store on the same node is empty."""
    node = LocalS3Node("s3-crash", "primary", tmp_path / "w", log=tmp_path / "crash.log")
    try:
        node.start()
        client = s3_client(node.endpoint_url)
        bucket = new_bucket(client)
        client.put_object(Bucket=bucket, Key="k", Body=b"x")
        node.crash()
        assert not node.is_running()
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            client.list_buckets()
        started = timing.monotonic()
        node.start()
        print(f"\nmoto restart after a crash: {timing.monotonic() - started:.2f}s")
        assert s3_client(node.endpoint_url).list_buckets()["Buckets"] == []
    finally:
        node.cleanup()


def test_node_retries_on_a_port_taken_before_it_binds(tmp_path: Path):
    """If another process holds the chosen port, the node starts on another one."""
    node = LocalS3Node("s3-race", "primary", tmp_path / "w", log=tmp_path / "race.log")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", node.port))
        squatter.listen()
        taken = node.port
        try:
            node.start()
            assert node.port != taken
            assert "Buckets" in s3_client(node.endpoint_url).list_buckets()
        finally:
            node.cleanup()
    assert "Address already in use" in (tmp_path / "race.log").read_text()


def test_stop_fence_and_cleanup_leave_no_moto_server(tmp_path: Path):
    """stop() ends even a frozen server cleanly; fenced nodes never restart; no process is left."""
    node = LocalS3Node("s3-life", "primary", tmp_path / "w", log=tmp_path / "life.log")
    try:
        node.start()
        pid = str(node.process.pid)
        assert pid in moto_pids()
        node.freeze()
        node.stop()
        assert node.process.returncode == 0 and not node.is_running()
        node.start()
        pid = str(node.process.pid)
        node.freeze()
        node.fence()
        assert node.fenced and not node.is_running()
        with pytest.raises(TopologyError, match="fenced"):
            node.start()
    finally:
        node.cleanup()
        node.cleanup()
    assert pid not in moto_pids()
