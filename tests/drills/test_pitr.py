"""Point-in-time recovery from encrypted backups in object storage, on real PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
import pytest

from pytest_drdrill import timing
from pytest_drdrill.backup.catalog import Catalog
from pytest_drdrill.backup.errors import CorruptBackup, MissingWalSegment, NoSuchBackup
from pytest_drdrill.backup.keys import KeyRing, generate_key
from pytest_drdrill.backup.pitr import restore_to_time
from pytest_drdrill.backup.postgres import WalShipper, take_base_backup
from pytest_drdrill.clients.s3 import ensure_bucket, s3_client
from pytest_drdrill.measure.history import History
from pytest_drdrill.measure.postgres import read_present_ids
from pytest_drdrill.measure.workload import Workload

KEY = generate_key()


@pytest.fixture(scope="module")
def incident(topology, tmp_path_factory):
    """Back up, write, then drop the ledger table at a known time; everything shipped."""
    backend, topo = topology
    client = s3_client(topo.s3_nodes["s3-primary"].endpoint_url, timeout=30.0)
    ensure_bucket(client, "drdrill-backups")
    catalog = Catalog(client, "drdrill-backups")
    assert topo.wal_spool is not None
    shipper = WalShipper(topo.wal_spool, catalog, KEY, source="pg cluster").start()
    history = History()
    workload = Workload(topo.pg_endpoint.dsn(app="pitr-workload"), history).start()
    try:
        assert workload.wait_for_acks(20)
        # Under the data root: the server account must reach it (pytest's tmp is 0700).
        assert backend.dataroot is not None
        take_base_backup(topo.primary, catalog, KEY, backend.dataroot / "base")
        assert workload.wait_for_acks(150)
        anchor = timing.anchor()
        target = dt.datetime.fromtimestamp(timing.wall(), tz=dt.UTC)
        with psycopg.connect(topo.primary.dsn(), autocommit=True) as conn:
            conn.execute("DROP TABLE drdrill_ledger")
            (segment,) = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        assert shipper.wait_for(segment, timeout=60), shipper.errors
    finally:
        workload.stop()
        shipper.stop()
    return backend, catalog, history, anchor, target


def test_restore_to_the_second_before_the_drop(incident, tmp_path: Path):
    """Every write acknowledged before the target is back, none invoked after it."""
    backend, catalog, history, anchor, target = incident
    workdir = backend.dataroot / "restore-ok"
    result = restore_to_time(
        catalog, KEY, target, install=backend.install, run_as=backend.run_as, workdir=workdir
    )
    try:
        present = read_present_ids(result.node.dsn())
    finally:
        result.node.cleanup()
    cut = target.timestamp()
    before = {w.id for w in history.acknowledged() if anchor.to_wall(w.completed) < cut}
    after = {w.id for w in history.writes() if anchor.to_wall(w.invoked) > cut}
    assert before and after
    assert before <= present
    assert not present & after
    assert [p.name for p in result.phases] == ["fetch", "verify", "decrypt", "start", "replay"]
    assert result.segments >= 1


def test_damaged_wal_object_refused_before_the_target_exists(incident):
    """A flipped byte in one stored WAL segment stops the restore before any data dir exists."""
    backend, catalog, history, anchor, target = incident
    wal = catalog.list_backups("postgres-wal")[0]  # newest first: the target's segment
    key = catalog.data_key(wal.backup_id, wal.files[0].name)
    original = catalog.client.get_object(Bucket=catalog.bucket, Key=key)["Body"].read()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0x10
    catalog.client.put_object(Bucket=catalog.bucket, Key=key, Body=bytes(damaged))
    try:
        workdir = backend.dataroot / "restore-damaged"
        with pytest.raises(CorruptBackup, match=wal.files[0].name):
            restore_to_time(
                catalog, KeyRing.of(KEY), target, install=backend.install,
                run_as=backend.run_as, workdir=workdir,
            )  # fmt: skip
        assert not (workdir / "data").exists()
    finally:
        catalog.client.put_object(Bucket=catalog.bucket, Key=key, Body=original)


def test_target_before_any_base_backup_is_refused(incident, tmp_path: Path):
    """Asking for a time no base backup precedes names the backups there are."""
    backend, catalog, *_ = incident
    with pytest.raises(NoSuchBackup, match="base backup finished before"):
        restore_to_time(
            catalog, KEY, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), install=backend.install,
            run_as=backend.run_as, workdir=tmp_path,
        )  # fmt: skip


def test_missing_wal_segment_is_named(incident):
    """A segment gone from the archive stops the restore, naming the segment and the store."""
    backend, catalog, history, anchor, target = incident
    wal = catalog.list_backups("postgres-wal")[0]
    entry = catalog.entry_key(wal.backup_id)
    saved = catalog.client.get_object(Bucket=catalog.bucket, Key=entry)["Body"].read()
    catalog.client.delete_object(Bucket=catalog.bucket, Key=entry)
    try:
        with pytest.raises(MissingWalSegment, match=wal.files[0].name):
            restore_to_time(
                catalog, KEY, target, install=backend.install, run_as=backend.run_as,
                workdir=backend.dataroot / "restore-missing",
            )  # fmt: skip
    finally:
        catalog.client.put_object(Bucket=catalog.bucket, Key=entry, Body=saved)
