"""The drill: one fault scenario run against a topology, measured and judged.

:class:`Drill` ties the parts together for a test: the topology, the fault injector,
the measuring workload, the monitor that triggers failover, and the record. Its
:meth:`Drill.conclude` computes RTO and RPO from the workload's history alone, judges
them against the target, and fails the test when the drill went red.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import TYPE_CHECKING

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.durations import format_duration
from pytest_drdrill.errors import DrillInconclusive, TargetMissed, TargetWarning, TopologyError
from pytest_drdrill.measure.analysis import measure_rpo, measure_rto
from pytest_drdrill.measure.workload import Workload, read_present_ids
from pytest_drdrill.recovery.monitor import Monitor, MonitorSettings
from pytest_drdrill.results import DrillResult, Verdict
from pytest_drdrill.verdict import judge

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pytest_drdrill.faults import FaultInjector
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.results import RpoResult
    from pytest_drdrill.topology._protocol import Topology


class Drill:
    """One drill in progress; the ``drdrill`` fixture.

    :param topology: the system under test.
    :param faults: the fault injector bound to this drill.
    :param workload: the measuring client.
    :param record: the drill record.
    :param monitor_settings: how the reference monitor detects failure.
    :param failover: what the monitor calls on detection (the hook relay).
    :param observe: seconds to wait for recovery after a fault.
    :param on_result: receives the result (the session's report collector).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        *,
        topology: Topology,
        faults: FaultInjector,
        workload: Workload,
        record: DrillRecord,
        monitor_settings: MonitorSettings,
        failover: Callable[[object], object] | None,
        observe: float,
        on_result: Callable[[DrillResult], None],
    ) -> None:
        self.topology = topology
        self.faults = faults
        self.workload = workload
        self.record = record
        self.observe = observe
        self.monitor = (
            Monitor(topology, record, monitor_settings, failover) if failover is not None else None
        )
        self._on_result = on_result
        self.result: DrillResult | None = None

    # --- running ----------------------------------------------------------------------------

    def start(self, *, steady_acks: int = 20, timeout: float = 15.0) -> None:
        """Start the workload and the monitor; return once the steady state holds.

        :param steady_acks: acknowledged writes required before the fault.
        :raises TopologyError: when the workload cannot write before any fault.
        """
        self.workload.start()
        if not self.workload.wait_for_acks(steady_acks, timeout=timeout):
            raise TopologyError(
                f"steady state not reached: fewer than {steady_acks} acknowledged writes "
                f"through {self.topology.pg_endpoint} within {timeout:.0f}s, before any fault"
            )
        if self.monitor is not None:
            self.monitor.start()

    def stop(self) -> None:
        """Stop the monitor and the workload (idempotent)."""
        if self.monitor is not None:
            self.monitor.stop()
        if self.workload.is_running:
            self.workload.stop()

    @contextlib.contextmanager
    def running(self, *, steady_acks: int = 20) -> Iterator[Drill]:
        """``start()`` on entry, ``stop()`` on exit, whatever happens inside."""
        self.start(steady_acks=steady_acks)
        try:
            yield self
        finally:
            self.stop()

    def await_recovery(self, *, timeout: float | None = None) -> bool:
        """Wait until the client sees the service recovered after the last fault.

        :param timeout: seconds after the fault; default ``--drill-observe``.
        :returns: whether it recovered; the verdict does not depend on this value.
        """
        fault_at = self._fault_at()
        if fault_at is None:
            raise RuntimeError(
                "await_recovery() needs a fault: inject one with drdrill.faults first"
            )
        return self.workload.wait_recovered(fault_at, timeout=timeout or self.observe)

    def _fault_at(self) -> float | None:
        faults = self.record.faults
        return faults[-1].injected_at if faults else None

    # --- concluding -------------------------------------------------------------------------

    def measure(self, *, fault_at: float | None = None) -> DrillResult:
        """Compute RTO and RPO from the history and judge them; does not raise on red.

        :param fault_at: the fault the RTO counts from; default the last one injected.
        """
        self.stop()
        # The drill ends here: heal what is still active so the report carries every
        # fault's healing time (teardown heals again, harmlessly, whatever is left).
        self.faults.heal()
        record = self.record
        fault_at = fault_at if fault_at is not None else self._fault_at()
        fault = next((f for f in record.faults if f.injected_at == fault_at), None)
        rto = measure_rto(record.history, fault_at) if fault_at is not None else None
        rpo: RpoResult | None = None
        if rto is not None and rto.seconds is not None and fault_at is not None:
            try:
                present = read_present_ids(self.topology.pg_endpoint.dsn(app="drdrill-verify"))
            except psycopg.Error as exc:
                record.note(f"could not read the ledger through the endpoint: {exc}")
            else:
                rpo = measure_rpo(record.history, present, fault_at)
        target = record.target
        if target is None:
            verdict, reason = (
                Verdict.INCONCLUSIVE,
                "no target: name a tier or function in the drdrill marker",
            )
        else:
            verdict, reason = judge(
                target,
                rto,
                rpo,
                observation_seconds=self.observe,
                fault=f"{fault.kind} of {fault.target}" if fault else "the fault",
            )
        if record.recovery_errors:
            reason += "; recovery reported: " + "; ".join(record.recovery_errors)
        self.result = DrillResult(
            name=record.name,
            scenario=record.scenario,
            backend=record.backend,
            cadence=record.cadence,
            fault=fault,
            phases=tuple(sorted(record.phases, key=lambda p: p.started)),
            verdict=verdict,
            reason=reason,
            rto=rto,
            rpo=rpo,
            target=target,
            acknowledged_writes=len(record.history.acknowledged()),
            negative_control=record.negative_control,
            started_at=record.started_at,
            ended_at=timing.monotonic(),
            faults=record.faults,
        )
        self._on_result(self.result)
        return self.result

    def conclude(self, *, fault_at: float | None = None) -> DrillResult:
        """Measure, judge, and fail the test if the drill is red or inconclusive.

        Over target but within the maximum acceptable value, a
        :class:`~pytest_drdrill.errors.TargetWarning` is issued and the test passes.

        :raises TargetMissed: on a failing verdict (reported as a test failure).
        :raises DrillInconclusive: when the fault never took effect.
        """
        result = self.measure(fault_at=fault_at)
        summary = _summary(result)
        if result.verdict is Verdict.FAIL:
            __tracebackhide__ = True
            raise TargetMissed(f"drill {result.scenario} FAILED: {result.reason}\n{summary}")
        if result.verdict is Verdict.INCONCLUSIVE:
            __tracebackhide__ = True
            raise DrillInconclusive(
                f"drill {result.scenario} INCONCLUSIVE: {result.reason}\n{summary}"
            )
        if result.verdict is Verdict.WARN:
            warnings.warn(TargetWarning(f"drill {result.scenario}: {result.reason}"), stacklevel=2)
        return result


def _summary(result: DrillResult) -> str:
    lines = []
    if result.rto is not None and result.rto.seconds is not None:
        lines.append(f"  RTO measured: {format_duration(result.rto.seconds)}")
    if result.rpo is not None:
        lines.append(
            f"  RPO measured: {result.rpo.lost_writes} acknowledged writes lost, "
            f"window {format_duration(result.rpo.window_seconds)}"
        )
    for phase in result.phases[:12]:
        state = "ok" if phase.ok else "FAILED"
        lines.append(
            f"  phase {phase.name:<10} {phase.seconds * 1000:8.1f} ms {state} {phase.detail}"
        )
    return "\n".join(lines)
