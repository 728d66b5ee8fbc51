"""Backup drills: a point-in-time restore judged by its ledger, and named verification checks.

:class:`~pytest_drdrill.drill.Drill` calls these from :meth:`~pytest_drdrill.drill.Drill.restore`,
:meth:`~pytest_drdrill.drill.Drill.conclude_restore`, :meth:`~pytest_drdrill.drill.Drill.check`
and :meth:`~pytest_drdrill.drill.Drill.conclude_checks`; it keeps the lifecycle and
publishes what they return.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from pytest_drdrill import timing, verdict
from pytest_drdrill.measure.postgres import read_present_ids
from pytest_drdrill.measure.restore import check_restore
from pytest_drdrill.results import Phase, RtoResult

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from pytest_drdrill.backup.pitr import RestoreResult
    from pytest_drdrill.backup.site import BackupSite
    from pytest_drdrill.backup.verification import CheckOutcome
    from pytest_drdrill.drill_evaluation import Measurements
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.results import DrillResult, FaultRecord
    from pytest_drdrill.timing import Anchor


def run_restore(
    hook: Callable[..., object],
    backups: BackupSite,
    target: float,
    *,
    workdir: Path,
    record: DrillRecord,
) -> RestoreResult:
    """Restore to epoch time ``target`` through the ``pytest_drdrill_restore`` hook relay.

    :raises RuntimeError: when no implementation returned a result.
    """
    result = hook(
        backups=backups,
        target=dt.datetime.fromtimestamp(target, tz=dt.UTC),
        workdir=workdir,
        record=record,
    )
    if result is None:
        raise RuntimeError(
            "no pytest_drdrill_restore implementation returned a result; the reference "
            "one is registered unless -p no:drdrill-reference-restore removed it"
        )
    return result  # type: ignore[return-value]


def validate_restore(record: DrillRecord, restored: RestoreResult) -> tuple[set[int], float]:
    """Record the restore's phases, then read its ledger as the ``validate`` phase.

    :returns: the ledger ids the restored server holds, and when validation ended.
    """
    for phase in restored.phases:
        record.add_phase(phase)
    with record.phase("validate") as note:
        present = read_present_ids(restored.node.dsn(app="drdrill-validate"))
        note.detail = f"{len(present)} ledger rows read from {restored.node.name}"
    return present, record.phases[-1].ended


def restore_result(
    measured: Measurements,
    restored: RestoreResult,
    present: set[int],
    *,
    validated: float,
    service: str,
    target: float,
    incident: float,
    anchor: Anchor,
    ended_at: float,
    fault: FaultRecord | None,
) -> DrillResult:
    """Judge a restore: RTO from its first phase to validation, RPO from the ledger check.

    See :meth:`pytest_drdrill.drill.Drill.conclude_restore`.

    :param present: the ledger ids the restored server holds.
    :param validated: when validation ended (monotonic).
    :param service: the restored service; its client's history is the reference.
    """
    history = measured.workloads[service].history
    check = check_restore(history, present, anchor=anchor, target=target, incident=incident)
    started = restored.phases[0].started
    rto = RtoResult(validated - started, started, validated, effect_seen=True)
    judged = verdict.judge_restore(
        service,
        measured.record.target,
        rto,
        check,
        restored,
        restore_target=target,
        acknowledged_writes=len(history.acknowledged()),
    )
    return measured.result(
        judged.verdict,
        judged.reason,
        ended_at,
        fault=fault,
        rto=rto,
        rpo=check.rpo,
        acknowledged_writes=judged.acknowledged_writes,
        # A restore drill judges the service it restores; the others may be down on
        # purpose (a lost region with failover off) and are not its subject.
        services=(judged,),
        functions=(),
    )


def run_check(record: DrillRecord, name: str, run: Callable[[], CheckOutcome]) -> CheckOutcome:
    """Run one verification check and record it as a phase (ok or failed, with detail)."""
    started = timing.monotonic()
    outcome = run()
    record.add_phase(Phase(name, started, timing.monotonic(), ok=outcome.ok, detail=outcome.detail))
    return outcome


def checks_result(measured: Measurements) -> DrillResult:
    """Judge a verification drill from its checks: no fault, no RTO, every check must pass."""
    record = measured.record
    phases = tuple(sorted(record.phases, key=lambda p: p.started))
    judged, reason = verdict.judge_checks(phases)
    return record.result(
        judged,
        reason,
        phases=phases,
        faults=(),
        resources=measured.resources,
        topology=measured.facts,
    )
