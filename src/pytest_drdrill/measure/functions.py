"""Per-service and per-business-function results, built from each service's own history.

A business function is down while any service it depends on is down, and back when
all of them are: its RTO is the latest recovery among its affected dependencies, its
data loss the sum of theirs with the widest window. Each function is judged against its
own targets from the targets file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill.measure.history import Outcome
from pytest_drdrill.results import FunctionResult, RpoResult, RtoResult, Verdict
from pytest_drdrill.verdict import judge

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from pytest_drdrill.measure.history import History
    from pytest_drdrill.results import ServiceResult
    from pytest_drdrill.targets import Targets


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


def judge_functions(
    targets: Targets,
    services: Mapping[str, ServiceResult],
    *,
    observation_seconds: float,
    fault: str,
) -> tuple[FunctionResult, ...]:
    """Judge every business function that depends on a measured service.

    A function none of whose services saw an outage passes as unaffected.

    .. versionadded:: 0.2
    """
    results = []
    for name in targets.business_functions:
        depends, not_exercised = targets.function_services(name)
        measured = [services[s] for s in depends if s in services]
        if not measured:
            continue
        target = targets.resolve(function=name)
        rto = combine_rto(s.rto for s in measured)
        rpo = combine_rpo(s.rpo for s in measured)
        if not rto.effect_seen:
            verdict, reason = Verdict.PASS, "unaffected: no service it depends on went down"
        else:
            verdict, reason = judge(
                target, rto, rpo, observation_seconds=observation_seconds, fault=fault
            )
        results.append(
            FunctionResult(
                function=name,
                services=tuple(s.service for s in measured),
                not_exercised=not_exercised,
                rto=rto,
                rpo=rpo,
                verdict=verdict,
                reason=reason,
                target=target,
            )
        )
    return tuple(results)
