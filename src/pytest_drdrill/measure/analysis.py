"""RTO and RPO computed from a recorded :class:`~.history.History`.

Everything here is a pure function of the client's history (and, for RPO, of the ids
read back from the new primary), so a drill's verdict rests on what a client actually
experienced rather than on what the recovery code claims it achieved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill.measure.history import Outcome
from pytest_drdrill.results import RpoResult, RtoResult

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pytest_drdrill.measure.history import History

#: How many unexpected ids a :func:`measure_rpo` error message names.
_IDS_NAMED = 5


def measure_rto(history: History, fault_at: float) -> RtoResult:
    """Measure recovery time from the client's history.

    A failure is a write that did not succeed (:attr:`~.Outcome.FAIL` or
    :attr:`~.Outcome.INFO`) or a failed probe, that completed at or after ``fault_at``;
    an operation already in flight when the fault hit counts. The service counts as
    recovered at the first acknowledged write invoked after the last failure completed,
    so a brief success in the middle of a flapping outage does not end it.

    .. versionadded:: 0.1

    :param history: the drill's history.
    :param fault_at: monotonic stamp of the fault injection.
    :returns: ``effect_seen`` is false when the client saw no failure at all;
        ``seconds`` and ``recovered_at`` are ``None`` when the history holds no
        acknowledged write after the last failure.
    """
    writes = history.writes()
    failures = [
        (op.invoked, op.completed)
        for op in writes
        if op.outcome is not Outcome.OK and op.completed >= fault_at
    ]
    failures.extend(
        (op.invoked, op.completed)
        for op in history.probes()
        if not op.ok and op.completed >= fault_at
    )
    if not failures:
        return RtoResult(seconds=None, outage_started=None, recovered_at=None, effect_seen=False)

    outage_started = max(fault_at, min(invoked for invoked, _ in failures))
    last_failure = max(completed for _, completed in failures)
    recovered_at = min(
        (op.completed for op in writes if op.outcome is Outcome.OK and op.invoked >= last_failure),
        default=None,
    )
    return RtoResult(
        seconds=None if recovered_at is None else recovered_at - fault_at,
        outage_started=outage_started,
        recovered_at=recovered_at,
        effect_seen=True,
    )


def measure_rpo(history: History, present_ids: Iterable[int], fault_at: float) -> RpoResult:
    """Measure data loss: acknowledged writes missing from the new primary.

    An id counts as acknowledged when any write of it was acknowledged, so a workload
    that retries an id after an indeterminate attempt is judged by the retry.

    The window is ``fault_at`` minus the acknowledgement time of the latest surviving
    acknowledged write whose id is below the first lost id, or minus the first write's
    invocation when no such write exists, floored at 0. It is 0 when nothing is lost,
    and can also be 0 when every lost write was acknowledged after the fault.

    .. versionadded:: 0.1

    :param history: the drill's history.
    :param present_ids: the ids read back from the new primary after recovery.
    :param fault_at: monotonic stamp of the fault injection.
    :returns: the lost ids, ascending, and the unacknowledged writes that survived anyway.
    :raises ValueError: when ``present_ids`` holds ids the history never attempted.
    """
    writes = history.writes()
    present = set(present_ids)
    attempted = {op.id for op in writes}
    unknown = present - attempted
    if unknown:
        named = ", ".join(str(i) for i in sorted(unknown)[:_IDS_NAMED])
        more = f" and {len(unknown) - _IDS_NAMED} more" if len(unknown) > _IDS_NAMED else ""
        raise ValueError(
            f"the new primary holds {len(unknown)} row id(s) this drill's workload never "
            f"wrote: {named}{more}. RPO is computed by comparing the rows read back with "
            "the recorded history, so the ledger table must be written only by this "
            "drill's workload. Give each drill its own ledger table (or truncate it "
            "before the workload starts) and check that the workload records every "
            "write it sends."
        )

    acknowledged = {op.id for op in writes if op.outcome is Outcome.OK}
    lost_ids = tuple(sorted(acknowledged - present))
    unacknowledged_present = len((attempted - acknowledged) & present)
    if not lost_ids:
        window = 0.0
    else:
        first_lost = lost_ids[0]
        last_surviving = max(
            (
                op.completed
                for op in writes
                if op.outcome is Outcome.OK and op.id < first_lost and op.id in present
            ),
            default=None,
        )
        since = min(op.invoked for op in writes) if last_surviving is None else last_surviving
        window = max(0.0, fault_at - since)
    return RpoResult(
        lost_writes=len(lost_ids),
        lost_ids=lost_ids,
        window_seconds=window,
        unacknowledged_present=unacknowledged_present,
    )
