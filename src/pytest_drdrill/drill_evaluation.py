"""How a drill's measurements become its result: each service's RTO and RPO, judged.

:class:`~pytest_drdrill.drill.Drill` owns the lifecycle and calls these once the drill
has ended. They read the clients' histories and the record, and apply the rules of
:mod:`pytest_drdrill.verdict`; publishing the result and failing the test stay the
drill's.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from pytest_drdrill import verdict
from pytest_drdrill.measure.services import measure_service, median_ack_ms, timelines

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from pytest_drdrill.measure.history import History
    from pytest_drdrill.measure.workload import Workload
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.recovery.envelope import FailoverEnvelope
    from pytest_drdrill.results import (
        DrillResult,
        FaultRecord,
        NodeResources,
        RpoResult,
        Verdict,
    )
    from pytest_drdrill.targets import Targets


@dataclasses.dataclass(frozen=True)
class Measurements:
    """What every result of one drill is built from.

    :param record: the drill record: phases, faults, notes and lag samples.
    :param workloads: the measuring clients, one per service.
    :param resources: what the topology's servers used in the steady state.
    :param facts: the topology as read before any fault.
    """

    record: DrillRecord
    workloads: Mapping[str, Workload]
    resources: tuple[NodeResources, ...] = ()
    facts: dict[str, Any] | None = None

    def result(self, judged: Verdict, reason: str, ended_at: float, **measured: Any) -> DrillResult:
        """The drill's result, with its lag, its clients' timeline and the steady state."""
        record = self.record
        return record.result(
            judged,
            reason,
            ended_at=ended_at,
            lag=tuple(record.lag_samples),
            timeline=timelines(self.workloads, record.started_at, ended_at),
            resources=self.resources,
            topology=self.facts,
            **measured,
        )


def last_fault_at(record: DrillRecord) -> float | None:
    """When the last fault of the drill was injected; ``None`` before any."""
    faults = record.faults
    return faults[-1].injected_at if faults else None


def fault_injected_at(record: DrillRecord, injected_at: float | None) -> FaultRecord | None:
    """The fault injected at ``injected_at``, if the record holds one."""
    return next((f for f in record.faults if f.injected_at == injected_at), None)


def evaluate(
    measured: Measurements,
    *,
    ended_at: float,
    fault_at: float | None,
    service: str,
    observe: float,
    targets: Targets | None,
    probed: Mapping[str, History],
    loss_readers: Mapping[str, Callable[[float], RpoResult | None]],
    envelope: FailoverEnvelope | None,
) -> DrillResult:
    """Measure every service from its client's history and judge the drill.

    :param fault_at: the fault the RTO counts from.
    :param service: the service the drill is about; its RTO and RPO are the drill's own.
    :param observe: seconds the drill waited for recovery after the fault.
    :param targets: the targets file, to judge business functions; ``None`` to skip them.
    :param probed: business functions measured end to end by their own clients.
    :param loss_readers: business functions whose data loss their own clients measure
        (:func:`function_losses`).
    :param envelope: the failover envelope of the last fault, to compare the RTO with.
    """
    record = measured.record
    fault = fault_injected_at(record, fault_at)
    described = f"{fault.kind} of {fault.target}" if fault else "the fault"
    services = {
        name: verdict.judge_service(
            name,
            measure_service(name, workload, fault_at, note=record.note),
            record.target,
            subject=name == service,
            observation_seconds=observe,
            fault=described,
        )
        for name, workload in measured.workloads.items()
    }
    main = services.get(service) or services["postgres"]
    functions = (
        verdict.judge_functions(
            targets,
            services,
            observation_seconds=observe,
            fault=described,
            probed=probed,
            fault_at=fault_at,
            losses=function_losses(loss_readers, fault_at, note=record.note),
        )
        if targets is not None and fault_at is not None
        else ()
    )
    judged, reason = verdict.judge_drill(
        main, services.values(), functions, recovery_errors=record.recovery_errors
    )
    if envelope is not None and main.rto is not None and main.rto.seconds is not None:
        judged, reason = verdict.judge_envelope(
            judged, reason, envelope, main.rto.seconds, note=record.note
        )
    return measured.result(
        judged,
        reason,
        ended_at,
        fault=fault,
        rto=main.rto,
        rpo=main.rpo,
        acknowledged_writes=main.acknowledged_writes,
        services=tuple(services.values()),
        functions=functions,
    )


def function_losses(
    readers: Mapping[str, Callable[[float], RpoResult | None]],
    fault_at: float | None,
    *,
    note: Callable[[str], None],
) -> dict[str, RpoResult]:
    """Each self-measuring function's loss; one that cannot be read is noted, not guessed."""
    losses: dict[str, RpoResult] = {}
    if fault_at is None:
        return losses
    for name, read in readers.items():
        try:
            loss = read(fault_at)
        except Exception as exc:  # any client error: the table falls back, and says so
            note(
                f"{name}: its acknowledged writes could not be checked afterwards ({exc}); "
                "its data loss is its dependencies' instead"
            )
            continue
        if loss is not None:
            losses[name] = loss
    return losses


def as_no_failover(
    result: DrillResult,
    history: History,
    fault_at: float | None,
    *,
    min_added_ms: float,
    recovery_errors: list[str],
) -> DrillResult:
    """``result`` judged again as a fault that must not cause a failover.

    See :meth:`pytest_drdrill.drill.Drill.measure_no_failover`.

    :param history: the drill service's client history, for its latency before and during.
    """
    fault = result.fault
    ended = fault.healed_at if fault is not None and fault.healed_at else result.ended_at
    before = median_ack_ms(history, result.started_at, fault_at or result.started_at)
    during = median_ack_ms(history, fault_at or 0.0, ended)
    judged, reason = verdict.judge_no_failover(
        detections=[p for p in result.phases if p.name == "detection"],
        outage=_outage(result),
        before_ms=before,
        during_ms=during,
        min_added_ms=min_added_ms,
        recovery_errors=recovery_errors,
    )
    return dataclasses.replace(result, verdict=judged, reason=reason)


def as_tolerated(result: DrillResult, *, evidence: str, recovery_errors: list[str]) -> DrillResult:
    """``result`` judged again as a fault that must cause no outage at all.

    See :meth:`pytest_drdrill.drill.Drill.measure_tolerated`.
    """
    judged, reason = verdict.judge_tolerated(
        outage=_outage(result),
        lost_writes=sum(s.rpo.lost_writes for s in result.services if s.rpo is not None),
        evidence=evidence,
        recovery_errors=recovery_errors,
    )
    return dataclasses.replace(result, verdict=judged, reason=reason)


def _outage(result: DrillResult) -> list[str]:
    """The services whose clients saw an outage."""
    return [s.service for s in result.services if s.rto is not None and s.rto.effect_seen]
