"""The backup catalog against real moto servers: put, list, verify, restore, damage, copy."""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_drdrill.backup.catalog import Catalog
from pytest_drdrill.backup.errors import (
    CorruptBackup,
    InvalidManifest,
    MissingObject,
    MissingWalSegment,
    NoSuchBackup,
    UnknownKey,
)
from pytest_drdrill.backup.keys import KeyRing, encode_key, generate_key
from pytest_drdrill.backup.manifest import Manifest
from pytest_drdrill.clients.s3 import ensure_bucket, s3_client
from pytest_drdrill.topology.s3 import LocalS3Node

KEY = generate_key()
CHUNK = 4096


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalS3Node, LocalS3Node]]:
    root = tmp_path_factory.mktemp("backup-s3")
    nodes = [LocalS3Node(f"s3-{r}", r, root / r, log=root / f"{r}.log") for r in ("primary", "dr")]
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda node: node.start(), nodes))
        yield nodes[0], nodes[1]
    finally:
        for node in nodes:
            node.cleanup()


def new_catalog(node: LocalS3Node, bucket: str | None = None) -> Catalog:
    client = s3_client(node.endpoint_url, timeout=30.0)
    bucket = bucket or f"backups-{uuid.uuid4().hex[:10]}"
    ensure_bucket(client, bucket)
    return Catalog(client, bucket, chunk_size=CHUNK)


@pytest.fixture
def catalog(stores) -> Catalog:
    return new_catalog(stores[0])


def put(catalog: Catalog, files: dict[str, bytes], kind="postgres-base", **fields) -> Manifest:
    manifest = Manifest.new(kind, "pg-primary/primary", **fields)
    return catalog.put_backup(manifest, {n: io.BytesIO(d) for n, d in files.items()}, KEY)


FILES = {
    "base.tar": os.urandom(10 * CHUNK + 5),
    "pg_wal/000000010000000000000003": os.urandom(3 * CHUNK),
    "empty": b"",
}


def flip_byte(catalog: Catalog, key: str, offset: int) -> None:
    body = bytearray(catalog.client.get_object(Bucket=catalog.bucket, Key=key)["Body"].read())
    body[offset] ^= 0x01
    catalog.client.put_object(Bucket=catalog.bucket, Key=key, Body=bytes(body))


def test_put_list_verify_restore(catalog: Catalog, tmp_path: Path):
    """A stored backup is listed with its manifest, verifies, and restores byte for byte."""
    manifest = put(catalog, FILES, wal_start="0/3000028", wal_end="0/3000138")
    assert manifest.key_id == KEY.key_id
    assert [f.name for f in manifest.files] == list(FILES)
    for record in manifest.files:
        assert record.sha256 == hashlib.sha256(FILES[record.name]).hexdigest()
    assert catalog.list_backups() == [manifest]
    assert catalog.list_backups("redis-snapshot") == []
    report = catalog.verify(manifest.backup_id, KEY)
    assert report.ok and len(report.files) == 3
    for name, data in FILES.items():
        target = tmp_path / name.replace("/", "_")
        catalog.restore_file(manifest.backup_id, name, target, KEY)
        assert target.read_bytes() == data
    restored = catalog.restore_backup(manifest.backup_id, tmp_path / "all", KEY)
    assert [p.read_bytes() for p in restored] == list(FILES.values())
    assert sorted(os.listdir(tmp_path / "all")) == ["base.tar", "empty", "pg_wal"]


def test_newest_first_and_kind_filter(catalog: Catalog):
    """list_backups orders by creation time, newest first, and filters by kind."""
    older = put(catalog, {"a": b"1"}, created_at="2025-01-01T00:00:00+00:00")
    newer = put(catalog, {"a": b"2"}, created_at="2025-01-02T00:00:00+00:00")
    redis = put(catalog, {"dump.rdb": b"3"}, kind="redis-snapshot")
    assert catalog.list_backups() == [redis, newer, older]
    assert catalog.list_backups("postgres-base") == [newer, older]


@pytest.mark.parametrize("offset", [0, 40, 70, CHUNK + 100, -1])
def test_flipped_byte_refuses_restore_before_touching_target(
    catalog: Catalog, tmp_path: Path, offset: int
):
    """One flipped byte in a stored object: restore refuses, names it, leaves the target alone."""
    manifest = put(catalog, FILES)
    key = catalog.data_key(manifest.backup_id, "base.tar")
    size = manifest.files[0].stored_size
    flip_byte(catalog, key, offset % size)
    target = tmp_path / "base.tar"
    target.write_bytes(b"previous content")
    with pytest.raises(CorruptBackup) as info:
        catalog.restore_file(manifest.backup_id, "base.tar", target, KEY)
    assert f"s3://{catalog.bucket}/{key}" in str(info.value)
    assert target.read_bytes() == b"previous content"
    assert os.listdir(tmp_path) == ["base.tar"]
    report = catalog.verify(manifest.backup_id, KEY)
    assert not report.ok and [c.name for c in report.files if not c.ok] == ["base.tar"]
    with pytest.raises(CorruptBackup):
        catalog.restore_backup(manifest.backup_id, tmp_path / "all", KEY)
    assert os.listdir(tmp_path / "all") == []


def test_truncated_object_is_refused(catalog: Catalog, tmp_path: Path):
    """A stored object cut short is refused and named."""
    manifest = put(catalog, FILES)
    key = catalog.data_key(manifest.backup_id, "base.tar")
    body = catalog.client.get_object(Bucket=catalog.bucket, Key=key)["Body"].read()
    catalog.client.put_object(Bucket=catalog.bucket, Key=key, Body=body[:-300])
    with pytest.raises(CorruptBackup, match=key):
        catalog.restore_file(manifest.backup_id, "base.tar", tmp_path / "x", KEY)
    assert not (tmp_path / "x").exists()


def test_missing_object(catalog: Catalog, tmp_path: Path):
    """A deleted data object gives MissingObject naming bucket, key and backup."""
    manifest = put(catalog, FILES)
    key = catalog.data_key(manifest.backup_id, "empty")
    catalog.client.delete_object(Bucket=catalog.bucket, Key=key)
    with pytest.raises(MissingObject) as info:
        catalog.restore_file(manifest.backup_id, "empty", tmp_path / "x", KEY)
    assert f"s3://{catalog.bucket}/{key}" in str(info.value)
    assert manifest.backup_id in str(info.value)
    report = catalog.verify(manifest.backup_id, KEY)
    assert isinstance(report.errors[0], MissingObject)


def test_unknown_backup_and_file(catalog: Catalog, tmp_path: Path):
    """Unknown ids and names are reported with what is available."""
    manifest = put(catalog, {"a": b"1"})
    with pytest.raises(NoSuchBackup, match=manifest.backup_id):
        catalog.verify("20990101T000000000000Z-objects-00000000", KEY)
    with pytest.raises(NoSuchBackup, match=r"'b' is not in backup .* It holds: a\."):
        catalog.restore_file(manifest.backup_id, "b", tmp_path / "b", KEY)


def test_wrong_key_ring(catalog: Catalog, tmp_path: Path):
    """A ring without the backup's key names the key id needed."""
    manifest = put(catalog, {"a": b"1"})
    with pytest.raises(UnknownKey, match=KEY.key_id):
        catalog.restore_file(manifest.backup_id, "a", tmp_path / "a", generate_key())


def test_tampered_manifest_is_refused(catalog: Catalog):
    """A manifest changed after writing fails its recorded digest."""
    manifest = put(catalog, {"a": b"1"})
    key = catalog.manifest_key(manifest.backup_id)
    text = catalog.client.get_object(Bucket=catalog.bucket, Key=key)["Body"].read()
    catalog.client.put_object(
        Bucket=catalog.bucket, Key=key, Body=text.replace(b"pg-primary", b"pg-evil!!!")
    )
    with pytest.raises(InvalidManifest, match="SHA-256"):
        catalog.list_backups()


def test_copy_to_other_region(stores, catalog: Catalog, tmp_path: Path):
    """copy_to puts the bytes in a second moto server, verifies them there, and lists them."""
    first = put(catalog, FILES)
    second = put(catalog, {"dump.rdb": os.urandom(5000)}, kind="redis-snapshot")
    dr = new_catalog(stores[1])
    reports = dr_reports = catalog.copy_to(dr, KEY)
    assert sorted(r.backup_id for r in reports) == sorted([first.backup_id, second.backup_id])
    assert all(r.ok for r in dr_reports)
    assert dr.list_backups() == catalog.list_backups()
    assert dr.verify(first.backup_id, KEY).ok
    dr.restore_file(first.backup_id, "base.tar", tmp_path / "base.tar", KEY)
    assert (tmp_path / "base.tar").read_bytes() == FILES["base.tar"]
    assert catalog.copy_to(dr, KEY) == []


def test_copy_of_damaged_backup_is_not_listed(stores, catalog: Catalog):
    """A source object damaged before the copy makes copy_to fail; the target lists nothing."""
    manifest = put(catalog, FILES)
    flip_byte(catalog, catalog.data_key(manifest.backup_id, "base.tar"), 500)
    dr = new_catalog(stores[1])
    with pytest.raises(CorruptBackup, match="base.tar"):
        catalog.copy_to(dr, KEY)
    assert dr.list_backups() == []


def test_concurrent_writers_are_both_listed(catalog: Catalog):
    """Two threads storing backups at once both end up in the catalog."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(put, catalog, {"f": os.urandom(3 * CHUNK)}) for _ in range(2)]
        made = [f.result() for f in futures]
    listed = {m.backup_id for m in catalog.list_backups()}
    assert listed == {m.backup_id for m in made}


def test_multipart_upload_of_a_large_file(catalog: Catalog, tmp_path: Path):
    """A file larger than a multipart part goes up in parts from a path and restores."""
    source = tmp_path / "big"
    source.write_bytes(os.urandom((9 << 20) + 3))
    big = Catalog(catalog.client, catalog.bucket, prefix="big/")
    manifest = big.put_backup(Manifest.new("objects", "s3/primary"), {"big": source}, KEY)
    big.restore_file(manifest.backup_id, "big", tmp_path / "back", KEY)
    assert (tmp_path / "back").read_bytes() == source.read_bytes()


def test_missing_wal_segment(catalog: Catalog):
    """find_wal returns the chain when complete and names the first missing segment."""
    put(catalog, {"pg_wal/000000010000000000000003": b"w3"}, kind="postgres-wal")
    put(catalog, {"pg_wal/000000010000000000000005": b"w5"}, kind="postgres-wal")
    chain = catalog.find_wal("0/3000028", "0/3FFFFFF")
    assert [record.name for _, record in chain] == ["pg_wal/000000010000000000000003"]
    with pytest.raises(MissingWalSegment) as info:
        catalog.find_wal("0/3000028", "0/5000100")
    assert info.value.segment == "000000010000000000000004"
    assert catalog.bucket in str(info.value)


def test_no_key_material_in_logs(catalog: Catalog, tmp_path: Path, caplog):
    """Storing, verifying, restoring and failing never log key material."""
    caplog.set_level(logging.DEBUG)
    manifest = put(catalog, FILES)
    catalog.verify(manifest.backup_id, KeyRing.of(KEY))
    flip_byte(catalog, catalog.data_key(manifest.backup_id, "base.tar"), 100)
    catalog.verify(manifest.backup_id, KEY)
    for form in (encode_key(KEY), KEY.secret.hex()):
        assert form not in caplog.text
    assert "verify" in caplog.text
