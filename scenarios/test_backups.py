"""Backup and restore drills: an incident no failover can fix, recovered from encrypted backups.

With the built-in tool, backups go to the primary region's object store: base backups
with pg_basebackup, WAL shipped as the servers archive it, every object an AES-256-GCM
stream. With ``--drill-backup-tool=pgbackrest`` or ``=barman`` the team's tool backs up
into a repository per region and restores with its own commands; the same drills judge it.
RTO is the restore's duration by phase; RPO what the restore lost, counted against the
client's own history of acknowledged writes.
"""

from __future__ import annotations

import pytest

from pytest_drdrill import timing
from pytest_drdrill.backup.tools._protocol import Backups

#: The built-in backups ship the reference topology's WAL spool; under Patroni the team's
#: backup tool (pgBackRest, Barman) takes their place.
REFERENCE_ONLY = ("reference",)


def restore_and_judge(drdrill, backups, target, incident, anchor):
    """Restore to ``target`` through the restore hook, judge it, and remove the server."""
    restored = drdrill.restore(backups, target)
    try:
        drdrill.conclude_restore(restored, target=target, incident=incident, anchor=anchor)
    finally:
        restored.node.cleanup()
    return restored


@pytest.mark.drdrill(
    cadence="monthly",
    tier="tier_1_critical",
    data="critical_user_data",
    scenario="pitr-dropped-table",
    postgres_failover=REFERENCE_ONLY,
)
def test_dropped_table_restored_to_the_moment_before(drdrill, drdrill_backups):
    """The ledger table is dropped; a restore to the second before brings back all before it.

    Writes acknowledged between the target and the drop are the restore's data loss,
    counted and judged against the category's RPO; a write acknowledged before the target
    and missing, or one started after it and present, fails the drill outright.
    """
    with drdrill.running():
        drdrill_backups.base_backup()
        assert drdrill.workload.wait_for_acks(100)
        anchor = timing.anchor()
        target = timing.wall()
        drdrill.faults.drop_table()
        incident = timing.wall()
        drdrill.declare_incident(
            "ledger table dropped on the primary: restore to the moment before"
        )
        drdrill_backups.archive_now()
    restore_and_judge(drdrill, drdrill_backups, target, incident, anchor)


@pytest.mark.drdrill(
    cadence="monthly",
    tier="tier_1_critical",
    data="critical_user_data",
    scenario="pitr-lost-region-from-dr-copy",
    postgres_failover=REFERENCE_ONLY,
)
def test_lost_region_restored_from_the_dr_copy(drdrill, drdrill_backups):
    """The primary region is lost with its backups, and the DR standby with it.

    What is left is the DR region's copy of the backups. The database is rebuilt from it
    in the DR region, to the newest point the copy holds; writes acknowledged after that
    point are the data loss, counted against the category's RPO. Automatic failover is off:
    the drill proves the backup path, the one left when no standby can be trusted.
    """
    topology = drdrill.topology
    with drdrill.running(failover=False):
        drdrill_backups.base_backup()
        assert drdrill.workload.wait_for_acks(100)
        anchor = timing.anchor()
        target = timing.wall()
        drdrill_backups.archive_now()
        copies = drdrill_backups.replicate()
        assert all(report.ok for report in copies), [r for r in copies if not r.ok]
        drdrill.faults.region_outage("primary")
        drdrill.faults.crash(topology.pg_nodes["pg-dr"])
        if isinstance(drdrill_backups, Backups):
            # A tool's repository is a directory here, not the region's object store.
            drdrill.faults.repository_loss(drdrill_backups, "primary")
        incident = timing.wall()
        drdrill.declare_incident(
            "primary region lost with its backups, DR standby lost: restore from the DR copy"
        )
    restored = restore_and_judge(drdrill, drdrill_backups, target, incident, anchor)
    if isinstance(drdrill_backups, Backups):
        assert str(drdrill_backups.repository("dr")) in restored.source, restored.source
    else:
        assert restored.source == drdrill_backups.dr_catalog.location, restored.source


@pytest.mark.drdrill(
    cadence="quarterly",
    tier="tier_1_critical",
    data="critical_user_data",
    scenario="pitr-corrupted-data-directory",
    postgres_failover=REFERENCE_ONLY,
)
def test_corrupted_data_directory_restored_from_backups(drdrill, drdrill_backups):
    """The primary's data directory is corrupted under it and it dies; no standby is trusted.

    The ledger's file is overwritten and the server crashed, so its data directory can
    no longer be trusted. Automatic failover is off: standbys that shared the storage
    fault are not to be trusted either. The database is restored from the
    backups to the last moment archived before the corruption; writes acknowledged after
    it are the loss, counted against the category's RPO.
    """
    with drdrill.running(failover=False):
        drdrill_backups.base_backup()
        assert drdrill.workload.wait_for_acks(100)
        anchor = timing.anchor()
        target = timing.wall()
        drdrill_backups.archive_now()
        drdrill.faults.corrupt_datadir()
        incident = timing.wall()
        drdrill.declare_incident("data directory of the primary corrupted: restore from backups")
    restore_and_judge(drdrill, drdrill_backups, target, incident, anchor)
