"""Backup and restore drills: an incident no failover can fix, recovered from encrypted backups.

Backups go to the primary region's object store: base backups with pg_basebackup, WAL
shipped as the servers archive it, every object an AES-256-GCM stream. RTO is the
restore's duration by phase; RPO what the restore lost, counted against the client's
own history of acknowledged writes.
"""

from __future__ import annotations

import pytest

from pytest_drdrill import timing


@pytest.mark.drdrill(
    cadence="monthly",
    tier="tier_1_critical",
    data="critical_user_data",
    scenario="pitr-dropped-table",
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
    restored = drdrill.restore(drdrill_backups, target)
    try:
        drdrill.conclude_restore(restored, target=target, incident=incident, anchor=anchor)
    finally:
        restored.node.cleanup()
