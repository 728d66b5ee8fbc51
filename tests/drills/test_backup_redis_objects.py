"""Redis snapshots and object backups through the encrypted catalog, on real servers."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import redis

from drill_helpers import tagged_processes
from pytest_drdrill.backup.catalog import Catalog
from pytest_drdrill.backup.errors import CorruptBackup, NoSuchBackup
from pytest_drdrill.backup.keys import KeyRing, generate_key
from pytest_drdrill.backup.objects import backup_objects, restore_objects
from pytest_drdrill.backup.redis import restore_redis_snapshot, take_redis_snapshot
from pytest_drdrill.clients.s3 import ensure_bucket, s3_client
from pytest_drdrill.servers import processes

KEY = generate_key()
RING = KeyRing.of([KEY, generate_key()])


@pytest.fixture(scope="module")
def catalog(topology) -> Catalog:
    client = s3_client(topology[1].s3_nodes["s3-primary"].endpoint_url, timeout=30.0)
    ensure_bucket(client, "drdrill-backups")
    return Catalog(client, "drdrill-backups", chunk_size=4096)


def raw_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5)


def contents(client: redis.Redis) -> dict[bytes, tuple[bytes, bytes]]:
    """Every key with its type and serialized value (DUMP), to compare two servers."""
    return {key: (client.type(key), client.dump(key)) for key in client.scan_iter(count=500)}


def flip_byte(catalog: Catalog, key: str) -> bytes:
    original = catalog.client.get_object(Bucket=catalog.bucket, Key=key)["Body"].read()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0x40
    catalog.client.put_object(Bucket=catalog.bucket, Key=key, Body=bytes(damaged))
    return original


def test_redis_snapshot_restores_into_a_new_server(topology, catalog):
    """A new server started from a snapshot holds exactly the keys the source had at BGSAVE."""
    backend, topo = topology
    node = topo.redis_nodes["redis-primary"]
    with raw_client(node.url()) as client:
        client.mset({f"session:{n}": f"user-{n}".encode() for n in range(300)})
        client.hset("profile:1", mapping={"name": "ada", "plan": "pro"})
        client.rpush("queue", b"a", b"b", b"\x00\xff")
        client.set("token", b"t", ex=3600)
        before = contents(client)
        manifest = take_redis_snapshot(node, catalog, KEY, backend.dataroot / "redis-snap")
        client.set("written-after-the-snapshot", b"1")
    assert manifest.kind == "redis-snapshot"
    assert manifest.extra["keys"] == len(before)
    assert manifest.extra["expires"] == 1
    assert manifest.data_category == "critical_user_data"
    assert dt.datetime.fromisoformat(manifest.time_start) <= dt.datetime.fromisoformat(
        manifest.time_end
    )
    # The node had no RDB file before; a crash must still bring it back empty.
    assert not (node.workdir / f"{node.name}.rdb").exists()
    assert not (backend.dataroot / "redis-snap" / "dump.rdb").exists()

    restored = restore_redis_snapshot(
        catalog, RING, manifest.backup_id, install=backend.redis_install,
        workdir=backend.dataroot / "redis-restored", name="redis-restored",
    )  # fmt: skip
    try:
        assert restored.port != node.port
        with raw_client(restored.url()) as client:
            assert contents(client) == before
            assert 0 < client.ttl("token") <= 3600
    finally:
        restored.cleanup()


def test_damaged_snapshot_starts_no_server(topology, catalog):
    """A flipped byte in a stored RDB is refused before any redis-server starts."""
    backend, topo = topology
    node = topo.redis_nodes["redis-primary"]
    manifest = take_redis_snapshot(node, catalog, KEY, backend.dataroot / "redis-snap-2")
    key = catalog.data_key(manifest.backup_id, "dump.rdb")
    original = flip_byte(catalog, key)
    workdir = backend.dataroot / "redis-damaged"
    try:
        with pytest.raises(CorruptBackup, match="dump.rdb"):
            restore_redis_snapshot(
                catalog, RING, manifest.backup_id, install=backend.redis_install,
                workdir=workdir, name="redis-damaged",
            )  # fmt: skip
        assert not (workdir / "redis-damaged.rdb").exists()
        assert not [p for p in tagged_processes(processes.owner_tag()) if "redis-damaged" in p]
    finally:
        catalog.client.put_object(Bucket=catalog.bucket, Key=key, Body=original)


def test_restore_refuses_a_backup_of_another_kind(topology, catalog):
    """Restoring an object backup as a Redis snapshot names the snapshots there are."""
    backend, topo = topology
    client = s3_client(topo.s3_nodes["s3-primary"].endpoint_url)
    bucket = f"empty-{uuid.uuid4().hex[:8]}"
    ensure_bucket(client, bucket)
    manifest = backup_objects(client, bucket, catalog, KEY, source="s3-primary (primary)")
    assert manifest.files == ()
    with pytest.raises(NoSuchBackup, match="it is objects"):
        restore_redis_snapshot(
            catalog, RING, manifest.backup_id, install=backend.redis_install,
            workdir=backend.dataroot / "redis-wrong-kind", name="redis-wrong-kind",
        )  # fmt: skip


OBJECTS = {
    "videos/intro.mp4": (b"\x00\x00\x00\x18ftypmp42" * 2000, "video/mp4", {"owner": "ada"}),
    "videos/a clip with spaces (1).webm": (b"webm" * 10, "video/webm", {"duration": "12"}),
    "thumbs/intro.png": (b"\x89PNG\r\n\x1a\n", "image/png", {}),
    "empty": (b"", "application/octet-stream", {"note": "zero bytes"}),
    "../odd//key?": (b"odd", "text/plain; charset=utf-8", {"a": "1", "b": "2"}),
}


def read_bucket(client, bucket: str) -> dict[str, tuple[bytes, str, dict[str, str]]]:
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            response = client.get_object(Bucket=bucket, Key=item["Key"])
            found[item["Key"]] = (
                response["Body"].read(),
                response["ContentType"],
                response["Metadata"],
            )
    return found


@pytest.fixture(scope="module")
def workload_objects(topology):
    """The workload bucket with OBJECTS current, an older version and a deleted object."""
    _, topo = topology
    client = s3_client(topo.s3_nodes["s3-primary"].endpoint_url, timeout=30.0)
    bucket = topo.bucket
    client.put_object(Bucket=bucket, Key="videos/intro.mp4", Body=b"an older version")
    client.put_object(Bucket=bucket, Key="deleted.bin", Body=b"gone")
    client.delete_object(Bucket=bucket, Key="deleted.bin")
    for key, (body, content_type, metadata) in OBJECTS.items():
        client.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata=metadata
        )
    return client, bucket


def test_objects_restore_into_a_fresh_bucket(topology, catalog, workload_objects):
    """Bodies, content types and metadata of every current object come back in a new bucket."""
    _, topo = topology
    client, bucket = workload_objects
    manifest = backup_objects(client, bucket, catalog, KEY, source="s3-primary (primary)")
    assert manifest.kind == "objects"
    assert manifest.data_category == "video_content"
    assert sorted(o["key"] for o in manifest.extra["objects"]) == sorted(OBJECTS)
    assert all(o["version_id"] for o in manifest.extra["objects"])

    dr = s3_client(topo.s3_nodes["s3-dr"].endpoint_url, timeout=30.0)
    target = f"restored-{uuid.uuid4().hex[:8]}"
    ensure_bucket(dr, target)
    written = restore_objects(catalog, RING, manifest.backup_id, dr, target)
    assert sorted(written) == sorted(OBJECTS)
    assert read_bucket(dr, target) == OBJECTS


def test_unversioned_bucket_round_trip(topology, catalog):
    """Objects of a bucket without versioning are backed up (pinned by ETag) and restored."""
    _, topo = topology
    client = s3_client(topo.s3_nodes["s3-primary"].endpoint_url, timeout=30.0)
    source, target = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("plain", "plain-restored"))
    ensure_bucket(client, source, versioned=False)
    ensure_bucket(client, target, versioned=False)
    client.put_object(
        Bucket=source, Key="a.txt", Body=b"plain", ContentType="text/plain",
        Metadata={"k": "v"}, CacheControl="max-age=60",
    )  # fmt: skip
    manifest = backup_objects(client, source, catalog, KEY, source="s3-primary (primary)")
    (record,) = manifest.extra["objects"]
    assert record["version_id"] is None
    assert record["headers"] == {"CacheControl": "max-age=60"}
    restore_objects(catalog, RING, manifest.backup_id, client, target)
    assert read_bucket(client, target) == {"a.txt": (b"plain", "text/plain", {"k": "v"})}
    head = client.head_object(Bucket=target, Key="a.txt")
    assert head["CacheControl"] == "max-age=60"


def test_one_damaged_object_writes_nothing(topology, catalog, workload_objects):
    """A flipped byte in one stored body makes restore_objects refuse before any PUT."""
    _, topo = topology
    client, bucket = workload_objects
    manifest = backup_objects(client, bucket, catalog, KEY, source="s3-primary (primary)")
    last = manifest.files[-1].name
    flip_byte(catalog, catalog.data_key(manifest.backup_id, last))
    target = f"untouched-{uuid.uuid4().hex[:8]}"
    ensure_bucket(client, target)
    with pytest.raises(CorruptBackup, match=last):
        restore_objects(catalog, RING, manifest.backup_id, client, target)
    assert read_bucket(client, target) == {}
