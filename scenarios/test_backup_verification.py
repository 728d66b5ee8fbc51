"""Backup verification on the requirements' schedule: daily and weekly drills.

Daily: the database's integrity (pg_amcheck), every stored backup's checksums and
authentication, and each data category's newest restorable point against its RPO target.
Weekly: a sample restore of each kind of backup into isolated servers, and the backups
copied to the DR and backup regions and verified in each of the three regions (available,
intact, decryptable), one check per region as the requirements'
``validate_cross_region_backups``. Its negative control damages one copy in the backup
region only: the weekly verification must go red there, naming that region.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from pytest_drdrill import timing
from pytest_drdrill.backup import verification
from pytest_drdrill.backup.objects import backup_objects, restore_objects
from pytest_drdrill.backup.pitr import restore_to_time
from pytest_drdrill.backup.redis import restore_redis_snapshot, take_redis_snapshot
from pytest_drdrill.backup.region_checks import CrossRegionValidation, phase_name
from pytest_drdrill.backup.tool_checks import (
    check_tool_copies,
    check_tool_freshness,
    check_tool_retention,
    check_tool_verification,
)
from pytest_drdrill.clients.s3 import ensure_bucket, s3_client
from pytest_drdrill.measure.postgres import read_present_ids
from pytest_drdrill.measure.restore import check_restore

#: The built-in backups ship the reference topology's WAL spool; under Patroni the
#: team's backup tool (pgBackRest, Barman) takes their place.
REFERENCE_ONLY = ("reference",)
#: A team's own backup tools (``--drill-backup-tool``).
TOOLS = ("pgbackrest", "barman")


def _cross_region(drdrill, site):
    """Copy to every region, then one check per region, each recorded as its own phase."""
    validation = CrossRegionValidation(site.catalogs(), site.keys)
    drdrill.check("cross-region-copy", validation.copy)
    for region in validation.regions:
        drdrill.check(phase_name(region), lambda region=region: validation.check(region))


def _backed_up(drdrill, drdrill_backups):
    """Take every kind of backup while the workloads write; return the ledger's target time."""
    topology = drdrill.topology
    site = drdrill_backups
    site.base_backup()
    assert drdrill.workload.wait_for_acks(60)
    workdir = site.workdir / "redis"
    take_redis_snapshot(topology.redis_nodes["redis-primary"], site.catalog, site.keys.current,
                        workdir)  # fmt: skip
    client = s3_client(topology.s3_nodes["s3-primary"].endpoint_url, timeout=30.0)
    backup_objects(client, topology.bucket, site.catalog, site.keys.current, source="s3-primary")
    target = timing.wall()
    site.archive_now()
    return target


@pytest.mark.drdrill(
    cadence="daily",
    tier="tier_1_critical",
    scenario="backup-verification-daily",
    postgres_failover=REFERENCE_ONLY,
    backup_tool=("builtin",),
)
def test_daily_backup_verification(drdrill, drdrill_backups):
    """Integrity, checksums and freshness of today's backups all hold."""
    site = drdrill_backups
    with drdrill.running():
        _backed_up(drdrill, site)
        drdrill.check(
            "database-integrity",
            lambda: verification.check_database_integrity(drdrill.topology.primary),
        )
        drdrill.check(
            "backup-checksums", lambda: verification.check_backup_checksums(site.catalog, site.keys)
        )
        drdrill.check(
            "backup-freshness", lambda: verification.check_freshness(site.catalog, drdrill.targets)
        )
    drdrill.conclude_checks()


@pytest.mark.drdrill(
    cadence="weekly",
    tier="tier_1_critical",
    scenario="backup-verification-weekly",
    postgres_failover=REFERENCE_ONLY,
    backup_tool=("builtin",),
)
def test_weekly_sample_restore_and_cross_region(drdrill, drdrill_backups, drdrill_backend):
    """Each kind of backup restores into an isolated server; every region holds good copies."""
    site = drdrill_backups
    history = drdrill.workload.history
    with drdrill.running():
        anchor = timing.anchor()
        target = _backed_up(drdrill, site)
    _cross_region(drdrill, site)

    def sample_postgres() -> verification.CheckResult:
        started = timing.monotonic()
        restored = restore_to_time(
            site.dr_catalog, site.keys, dt.datetime.fromtimestamp(target, tz=dt.UTC),
            install=drdrill_backend.install, run_as=drdrill_backend.run_as,
            workdir=site.workdir / "sample-restore",
        )  # fmt: skip
        try:
            present = read_present_ids(restored.node.dsn())
        finally:
            restored.node.cleanup()
        check = check_restore(history, present, anchor=anchor, target=target, incident=target)
        detail = (
            f"restored from the DR region's copy to {restored.node.name}: {len(present)} rows, "
            f"{len(check.missing_before_target)} acknowledged before the target missing, "
            f"{len(check.present_after_target)} started after it present"
        )
        return verification.CheckResult(
            "sample-restore-postgres", check.correct, timing.monotonic() - started, detail
        )

    def sample_redis() -> verification.CheckResult:
        started = timing.monotonic()
        (snapshot,) = site.dr_catalog.list_backups("redis-snapshot")
        node = restore_redis_snapshot(
            site.dr_catalog, site.keys, snapshot.backup_id,
            install=drdrill_backend.redis_install, workdir=site.workdir / "sample-redis",
            name="redis-restored",
        )  # fmt: skip
        node.cleanup()
        detail = f"snapshot {snapshot.backup_id} loaded into a new server, keys checked"
        return verification.CheckResult(
            "sample-restore-redis", True, timing.monotonic() - started, detail
        )

    def sample_objects() -> verification.CheckResult:
        started = timing.monotonic()
        (backup,) = site.dr_catalog.list_backups("objects")
        client = s3_client(drdrill.topology.s3_nodes["s3-dr"].endpoint_url, timeout=30.0)
        bucket = f"restore-{uuid.uuid4().hex[:8]}"
        ensure_bucket(client, bucket)
        keys = restore_objects(site.dr_catalog, site.keys, backup.backup_id, client, bucket)
        detail = f"{len(keys)} objects restored into {bucket} in the DR region"
        return verification.CheckResult(
            "sample-restore-objects", bool(keys), timing.monotonic() - started, detail
        )

    drdrill.check("sample-restore-postgres", sample_postgres)
    drdrill.check("sample-restore-redis", sample_redis)
    drdrill.check("sample-restore-objects", sample_objects)
    drdrill.conclude_checks()


@pytest.mark.drdrill(
    cadence="weekly",
    tier="tier_1_critical",
    scenario="negative-control-backup-region-copy-lost",
    postgres_failover=REFERENCE_ONLY,
    backup_tool=("builtin",),
    negative_control=True,
)
def test_negative_control_lost_copy_in_the_backup_region_goes_red(drdrill, drdrill_backups):
    """Negative control: one stored file gone from the backup region's copy only.

    The copies are made, then a file of the newest base backup is deleted from the
    backup region's store, as a lost or expired object would be. The next weekly
    verification must go red on the backup region, by name, and on no other region:
    the copy step leaves listed backups alone, so nothing repairs the loss unseen.
    """
    site = drdrill_backups
    with drdrill.running():
        _backed_up(drdrill, site)
    site.replicate()
    backup = site.backup_catalog
    assert backup is not None, "the topology has no backup region store"
    (base, *_) = backup.list_backups("postgres-base")
    lost = backup.data_key(base.backup_id, base.files[0].name)
    backup.client.delete_object(Bucket=backup.bucket, Key=lost)
    _cross_region(drdrill, site)
    result = drdrill.conclude_checks()
    failed = {p.name: p.detail for p in result.phases if not p.ok}
    assert set(failed) == {"cross-region-backup"}, failed
    assert failed["cross-region-backup"].startswith("backup region (")
    assert lost in failed["cross-region-backup"]
    assert "cross-region-backup failed: backup region" in result.reason


@pytest.mark.drdrill(
    cadence="daily",
    tier="tier_1_critical",
    scenario="backup-tool-verification-daily",
    postgres_failover=REFERENCE_ONLY,
    backup_tool=TOOLS,
)
def test_daily_backup_tool_verification(drdrill, drdrill_backups):
    """The team's tool verifies its repositories; its backups are fresh and kept long enough.

    Freshness is each region's newest restorable point from the tool's own catalogue
    against the RPO of every data category PostgreSQL holds; retention is the tool's
    configured retention against the targets file's ``backup_retention``.
    """
    tool = drdrill_backups
    with drdrill.running():
        tool.base_backup()
        assert drdrill.workload.wait_for_acks(60)
        tool.archive_now()
        tool.replicate()
        drdrill.check(
            "database-integrity",
            lambda: verification.check_database_integrity(drdrill.topology.primary),
        )
        drdrill.check("tool-verification", lambda: check_tool_verification(tool))
        drdrill.check("tool-freshness", lambda: check_tool_freshness(tool, drdrill.targets))
        drdrill.check("tool-retention", lambda: check_tool_retention(tool, drdrill.targets))
    drdrill.conclude_checks()


@pytest.mark.drdrill(
    cadence="weekly",
    tier="tier_1_critical",
    scenario="backup-tool-sample-restore-weekly",
    postgres_failover=REFERENCE_ONLY,
    backup_tool=TOOLS,
)
def test_weekly_sample_restore_from_the_tools_dr_repository(drdrill, drdrill_backups):
    """The DR region's repository alone restores the database to a point in time.

    The restored server's ledger is judged against the client's history: every write
    acknowledged before the target present, none started after it.
    """
    tool = drdrill_backups
    history = drdrill.workload.history
    with drdrill.running():
        tool.base_backup()
        assert drdrill.workload.wait_for_acks(60)
        anchor = timing.anchor()
        target = timing.wall()
        tool.archive_now()
    drdrill.check("cross-region", lambda: check_tool_copies(tool))

    def sample_restore() -> verification.CheckResult:
        started = timing.monotonic()
        when = dt.datetime.fromtimestamp(target, tz=dt.UTC)
        restored = tool.restore(when, tool.workdir / "sample-restore", drdrill.record, region="dr")
        try:
            present = read_present_ids(restored.node.dsn())
        finally:
            restored.node.cleanup()
        check = check_restore(history, present, anchor=anchor, target=target, incident=target)
        detail = (
            f"restored from {restored.source} to {restored.node.name}: {len(present)} rows, "
            f"{len(check.missing_before_target)} acknowledged before the target missing, "
            f"{len(check.present_after_target)} started after it present"
        )
        return verification.CheckResult(
            "sample-restore-postgres", check.correct, timing.monotonic() - started, detail
        )

    drdrill.check("sample-restore-postgres", sample_restore)
    drdrill.conclude_checks()
