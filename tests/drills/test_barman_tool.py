"""Barman as the backup tool, for real: backup, WAL streaming, verify, PITR restore."""

from __future__ import annotations

import datetime as dt
import shutil

import psycopg
import pytest

from pytest_drdrill import timing
from pytest_drdrill.backup.errors import CorruptBackup, MissingWalSegment
from pytest_drdrill.backup.tools import make_tool
from pytest_drdrill.backup.tools._protocol import Backups
from pytest_drdrill.measure.history import History
from pytest_drdrill.measure.postgres import read_present_ids
from pytest_drdrill.measure.restore import check_restore
from pytest_drdrill.measure.workload import Workload

pytestmark = pytest.mark.skipif(shutil.which("barman") is None, reason="barman not installed")


@pytest.fixture(scope="module")
def barman(topology):
    """Barman against the running topology: one backup, writes, a drop at a known time."""
    backend, topo = topology
    assert backend.dataroot is not None
    tool = make_tool("barman").open(topo, backend.dataroot / "barman", record=None)  # type: ignore[arg-type]
    history = History()
    workload = Workload(topo.pg_endpoint.dsn(app="barman-workload"), history).start()
    try:
        assert workload.wait_for_acks(20)
        tool.base_backup()
        # 30 s, not the default 10: in one loaded suite run (two workers and other jobs on
        # two cores) these 150 acknowledgements after the backup took longer than 10 s.
        assert workload.wait_for_acks(150, timeout=30)
        anchor = timing.anchor()
        target = dt.datetime.fromtimestamp(timing.wall(), tz=dt.UTC)
        assert workload.wait_for_acks(180)
        incident = timing.wall()
        with psycopg.connect(topo.primary.dsn(), autocommit=True) as conn:
            conn.execute("DROP TABLE drdrill_ledger")
        workload.stop()
        tool.archive_now()
        yield backend, tool, history, anchor, target, incident
    finally:
        workload.stop()
        tool.close()


def test_protocol_and_catalogue(barman):
    """It is a Backups; its catalogue lists the backup and reaches past the drop."""
    backend, tool, history, anchor, target, incident = barman
    assert isinstance(tool, Backups)
    (backup,) = tool.backups()
    assert backup.region == "primary" and backup.ended < target and backup.size > 0
    newest = tool.newest_restorable()
    assert newest is not None and newest.timestamp() >= incident - 1
    retention = tool.retention()
    assert retention.full_days == 30 and retention.offsite_days == 365
    assert "retention_policy" in retention.settings["full"]


def test_pitr_restore_matches_the_history(barman):
    """Recover with Barman to the target: every acknowledged write before it, none after."""
    backend, tool, history, anchor, target, incident = barman
    result = tool.restore(target, backend.dataroot / "barman-restore-ok", None)  # type: ignore[arg-type]
    try:
        present = read_present_ids(result.node.dsn())
    finally:
        result.node.cleanup()
    check = check_restore(
        history, present, anchor=anchor, target=target.timestamp(), incident=incident
    )
    assert check.correct, check
    assert present, "the restore brought back no ledger rows"
    assert [p.name for p in result.phases] == ["verify", "copy", "start", "replay"]


def test_dr_copy_restores_alone(barman):
    """After replicate(), losing the primary region's Barman leaves the DR copy to restore."""
    backend, tool, history, anchor, target, incident = barman
    reports = tool.replicate()
    assert reports and all(r.ok for r in reports), reports
    assert sorted(b.region for b in tool.backups()) == ["dr", "primary"]
    primary_home = tool.sites["primary"].server_dir
    saved = primary_home.with_name("pg-saved")
    primary_home.rename(saved)
    try:
        assert tool.restore_site().region == "dr"
        result = tool.restore(target, backend.dataroot / "barman-restore-dr", None)  # type: ignore[arg-type]
        try:
            present = read_present_ids(result.node.dsn())
        finally:
            result.node.cleanup()
        assert "(dr)" in result.source
        check = check_restore(
            history, present, anchor=anchor, target=target.timestamp(), incident=incident
        )
        assert check.correct, check
    finally:
        saved.rename(primary_home)


def test_flipped_byte_is_named_by_verify_and_restore(barman):
    """A flipped byte in a backup file: verify() names the file and the restore refuses."""
    backend, tool, history, anchor, target, incident = barman
    (backup,) = tool.backups("primary")
    data = tool.sites["primary"].server_dir / "base" / backup.backup_id / "data"
    victim = max(
        (p for p in (data / "base").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size
    )
    original = victim.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0x10
    victim.write_bytes(bytes(damaged))
    try:
        findings = tool.verify()
        assert any(f.path == str(victim) for f in findings), findings
        workdir = backend.dataroot / "barman-restore-bad"
        with pytest.raises(CorruptBackup, match=victim.name):
            tool.restore(target, workdir, None)  # type: ignore[arg-type]
        assert not (workdir / "data").exists()
    finally:
        victim.write_bytes(original)
    assert not [f for f in tool.verify() if f.path.startswith(str(data))]


def test_missing_wal_segment_is_named(barman):
    """A segment gone from Barman's archive: verify() and the restore both name it."""
    backend, tool, history, anchor, target, incident = barman
    site = tool.sites["primary"]
    name = tool.archived(site)[-1][0]
    segment = site.server_dir / "wals" / name[:16] / name
    saved = segment.with_name(name + ".saved")
    segment.rename(saved)
    try:
        assert any(f.path == str(segment) for f in tool.verify())
        workdir = backend.dataroot / "barman-restore-nowal"
        with pytest.raises(MissingWalSegment, match=name):
            tool.restore(target, workdir, None)  # type: ignore[arg-type]
        assert not (workdir / "data").exists()
    finally:
        saved.rename(segment)


def test_stale_catalogue_shows_old_newest_restorable(barman):
    """With WAL receiving stopped, writes go on but the catalogue's newest point stays old."""
    backend, tool, history, anchor, target, incident = barman
    before = tool.newest_restorable()
    assert before is not None
    tool.close()  # receive-wal stops: the catalogue goes stale
    timing.sleep(2.0)
    with psycopg.connect(tool.node.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE after_stale (x int)")
        conn.execute("SELECT pg_switch_wal()")
    tool.archive_wal(tool.sites["primary"])
    newest = tool.newest_restorable()
    assert newest == before
    assert timing.wall() - newest.timestamp() >= 2.0
