"""The daily and weekly backup validation checks against real servers and real backups."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from drill_helpers import ROOT
from pytest_drdrill.backup.catalog import Catalog
from pytest_drdrill.backup.keys import KeyRing, generate_key
from pytest_drdrill.backup.manifest import Manifest
from pytest_drdrill.backup.objects import backup_objects
from pytest_drdrill.backup.redis import take_redis_snapshot
from pytest_drdrill.backup.site import BackupSite
from pytest_drdrill.backup.verification import (
    SCHEDULE,
    CheckResult,
    check_backup_checksums,
    check_cross_region,
    check_database_integrity,
    check_freshness,
)
from pytest_drdrill.clients.s3 import ensure_bucket, s3_client
from pytest_drdrill.targets import load_targets
from pytest_drdrill.topology.postgres import LocalPostgresNode

RING = KeyRing.of(generate_key())
TARGETS = load_targets(ROOT / "fixtures" / "targets.yaml")


@pytest.fixture(scope="module")
def site(topology) -> Iterator[BackupSite]:
    """Backups of every kind in the primary region: base, WAL, Redis snapshot, objects."""
    backend, topo = topology
    site = BackupSite(topo, RING, backend.dataroot / "site").start()
    try:
        site.base_backup()
        site.archive_now()
        take_redis_snapshot(
            topo.redis_nodes["redis-primary"], site.catalog, RING.current,
            backend.dataroot / "redis-snap",
        )  # fmt: skip
        client = s3_client(topo.s3_nodes["s3-primary"].endpoint_url, timeout=30.0)
        client.put_object(Bucket=topo.bucket, Key="videos/1.mp4", Body=b"video" * 1000)
        backup_objects(client, topo.bucket, site.catalog, RING.current, source="s3-primary")
    finally:
        site.close()
    return site


def damaged(catalog: Catalog, key: str):
    """Flip one byte of an object; return a function that puts the original back."""
    original = catalog.client.get_object(Bucket=catalog.bucket, Key=key)["Body"].read()
    body = bytearray(original)
    body[len(body) // 2] ^= 0x01
    catalog.client.put_object(Bucket=catalog.bucket, Key=key, Body=bytes(body))
    return lambda: catalog.client.put_object(Bucket=catalog.bucket, Key=key, Body=original)


def first_file_key(catalog: Catalog, kind: str) -> str:
    manifest = catalog.list_backups(kind)[0]
    return catalog.data_key(manifest.backup_id, manifest.files[0].name)


def empty_catalog(site: BackupSite) -> Catalog:
    bucket = f"empty-{uuid.uuid4().hex[:8]}"
    ensure_bucket(site.catalog.client, bucket)
    return Catalog(site.catalog.client, bucket)


def test_results_are_frozen_and_scheduled(site):
    """Every check returns a frozen CheckResult whose name the schedule lists."""
    result = check_backup_checksums(site.catalog, RING)
    assert isinstance(result, CheckResult)
    assert result.name in SCHEDULE and SCHEDULE[result.name] == "daily"
    assert result.seconds > 0
    with pytest.raises(AttributeError):
        result.ok = False  # type: ignore[misc]


def test_checksums_pass_on_intact_backups(site):
    """Every backup of every kind verifies, and the detail counts them."""
    result = check_backup_checksums(site.catalog, RING)
    kinds = {m.kind for m in site.catalog.list_backups()}
    assert kinds == {"postgres-base", "postgres-wal", "redis-snapshot", "objects"}
    count = len(site.catalog.list_backups())
    assert result.ok, result.detail
    assert f"{count} backups" in result.detail


def test_checksums_fail_on_a_flipped_byte(site):
    """One flipped byte in one stored file fails the check, naming the object."""
    key = first_file_key(site.catalog, "redis-snapshot")
    restore = damaged(site.catalog, key)
    try:
        result = check_backup_checksums(site.catalog, RING)
    finally:
        restore()
    assert not result.ok
    assert f"1 problem in {len(site.catalog.list_backups())} backups" in result.detail
    assert key in result.detail
    assert check_backup_checksums(site.catalog, RING).ok


def test_checksums_fail_on_a_foreign_key_and_on_an_empty_catalog(site):
    """A key ring without the backups' key, or a catalog with no backups, fails the check."""
    result = check_backup_checksums(site.catalog, KeyRing.of(generate_key()))
    assert not result.ok
    assert RING.current.key_id in result.detail
    empty = check_backup_checksums(empty_catalog(site), RING)
    assert not empty.ok
    assert "holds no backups" in empty.detail


def test_freshness_within_targets(site):
    """Backups just taken are within every category's RPO target."""
    result = check_freshness(site.catalog, TARGETS)
    assert result.ok, result.detail
    assert "critical_user_data" in result.detail
    assert "video_content" in result.detail


def test_freshness_names_a_stale_category_and_how_stale(site):
    """Seen 7m12s after the newest critical_user_data point, the 5m target is missed."""
    newest = max(
        dt.datetime.fromisoformat(m.time_end or m.created_at).timestamp()
        for m in site.catalog.list_backups()
        if m.data_category == "critical_user_data"
    )
    result = check_freshness(site.catalog, TARGETS, now=newest + 432)
    assert not result.ok
    assert "newest critical_user_data backup is 7m12s old; the RPO target is 5m00s" in (
        result.detail
    )
    # video_content's target is 15 minutes: still fresh at that moment.
    assert "within target: video_content" in result.detail
    later = check_freshness(
        site.catalog, TARGETS, now=dt.datetime.fromtimestamp(newest + 3600, tz=dt.UTC)
    )
    assert "newest video_content backup is" in later.detail


def test_freshness_refuses_a_category_without_target(site):
    """A backup whose category the targets file lacks fails, naming the file to fix."""
    catalog = empty_catalog(site)
    assert not check_freshness(catalog, TARGETS).ok
    manifest = Manifest.new("objects", "elsewhere", data_category="user_sessions")
    catalog.put_backup(manifest, {"x": io.BytesIO(b"x")}, RING.current)
    result = check_freshness(catalog, TARGETS)
    assert not result.ok
    assert "'user_sessions' have no RPO target" in result.detail
    assert str(TARGETS.source) in result.detail


def test_database_integrity_of_a_healthy_primary(topology):
    """pg_amcheck finds no corruption on the running primary and says what it checked."""
    _, topo = topology
    result = check_database_integrity(topo.primary)
    assert result.ok, result.detail
    assert "no corruption in" in result.detail
    assert "postgres" in result.detail
    assert " 0 heap tables" not in result.detail


def test_database_integrity_finds_a_damaged_table(topology):
    """Bytes flipped in a table's file on disk are reported as corruption, naming the table."""
    backend, _ = topology
    node = LocalPostgresNode(
        "pg-damaged", "primary", backend.dataroot / "pg-damaged", backend.install,
        backend.run_as, log=backend.dataroot / "pg-damaged.log",
    )  # fmt: skip
    node.init_from_template(backend.template)
    try:
        node.start()
        with psycopg.connect(node.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE sessions (id int PRIMARY KEY, data text)")
            conn.execute(
                "INSERT INTO sessions SELECT g, repeat('s', 50) FROM generate_series(1, 2000) g"
            )
            (relpath,) = conn.execute("SELECT pg_relation_filepath('sessions')").fetchone()
            conn.execute("CHECKPOINT")
        node.stop()
        path = node.datadir / relpath
        data = bytearray(path.read_bytes())
        for offset in (40, 8192 + 200):  # line pointers of the first two pages
            data[offset] ^= 0xFF
        path.write_bytes(bytes(data))
        node.start()
        result = check_database_integrity(node)
    finally:
        node.cleanup()
    assert not result.ok
    assert "found corruption on pg-damaged" in result.detail
    assert "sessions" in result.detail


def test_database_integrity_of_a_stopped_node(topology):
    """A node that does not answer fails the check as not checked, not as corrupt."""
    backend, _ = topology
    node = LocalPostgresNode(
        "pg-down", "primary", backend.dataroot / "pg-down", backend.install, backend.run_as,
        log=backend.dataroot / "pg-down.log",
    )  # fmt: skip
    result = check_database_integrity(node)
    assert not result.ok
    assert "could not check pg-down" in result.detail


def test_cross_region_after_copy_and_with_a_damaged_copy(site):
    """After copy_to both regions verify; a damaged DR object fails the weekly check."""
    result = check_cross_region(site.catalog, site.dr_catalog, RING)
    assert result.ok, result.detail
    count = len(site.catalog.list_backups())
    assert f"primary: {count} backups" in result.detail
    assert f"dr: {count} backups" in result.detail
    assert {m.backup_id for m in site.dr_catalog.list_backups()} == {
        m.backup_id for m in site.catalog.list_backups()
    }

    key = first_file_key(site.dr_catalog, "objects")
    restore = damaged(site.dr_catalog, key)
    try:
        bad = check_cross_region(site.catalog, site.dr_catalog, RING)
    finally:
        restore()
    assert not bad.ok
    assert f"dr region ({site.dr_catalog.client.meta.endpoint_url}): backup" in bad.detail
    assert key in bad.detail


def test_cross_region_with_a_missing_dr_entry(site):
    """A backup the DR region does not list (and cannot get: its source is damaged) fails."""
    check_cross_region(site.catalog, site.dr_catalog, RING)
    newest = site.catalog.list_backups("objects")[0]
    entry = site.dr_catalog.entry_key(newest.backup_id)
    saved = site.dr_catalog.client.get_object(Bucket=site.dr_catalog.bucket, Key=entry)
    site.dr_catalog.client.delete_object(Bucket=site.dr_catalog.bucket, Key=entry)
    restore = damaged(site.catalog, first_file_key(site.catalog, "objects"))
    try:
        result = check_cross_region(site.catalog, site.dr_catalog, RING)
    finally:
        restore()
        site.dr_catalog.client.put_object(
            Bucket=site.dr_catalog.bucket, Key=entry, Body=saved["Body"].read()
        )
    assert not result.ok
    assert "copy to the DR region" in result.detail
    assert "1 backup of the primary region not listed in the DR region" in result.detail
    assert newest.backup_id in result.detail
