"""What a group of services lost together, built from each service's own measurements.

A business function is down while any service it depends on is down, and back when
all of them are: its RTO is the latest recovery among its affected dependencies, its
data loss the sum of theirs with the widest window. Judging it against its own targets
is :func:`pytest_drdrill.verdict.judge_functions`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill.measure.history import Outcome
from pytest_drdrill.results import RpoResult, RtoResult

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pytest_drdrill.measure.history import History


def lost_ages(history: History, lost_ids: Iterable[int], fault_at: float) -> tuple[float, ...]:
    """How old each lost write was when the fault hit: fault time minus its acknowledgement.

    0 for a write acknowledged after the fault.

    .. versionadded:: 0.2
    """
    acked = {op.id: op.completed for op in history.writes() if op.outcome is Outcome.OK}
    return tuple(max(0.0, fault_at - acked[i]) for i in lost_ids if i in acked)


def combine_rto(results: Iterable[RtoResult | None]) -> RtoResult:
    """Downtime of a group of services: from the first outage until the last recovery.

    .. versionadded:: 0.2
    """
    affected = [r for r in results if r is not None and r.effect_seen]
    if not affected:
        return RtoResult(seconds=None, outage_started=None, recovered_at=None, effect_seen=False)
    started = min(r.outage_started for r in affected if r.outage_started is not None)
    if any(r.seconds is None for r in affected):
        return RtoResult(seconds=None, outage_started=started, recovered_at=None, effect_seen=True)
    last = max(affected, key=lambda r: r.seconds or 0.0)
    return RtoResult(last.seconds, started, last.recovered_at, effect_seen=True)


def combine_rpo(results: Iterable[RpoResult | None]) -> RpoResult | None:
    """Data loss of a group of services: lost writes summed, the widest window.

    Lost ids are left out: ids of different services' ledgers are not comparable.

    .. versionadded:: 0.2
    """
    measured = [r for r in results if r is not None]
    if not measured:
        return None
    return RpoResult(
        lost_writes=sum(r.lost_writes for r in measured),
        lost_ids=(),
        window_seconds=max(r.window_seconds for r in measured),
        unacknowledged_present=sum(r.unacknowledged_present for r in measured),
    )
