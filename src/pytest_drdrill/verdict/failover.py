"""Verdicts of drills whose recovery is a failover, and of faults that must not cause one.

A drill's own service is judged against the marker's target; another service whose
client saw no outage passes as unaffected. Each business function is judged against its
own targets from the downtime and loss of the services it depends on. The drill's
verdict is the worst of them all, its reason the main service's followed by every
service and function that did not pass.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from pytest_drdrill.measure.function_probes import measure_probe_rto, unreachable_before
from pytest_drdrill.measure.functions import combine_rpo, combine_rto
from pytest_drdrill.results import FunctionResult, ServiceResult, Verdict
from pytest_drdrill.verdict.rule import judge
from pytest_drdrill.verdict.severity import worst

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from pytest_drdrill.measure.history import History
    from pytest_drdrill.measure.services import ServiceMeasurement
    from pytest_drdrill.results import Phase, RpoResult, Target
    from pytest_drdrill.targets import Targets

__all__ = ["judge_drill", "judge_functions", "judge_no_failover", "judge_service"]


def judge_service(
    service: str,
    measured: ServiceMeasurement,
    target: Target | None,
    *,
    subject: bool,
    observation_seconds: float,
    fault: str,
) -> ServiceResult:
    """Judge one service of a drill from what its client saw.

    :param subject: whether it is the drill's own service; another service whose client
        saw no outage passes, and the marker's cap on lost writes does not apply to it.

    .. versionadded:: 0.5
    """
    rto, rpo = measured.rto, measured.rpo
    if target is None:
        verdict, reason = (
            Verdict.INCONCLUSIVE,
            "no target: name a tier or function in the drdrill marker",
        )
    elif not subject and (rto is None or not rto.effect_seen):
        verdict, reason = Verdict.PASS, "unaffected: its client saw no outage"
    else:
        if not subject and target.max_lost_writes is not None:
            # The marker's cap on lost writes is about the drill's own service.
            target = dataclasses.replace(target, max_lost_writes=None)
        verdict, reason = judge(
            target, rto, rpo, observation_seconds=observation_seconds, fault=fault
        )
    return ServiceResult(
        service, rto, rpo, measured.acknowledged_writes, verdict, reason, measured.lost_ages
    )


def judge_functions(
    targets: Targets,
    services: Mapping[str, ServiceResult],
    *,
    observation_seconds: float,
    fault: str,
    probed: Mapping[str, History] | None = None,
    fault_at: float | None = None,
    losses: Mapping[str, RpoResult] | None = None,
) -> tuple[FunctionResult, ...]:
    """Judge every business function that depends on a measured service or was probed.

    A function none of whose services saw an outage passes as unaffected. A function with
    probes (``probed``: its probe history by name) is measured end to end from them: its
    RTO is its own clients'; its data loss still comes from its dependencies' ledgers. Its
    probes must have succeeded before the fault, or it is inconclusive. A function whose
    clients' writes were checked afterwards (``losses``: the acknowledged writes the
    application no longer holds, by function) is judged on that loss instead.

    .. versionadded:: 0.2
    .. versionchanged:: 0.5 moved here from ``measure.functions``.
    .. versionchanged:: 0.7 ``probed`` and ``fault_at``.
    .. versionchanged:: 0.9 ``losses``.
    """
    results = []
    for name, function in targets.business_functions.items():
        depends, not_exercised = targets.function_services(name)
        measured = [services[s] for s in depends if s in services]
        history = (probed or {}).get(name)
        if not measured and history is None:
            continue
        target = targets.resolve(function=name)
        own_loss = (losses or {}).get(name)
        rpo = own_loss if own_loss is not None else combine_rpo(s.rpo for s in measured)
        described = tuple(probe.describe() for probe in function.probes if history is not None)
        unproven = None if history is None or fault_at is None else (
            unreachable_before(history, fault_at)
        )  # fmt: skip
        if history is not None and fault_at is not None:
            rto = measure_probe_rto(history, fault_at)
        else:
            rto = combine_rto(s.rto for s in measured)
        if unproven is not None:
            verdict, reason = Verdict.INCONCLUSIVE, f"{unproven}: nothing it saw counts"
        elif not rto.effect_seen:
            unaffected = "its probes never failed" if history is not None else (
                "no service it depends on went down"
            )  # fmt: skip
            verdict, reason = Verdict.PASS, f"unaffected: {unaffected}"
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
                probes=described,
            )
        )
    return tuple(results)


def judge_drill(
    main: ServiceResult,
    services: Iterable[ServiceResult],
    functions: Iterable[FunctionResult],
    *,
    recovery_errors: Sequence[str] = (),
) -> tuple[Verdict, str]:
    """The drill's verdict: the worst of its services and functions.

    Unless ``main``'s is ``INCONCLUSIVE``: a fault that never hit the drill's own service
    proves nothing, whatever the others saw.

    .. versionadded:: 0.5
    """
    verdict, reason = main.verdict, main.reason
    if main.verdict is not Verdict.INCONCLUSIVE:
        worse_services = [s for s in services if s is not main and s.verdict is not Verdict.PASS]
        worse_functions = [f for f in functions if f.verdict is not Verdict.PASS]
        verdict = worst(
            [verdict, *(s.verdict for s in worse_services), *(f.verdict for f in worse_functions)]
        )
        reason += "".join(f"; {s.service}: {s.reason}" for s in worse_services)
        if worse_functions:
            reason += "; business functions not met: " + ", ".join(
                f"{f.function} ({f.verdict.value})" for f in worse_functions
            )
    return verdict, with_recovery_errors(reason, recovery_errors)


def judge_no_failover(
    *,
    detections: Sequence[Phase],
    outage: Sequence[str],
    before_ms: float,
    during_ms: float,
    min_added_ms: float,
    recovery_errors: Sequence[str] = (),
) -> tuple[Verdict, str]:
    """Judge a fault that must NOT cause a failover, such as latency on a healthy link.

    ``FAIL`` on any failover decision or client-seen outage (a false failover);
    ``INCONCLUSIVE`` when the median acknowledged-write latency during the fault is not
    at least ``min_added_ms`` above the one before (the fault was not felt); else ``PASS``.

    :param detections: the drill's ``detection`` phases.
    :param outage: the services whose client saw an outage.

    .. versionadded:: 0.5
    """
    seen = f"median write {during_ms:.0f} ms during the fault against {before_ms:.0f} ms before"
    if detections or outage:
        verdict = Verdict.FAIL
        reason = (
            f"false failover: {len(detections)} failover decision(s) "
            f"({'; '.join(p.detail for p in detections) or 'none'}); outage seen by "
            f"{list(outage) or 'no client'}; {seen}. Raise --drill-health-timeout / "
            "drill_health_timeout above the slow link's round trip"
        )
    elif during_ms - before_ms < min_added_ms:
        verdict = Verdict.INCONCLUSIVE
        reason = f"the client saw no slowdown of {min_added_ms:.0f} ms: {seen}"
    else:
        verdict, reason = Verdict.PASS, f"no failover and no failed operation; {seen}"
    return verdict, with_recovery_errors(reason, recovery_errors)


def judge_tolerated(
    *, outage: Sequence[str], lost_writes: int, evidence: str, recovery_errors: Sequence[str] = ()
) -> tuple[Verdict, str]:
    """Judge a fault the system must ride out without any outage, proven to have taken effect.

    For a fault designed to be absorbed (etcd losing its quorum under Patroni's
    ``failsafe_mode``): the usual rule would call a drill whose client saw no outage
    inconclusive, because the fault might never have taken effect. Here ``evidence``
    says how the drill proved it did, independently of the client. ``FAIL`` on any
    client-seen outage or lost acknowledged write; else ``PASS``.

    :param outage: the services whose client saw an outage.
    :param evidence: what showed the fault in effect, e.g. etcd's own health replies.

    .. versionadded:: 0.6
    """
    if outage or lost_writes:
        reason = (
            f"not ridden out: outage seen by {list(outage) or 'no client'}, {lost_writes} "
            f"acknowledged write(s) lost, while {evidence}"
        )
        return Verdict.FAIL, with_recovery_errors(reason, recovery_errors)
    reason = f"ridden out: no outage and no lost write while {evidence}"
    return Verdict.PASS, with_recovery_errors(reason, recovery_errors)


def with_recovery_errors(reason: str, errors: Sequence[str]) -> str:
    """``reason`` followed by what the recovery hooks reported, if anything."""
    if errors:
        return reason + "; recovery reported: " + "; ".join(errors)
    return reason
