"""What each service's client saw during a drill: its RTO, its RPO, the age of its losses.

Every number comes from the client's own history and, for the RPO, from the ledger
read back through the service endpoint after recovery, never from what recovery code
reports. Judging these numbers is :mod:`pytest_drdrill.verdict`'s.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.measure.analysis import measure_rpo, measure_rto
from pytest_drdrill.measure.functions import lost_ages
from pytest_drdrill.measure.timeline import bucket_seconds, service_timeline

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from pytest_drdrill.measure.history import History
    from pytest_drdrill.measure.workload import Workload
    from pytest_drdrill.results import RpoResult, RtoResult, ServiceTimeline

__all__ = [
    "ServiceMeasurement",
    "await_recovered",
    "client_rtos",
    "measure_service",
    "median_ack_ms",
    "reach_steady_state",
    "timelines",
]

_READ_TIMEOUT = 10.0
"""Seconds to read a recovered ledger back through its endpoint."""


@dataclasses.dataclass(frozen=True)
class ServiceMeasurement:
    """One service's measurements.

    :param rto: ``None`` when there was no fault to count from.
    :param rpo: ``None`` unless the service recovered and its ledger could be read.
    :param lost_ages: per lost write, seconds between its acknowledgement and the fault.

    .. versionadded:: 0.5
    """

    rto: RtoResult | None
    rpo: RpoResult | None
    acknowledged_writes: int
    lost_ages: tuple[float, ...] = ()


def measure_service(
    service: str, workload: Workload, fault_at: float | None, *, note: Callable[[str], None]
) -> ServiceMeasurement:
    """Measure one service from its client's history and, once recovered, its ledger.

    :param note: records why the ledger could not be read (the RPO is then unmeasured).

    .. versionadded:: 0.5
    """
    history = workload.history
    rto = measure_rto(history, fault_at) if fault_at is not None else None
    rpo: RpoResult | None = None
    ages: tuple[float, ...] = ()
    if rto is not None and rto.seconds is not None and fault_at is not None:
        try:
            present = workload.read_ids(timeout=_READ_TIMEOUT)
        except Exception as exc:  # any client library's error: report, do not guess
            note(f"could not read the {service} ledger through its endpoint: {exc}")
        else:
            rpo = measure_rpo(history, present, fault_at)
            ages = lost_ages(history, rpo.lost_ids, fault_at)
    return ServiceMeasurement(rto, rpo, len(history.acknowledged()), ages)


def stall_notes(service: str, workload: Workload, started_at: float) -> list[str]:
    """One note when the service's client itself could not run at times, else none.

    .. versionadded:: 0.8
    """
    stalls = workload.history.stalls()
    if not stalls:
        return []
    woke, longest = max(stalls, key=lambda stall: stall[1])
    return [
        f"the {service} client itself could not run {len(stalls)} time(s), longest "
        f"{longest:.2f}s up to +{woke - started_at:.2f}s into the drill (no CPU, or the GIL "
        "held elsewhere): operations that timed out then say nothing about the service"
    ]


def client_rtos(
    workloads: Mapping[str, Workload], fault_at: float | None
) -> dict[str, RtoResult | None]:
    """Each service's RTO as its client saw it, from its history alone (no ledger read).

    .. versionadded:: 0.5
    """
    return {
        name: measure_rto(w.history, fault_at) if fault_at is not None else None
        for name, w in workloads.items()
    }


def timelines(
    workloads: Mapping[str, Workload], start: float, end: float
) -> tuple[ServiceTimeline, ...]:
    """Each service's bucketed timeline of the drill.

    .. versionadded:: 0.5
    """
    bucket = bucket_seconds(end - start)
    return tuple(
        service_timeline(name, w.history, start=start, end=end, bucket=bucket)
        for name, w in workloads.items()
    )


def median_ack_ms(history: History, start: float, end: float) -> float:
    """Median latency, in ms, of the writes invoked in [start, end) and acknowledged; 0 if none.

    .. versionadded:: 0.5
    """
    took = sorted(
        (op.completed - op.invoked) * 1000
        for op in history.acknowledged()
        if start <= op.invoked < end
    )
    return took[len(took) // 2] if took else 0.0


def reach_steady_state(
    workloads: Mapping[str, Workload],
    steady_acks: int,
    *,
    timeout: float,
    endpoint: Callable[[str], object],
) -> None:
    """Start every client and wait until each has ``steady_acks`` acknowledged writes.

    :param endpoint: the service endpoint of a service, named in the error.
    :raises TopologyError: when a client cannot write before any fault.
    """
    for workload in workloads.values():
        workload.start()
    for service, workload in workloads.items():
        if not workload.wait_for_acks(steady_acks, timeout=timeout):
            raise TopologyError(
                f"steady state not reached: fewer than {steady_acks} acknowledged {service} "
                f"writes through {endpoint(service)} within {timeout:.0f}s, "
                "before any fault"
            )


def await_recovered(
    workloads: Mapping[str, Workload],
    fault_at: float,
    *,
    limit: float,
    stopped: Callable[[], bool],
) -> bool:
    """Wait until every client sees its service recovered after the fault at ``fault_at``.

    :param limit: seconds after the fault to give up at.
    :param stopped: whether the drill was stopped (the fault proxy died, an abort); checked
        every half second, it ends the wait at once.
    :returns: whether all recovered, and the drill was not stopped.
    """
    for workload in workloads.values():
        # In half-second slices, so a dead fault proxy or an abort ends the wait at once.
        while not workload.wait_recovered(
            fault_at, timeout=min(limit, timing.monotonic() - fault_at + 0.5)
        ):
            if stopped() or timing.monotonic() - fault_at >= limit:
                return False
    # Healed by an abort or the proxy's death is not a recovery.
    return not stopped()
