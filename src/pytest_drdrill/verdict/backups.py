"""Verdicts of backup drills: a point-in-time restore, and a run of verification checks.

A restore is judged like a failover, its RTO the restore's duration and its RPO what it
lost, but it must also be the state at its target: one that lacks a write acknowledged
before the target, or holds one started after it, fails whatever its timing. A
verification drill has no fault and no RTO: it passes when every check did.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from pytest_drdrill.results import ServiceResult, Verdict
from pytest_drdrill.verdict.rule import judge

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pytest_drdrill.backup.pitr import RestoreResult
    from pytest_drdrill.measure.restore import RestoreCheck
    from pytest_drdrill.results import Phase, RtoResult, Target

__all__ = ["judge_checks", "judge_restore"]


def judge_restore(
    service: str,
    target: Target | None,
    rto: RtoResult,
    check: RestoreCheck,
    restored: RestoreResult,
    *,
    restore_target: float,
    acknowledged_writes: int,
) -> ServiceResult:
    """Judge a point-in-time restore of ``service`` against the drill's target.

    :param rto: the restore's duration, from its first phase to the end of validation.
    :param check: the restored ledger against the client's history.
    :param restore_target: the time restored to, epoch seconds.
    :param acknowledged_writes: writes the service's client saw acknowledged.

    .. versionadded:: 0.5
    """
    described = (
        f"restore to {_iso(restore_target)} of base backup {restored.base.backup_id} and "
        f"{restored.segments} WAL segments"
        + (f" from {restored.source}" if getattr(restored, "source", "") else "")
    )
    if target is None:
        verdict, reason = Verdict.INCONCLUSIVE, "no target: name a tier in the marker"
    else:
        verdict, reason = judge(
            target, rto, check.rpo, observation_seconds=rto.seconds or 0.0, fault=described
        )
    if not check.correct:
        verdict = Verdict.FAIL
        reason = (
            f"the restore is not the state at {_iso(restore_target)}: "
            f"{len(check.missing_before_target)} write(s) acknowledged before it missing "
            f"{list(check.missing_before_target[:10])}, {len(check.present_after_target)} "
            f"started after it present {list(check.present_after_target[:10])}; " + reason
        )
    reason += (
        f"; restored {restored.stored_bytes / 1e6:.1f} MB fetched, "
        f"{restored.plain_bytes / 1e6:.1f} MB restored"
    )
    return ServiceResult(service, rto, check.rpo, acknowledged_writes, verdict, reason)


def judge_checks(phases: Sequence[Phase]) -> tuple[Verdict, str]:
    """Judge a verification drill from its checks, each recorded as a phase.

    .. versionadded:: 0.5
    """
    failed = [p for p in phases if not p.ok]
    if not phases:
        return Verdict.INCONCLUSIVE, "no check ran: record them with drdrill.check()"
    if failed:
        return Verdict.FAIL, "; ".join(f"{p.name} failed: {p.detail}" for p in failed)
    return Verdict.PASS, f"{len(phases)} checks passed: " + ", ".join(p.name for p in phases)


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).isoformat(timespec="milliseconds")
