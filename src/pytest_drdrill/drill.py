"""The drill: one fault scenario run against a topology, measured and judged.

:class:`Drill` ties the parts together for a test: the topology, the fault injector,
one measuring workload per service, the orchestrator that triggers failover, and the
record. Its :meth:`Drill.conclude` computes each service's RTO and RPO from that
service's client history alone, judges them and every business function that depends on
them against their targets, and fails the test when the drill went red.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from typing import TYPE_CHECKING, Any, Protocol

from pytest_drdrill import timing
from pytest_drdrill.durations import format_duration
from pytest_drdrill.errors import DrillInconclusive, TargetMissed, TargetWarning, TopologyError
from pytest_drdrill.measure.analysis import measure_rpo, measure_rto
from pytest_drdrill.measure.functions import lost_ages
from pytest_drdrill.measure.resources import sample_resources
from pytest_drdrill.measure.timeline import bucket_seconds, service_timeline
from pytest_drdrill.measure.workload import Workload
from pytest_drdrill.recovery.orchestrator import MonitorSettings, Orchestrator
from pytest_drdrill.results import DrillResult, Phase, ServiceResult, Verdict
from pytest_drdrill.topology.describe import describe
from pytest_drdrill.verdict import (
    judge_checks,
    judge_drill,
    judge_functions,
    judge_no_failover,
    judge_restore,
    judge_service,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from pytest_drdrill.backup.pitr import RestoreResult
    from pytest_drdrill.backup.site import BackupSite
    from pytest_drdrill.faults import FaultInjector
    from pytest_drdrill.measure.history import History
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.recovery.orchestrator import Detection
    from pytest_drdrill.results import (
        NodeResources,
        RpoResult,
        RtoResult,
        ServiceTimeline,
        Target,
    )
    from pytest_drdrill.targets import Targets
    from pytest_drdrill.timing import Anchor
    from pytest_drdrill.topology._protocol import Topology


class CheckOutcome(Protocol):
    """What a verification check returns, e.g. ``backup.verification.CheckResult``."""

    @property
    def ok(self) -> bool:
        """Whether the check passed."""
        ...

    @property
    def detail(self) -> str:
        """What was checked and found."""
        ...


class DrillNotifier(Protocol):
    """What a drill needs of the communication-plan notifier (:mod:`pytest_drdrill.notify`)."""

    def incident_started(self, at: float, *, affected_services: list[str], severity: str) -> None:
        """The first fault was injected at monotonic ``at``."""

    def detected(self, at: float, *, detail: str) -> None:
        """The orchestrator decided to fail over at ``at``."""

    def recovered(
        self, at: float, *, rto_seconds: float, root_cause: str, services: list[str]
    ) -> None:
        """The clients saw the service back at ``at``."""

    def close(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for every delivery."""

    def results(self) -> tuple[object, ...]:
        """One record per notification, sent or not."""
        ...


class Drill:
    """One drill in progress; the ``drdrill`` fixture.

    :param topology: the system under test.
    :param faults: the fault injector bound to this drill.
    :param workload: the measuring clients: one per service, or a single PostgreSQL one.
    :param record: the drill record.
    :param monitor_settings: how the reference orchestrator detects failure.
    :param failover: what the orchestrator calls for a service (the hook relay).
    :param observe: seconds to wait for recovery after a fault.
    :param on_result: receives the result (the session's report collector).
    :param region_failover: what the orchestrator calls for a region (the hook relay).
    :param targets: the targets file, to judge business functions; ``None`` to skip them.
    :param service: the service the drill is about; its RTO and RPO are the drill's own.
    :param sentinel: a Sentinel follower started and stopped with the drill, when Redis
        Sentinel decides Redis failovers.
    :param restore_hook: the ``pytest_drdrill_restore`` hook relay, for :meth:`restore`.
    :param notifier: rehearses the communication plan: told of the first fault, the
        first failover decision and the measured recovery; ``None`` to send nothing.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 one workload per service; region failover; functions.
    .. versionchanged:: 0.3 timeline, resources and notifications in the result;
       a negative control passes only when it goes red.
    """

    def __init__(
        self,
        *,
        topology: Topology,
        faults: FaultInjector,
        workload: Workload | Mapping[str, Workload],
        record: DrillRecord,
        monitor_settings: MonitorSettings,
        failover: Callable[[Detection], object] | None,
        observe: float,
        on_result: Callable[[DrillResult], None],
        region_failover: Callable[[Detection], object] | None = None,
        targets: Targets | None = None,
        service: str = "postgres",
        sentinel: object | None = None,
        notifier: DrillNotifier | None = None,
        restore_hook: Callable[..., object] | None = None,
    ) -> None:
        self.topology = topology
        self.faults = faults
        self.workloads = (
            {workload.service: workload} if isinstance(workload, Workload) else dict(workload)
        )
        self.workload = self.workloads["postgres"]
        self.record = record
        self.observe = observe
        self.targets = targets
        self.service = service
        self.sentinel = sentinel
        self.monitor = (
            Orchestrator(topology, record, monitor_settings, failover, region_failover)
            if failover is not None
            else None
        )
        self._on_result = on_result
        self.result: DrillResult | None = None
        self.notifier = notifier
        self.restore_hook = restore_hook
        self._restores = 0
        self._resources: tuple[NodeResources, ...] = ()
        self._facts: dict[str, Any] | None = None
        if notifier is not None:
            record.subscribe(_NotifierFeed(notifier, self))

    # --- running ----------------------------------------------------------------------------

    def start(self, *, steady_acks: int = 20, timeout: float = 15.0, failover: bool = True) -> None:
        """Start the workloads and the orchestrator; return once the steady state holds.

        :param steady_acks: acknowledged writes each service needs before the fault.
        :param failover: run the orchestrator (and Sentinel following); ``False`` for an
            incident whose recovery is a restore, where an automatic failover would
            recover in its place (new in 0.4).
        :raises TopologyError: when a workload cannot write before any fault.
        """
        for workload in self.workloads.values():
            workload.start()
        for service, workload in self.workloads.items():
            if not workload.wait_for_acks(steady_acks, timeout=timeout):
                raise TopologyError(
                    f"steady state not reached: fewer than {steady_acks} acknowledged {service} "
                    f"writes through {self.topology.endpoint(service)} within {timeout:.0f}s, "
                    "before any fault"
                )
        self._resources = sample_resources(self.topology.nodes())
        self._facts = describe(self.topology)
        if not failover:
            self.record.note("automatic failover off for this drill: recovery is a restore")
            return
        if self.monitor is not None:
            self.monitor.start()
        if self.sentinel is not None:
            self.sentinel.start()  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Stop the orchestrator and the workloads (idempotent)."""
        if self.sentinel is not None:
            self.sentinel.stop()  # type: ignore[attr-defined]
        if self.monitor is not None:
            self.monitor.stop()
        for workload in self.workloads.values():
            if workload.is_running:
                workload.stop()

    @contextlib.contextmanager
    def running(self, *, steady_acks: int = 20, failover: bool = True) -> Iterator[Drill]:
        """``start()`` on entry, ``stop()`` on exit, whatever happens inside."""
        self.start(steady_acks=steady_acks, failover=failover)
        try:
            yield self
        finally:
            self.stop()

    def await_recovery(self, *, timeout: float | None = None) -> bool:
        """Wait until every service's client sees it recovered after the last fault.

        :param timeout: seconds after the fault; default ``--drill-observe``.
        :returns: whether all recovered; the verdict does not depend on this value.
        """
        fault_at = self._fault_at()
        if fault_at is None:
            raise RuntimeError(
                "await_recovery() needs a fault: inject one with drdrill.faults first"
            )
        return all(
            w.wait_recovered(fault_at, timeout=timeout or self.observe)
            for w in self.workloads.values()
        )

    def _fault_at(self) -> float | None:
        faults = self.record.faults
        return faults[-1].injected_at if faults else None

    # --- concluding -------------------------------------------------------------------------

    def _measure_service(
        self, service: str, fault_at: float | None, target: Target | None, fault: str
    ) -> ServiceResult:
        workload = self.workloads[service]
        history = workload.history
        rto = measure_rto(history, fault_at) if fault_at is not None else None
        rpo: RpoResult | None = None
        ages: tuple[float, ...] = ()
        if rto is not None and rto.seconds is not None and fault_at is not None:
            try:
                present = workload.read_ids(timeout=10.0)
            except Exception as exc:  # any client library's error: report, do not guess
                self.record.note(f"could not read the {service} ledger through its endpoint: {exc}")
            else:
                rpo = measure_rpo(history, present, fault_at)
                ages = lost_ages(history, rpo.lost_ids, fault_at)
        acked = len(history.acknowledged())
        verdict, reason = judge_service(
            target,
            rto,
            rpo,
            subject=service == self.service,
            observation_seconds=self.observe,
            fault=fault,
        )
        return ServiceResult(service, rto, rpo, acked, verdict, reason, ages)

    def measure(self, *, fault_at: float | None = None) -> DrillResult:
        """Compute each service's RTO and RPO from its history and judge them; never raises.

        :param fault_at: the fault the RTO counts from; default the last one injected.
        """
        self.result = self._with_notifications(self._evaluate(fault_at))
        self._on_result(self.result)
        return self.result

    def _with_notifications(
        self, result: DrillResult, seen: Mapping[str, RtoResult | None] | None = None
    ) -> DrillResult:
        """Announce the measured recovery, wait for deliveries, keep their records.

        :param seen: each service's RTO as its client saw it; default the result's.
        """
        notifier = self.notifier
        if notifier is None:
            return result
        if seen is None:
            seen = {s.service: s.rto for s in result.services}
            rto = result.rto
        else:
            rto = seen[self.service] if self.service in seen else seen["postgres"]
        if rto is not None and rto.recovered_at is not None and rto.seconds is not None:
            affected = [name for name, r in seen.items() if r is not None and r.effect_seen]
            notifier.recovered(
                rto.recovered_at,
                rto_seconds=rto.seconds,
                root_cause=_described(result),
                services=affected or [self.service],
            )
        notifier.close(timeout=10.0)
        outage = any(r is not None and r.effect_seen for r in seen.values())
        detected = any(p.name == "detection" for p in result.phases)
        if not outage and not detected:
            # No client saw an outage and nothing was detected: there was no incident to
            # tell anyone about, so the plan's deadlines do not apply.
            return dataclasses.replace(
                result, notes=(*result.notes, "no incident seen: no notification was due")
            )
        return dataclasses.replace(result, notifications=tuple(notifier.results()))

    def _evaluate(self, fault_at: float | None) -> DrillResult:
        self.stop()
        # The drill ends here: heal what is still active so the report carries every
        # fault's healing time (teardown heals again, harmlessly, whatever is left).
        self.faults.heal()
        record = self.record
        fault_at = fault_at if fault_at is not None else self._fault_at()
        fault = next((f for f in record.faults if f.injected_at == fault_at), None)
        described = f"{fault.kind} of {fault.target}" if fault else "the fault"
        ended_at = timing.monotonic()
        services = {
            name: self._measure_service(name, fault_at, record.target, described)
            for name in self.workloads
        }
        main = services.get(self.service) or services["postgres"]
        functions = (
            judge_functions(
                self.targets, services, observation_seconds=self.observe, fault=described
            )
            if self.targets is not None and fault_at is not None
            else ()
        )
        verdict, reason = judge_drill(
            main, services.values(), functions, recovery_errors=record.recovery_errors
        )
        return record.result(
            verdict,
            reason,
            ended_at=ended_at,
            fault=fault,
            rto=main.rto,
            rpo=main.rpo,
            acknowledged_writes=main.acknowledged_writes,
            services=tuple(services.values()),
            functions=functions,
            lag=tuple(record.lag_samples),
            timeline=self._timeline(record.started_at, ended_at),
            resources=self._resources,
            topology=self._facts,
        )

    def _timeline(self, start: float, end: float) -> tuple[ServiceTimeline, ...]:
        bucket = bucket_seconds(end - start)
        return tuple(
            service_timeline(name, w.history, start=start, end=end, bucket=bucket)
            for name, w in self.workloads.items()
        )

    def measure_no_failover(self, *, min_added_ms: float) -> DrillResult:
        """Judge a fault that must NOT cause a failover, such as latency on a healthy link.

        ``PASS`` when the client saw the slowdown (its median acknowledged-write latency
        during the fault at least ``min_added_ms`` above the one before), no operation
        failed and nothing failed over; ``FAIL`` on any detection or failure (a false
        failover); ``INCONCLUSIVE`` when the client saw no slowdown. Never raises.

        .. versionadded:: 0.2
        """
        fault_at = self._fault_at()
        result = self._evaluate(fault_at)
        fault = result.fault
        history = self.workloads[self.service].history
        ended = fault.healed_at if fault is not None and fault.healed_at else result.ended_at
        before = _median_ack_ms(history, result.started_at, fault_at or result.started_at)
        during = _median_ack_ms(history, fault_at or 0.0, ended)
        verdict, reason = judge_no_failover(
            detections=[p for p in result.phases if p.name == "detection"],
            outage=[s.service for s in result.services if s.rto is not None and s.rto.effect_seen],
            before_ms=before,
            during_ms=during,
            min_added_ms=min_added_ms,
            recovery_errors=self.record.recovery_errors,
        )
        self.result = self._with_notifications(
            dataclasses.replace(result, verdict=verdict, reason=reason)
        )
        self._on_result(self.result)
        return self.result

    def conclude_no_failover(self, *, min_added_ms: float) -> DrillResult:
        """:meth:`measure_no_failover`, failing the test unless it passed.

        :raises TargetMissed: on a false failover.
        :raises DrillInconclusive: when the fault never slowed the client.
        """
        return self._raise_on(self.measure_no_failover(min_added_ms=min_added_ms))

    def restore(self, backups: BackupSite, target: float) -> RestoreResult:
        """Restore to epoch time ``target`` through the ``pytest_drdrill_restore`` hook.

        The reference implementation, or the team's own from a conftest, brings up a new
        server; judge it with :meth:`conclude_restore`.

        :raises RuntimeError: when no implementation returned a result.

        .. versionadded:: 0.3
        """
        import datetime as dt

        if self.restore_hook is None:
            raise RuntimeError("this drill has no restore hook; use the drdrill fixture")
        self._restores += 1
        workdir = backups.workdir / f"restore-{self._restores}"
        result = self.restore_hook(
            backups=backups,
            target=dt.datetime.fromtimestamp(target, tz=dt.UTC),
            workdir=workdir,
            record=self.record,
        )
        if result is None:
            raise RuntimeError(
                "no pytest_drdrill_restore implementation returned a result; the reference "
                "one is registered unless -p no:drdrill-reference-restore removed it"
            )
        return result  # type: ignore[return-value]

    def declare_incident(self, detail: str) -> None:
        """Record that people decided to recover by hand (e.g. restore), as a detection.

        For incidents no health check sees, such as a dropped table: it marks when the
        decision was taken, and the communication plan's alerts go out from there.

        .. versionadded:: 0.3
        """
        now = timing.monotonic()
        self.record.add_phase(Phase("detection", now, now, ok=True, detail=detail))

    def conclude_restore(
        self, restored: RestoreResult, *, target: float, incident: float, anchor: Anchor
    ) -> DrillResult:
        """Judge a point-in-time restore: RTO is its duration by phase, RPO what it lost.

        The restored server's ledger is read (the ``validate`` phase) and compared with the
        drill service's history (:func:`~pytest_drdrill.measure.restore.check_restore`).
        A restore that lacks writes acknowledged before its target, or holds writes
        started after it, fails whatever its timing.

        :param restored: what :func:`~pytest_drdrill.backup.pitr.restore_to_time` returned.
        :param target: the restore's target, epoch seconds.
        :param incident: when the incident happened, epoch seconds.
        :param anchor: the clock anchor the two epoch times were read with.
        :raises TargetMissed: on a failing verdict.

        .. versionadded:: 0.3
        """
        from pytest_drdrill.measure.postgres import read_present_ids
        from pytest_drdrill.measure.restore import check_restore
        from pytest_drdrill.results import RtoResult

        for phase in restored.phases:
            self.record.add_phase(phase)
        with self.record.phase("validate") as note:
            present = read_present_ids(restored.node.dsn(app="drdrill-validate"))
            note.detail = f"{len(present)} ledger rows read from {restored.node.name}"
        validated = self.record.phases[-1].ended
        self.stop()
        self.faults.heal()
        record = self.record
        ended_at = timing.monotonic()
        fault_at = self._fault_at()
        history = self.workloads[self.service].history
        check = check_restore(history, present, anchor=anchor, target=target, incident=incident)
        started = restored.phases[0].started
        rto = RtoResult(validated - started, started, validated, effect_seen=True)
        verdict, reason = judge_restore(record.target, rto, check, restored, restore_target=target)
        result = record.result(
            verdict,
            reason,
            ended_at=ended_at,
            fault=next((f for f in record.faults if f.injected_at == fault_at), None),
            rto=rto,
            rpo=check.rpo,
            acknowledged_writes=len(history.acknowledged()),
            # A restore drill judges the service it restores; the others may be down on
            # purpose (a lost region with failover off) and are not its subject.
            services=(
                ServiceResult(
                    self.service, rto, check.rpo, len(history.acknowledged()), verdict, reason
                ),
            ),
            functions=(),
            lag=tuple(record.lag_samples),
            timeline=self._timeline(record.started_at, ended_at),
            resources=self._resources,
            topology=self._facts,
        )
        # The communication plan is told what the clients saw, as in any other drill.
        seen = {
            name: measure_rto(w.history, fault_at) if fault_at is not None else None
            for name, w in self.workloads.items()
        }
        self.result = self._with_notifications(result, seen)
        self._on_result(self.result)
        return self._raise_on(self.result)

    def check(self, name: str, run: Callable[[], CheckOutcome]) -> CheckOutcome:
        """Run one verification check and record it as a phase (ok or failed, with detail).

        .. versionadded:: 0.3
        """
        started = timing.monotonic()
        outcome = run()
        self.record.add_phase(
            Phase(name, started, timing.monotonic(), ok=outcome.ok, detail=outcome.detail)
        )
        return outcome

    def conclude_checks(self) -> DrillResult:
        """Judge a verification drill: it passes when every check recorded with :meth:`check` did.

        There is no fault and no RTO: the drill shows that backups are intact, fresh and
        restorable before they are needed.

        :raises TargetMissed: when a check failed, naming each failure.

        .. versionadded:: 0.3
        """
        self.stop()
        record = self.record
        phases = tuple(sorted(record.phases, key=lambda p: p.started))
        verdict, reason = judge_checks(phases)
        self.result = record.result(
            verdict,
            reason,
            phases=phases,
            faults=(),
            resources=self._resources,
            topology=self._facts,
        )
        self._on_result(self.result)
        return self._raise_on(self.result)

    def conclude(self, *, fault_at: float | None = None) -> DrillResult:
        """Measure, judge, and fail the test if the drill is red or inconclusive.

        Over target but within the maximum acceptable value, a
        :class:`~pytest_drdrill.errors.TargetWarning` is issued and the test passes.

        :raises TargetMissed: on a failing verdict (reported as a test failure).
        :raises DrillInconclusive: when the fault never took effect.
        """
        return self._raise_on(self.measure(fault_at=fault_at))

    def _raise_on(self, result: DrillResult) -> DrillResult:
        summary = _summary(result)
        if result.negative_control:
            # A negative control's recovery is broken on purpose: red is the evidence
            # that the drill can tell, and anything else means it cannot.
            if result.verdict is Verdict.FAIL:
                return result
            __tracebackhide__ = True
            raise TargetMissed(
                f"negative control {result.scenario} did NOT go red (verdict "
                f"{result.verdict.value}: {result.reason}): its recovery is broken on purpose, "
                f"so a drill that cannot fail it cannot be trusted to fail a real broken "
                f"recovery either\n{summary}"
            )
        if result.verdict is Verdict.FAIL:
            __tracebackhide__ = True
            raise TargetMissed(f"drill {result.scenario} FAILED: {result.reason}\n{summary}")
        if result.verdict is Verdict.INCONCLUSIVE:
            __tracebackhide__ = True
            raise DrillInconclusive(
                f"drill {result.scenario} INCONCLUSIVE: {result.reason}\n{summary}"
            )
        if result.verdict is Verdict.WARN:
            warnings.warn(TargetWarning(f"drill {result.scenario}: {result.reason}"), stacklevel=3)
        return result


def _described(result: DrillResult) -> str:
    fault = result.fault
    return f"{fault.kind} of {fault.target} (drill)" if fault else "injected fault (drill)"


def _severity(target: Target | None, targets: Targets | None) -> str:
    """The incident severity the notifications carry: the tier's or function's criticality."""
    if target is None:
        return "high"
    if target.kind == "function" and targets is not None:
        function = targets.business_functions.get(target.name)
        if function is not None:
            return str(getattr(function.criticality, "value", function.criticality))
    for level, severity in (("tier_1", "critical"), ("tier_2", "high"), ("tier_3", "medium")):
        if target.name.startswith(level):
            return severity
    return "low"


class _NotifierFeed:
    """Tells the notifier of the incident's start and of the first failover decision."""

    def __init__(self, notifier: DrillNotifier, drill: Drill) -> None:
        self.notifier = notifier
        self.drill = drill
        self.started = False
        self.detected = False

    def __call__(self, kind: str, item: object) -> None:
        from pytest_drdrill.results import FaultRecord

        if kind == "fault" and isinstance(item, FaultRecord) and not self.started:
            self.started = True
            self.notifier.incident_started(
                item.injected_at,
                affected_services=[self.drill.service],
                severity=_severity(self.drill.record.target, self.drill.targets),
            )
        elif kind == "phase" and isinstance(item, Phase) and item.name == "detection":
            if self.started and not self.detected:
                self.detected = True
                self.notifier.detected(item.ended, detail=item.detail)


def _median_ack_ms(history: History, start: float, end: float) -> float:
    took = sorted(
        (op.completed - op.invoked) * 1000
        for op in history.acknowledged()
        if start <= op.invoked < end
    )
    return took[len(took) // 2] if took else 0.0


def _summary(result: DrillResult) -> str:
    lines = []
    if result.rto is not None and result.rto.seconds is not None:
        lines.append(f"  RTO measured: {format_duration(result.rto.seconds)}")
    if result.rpo is not None:
        lines.append(
            f"  RPO measured: {result.rpo.lost_writes} acknowledged writes lost, "
            f"window {format_duration(result.rpo.window_seconds)}"
        )
    for service in result.services:
        rto = service.rto.seconds if service.rto is not None else None
        lost = service.rpo.lost_writes if service.rpo is not None else "?"
        if service.rto is None or not service.rto.effect_seen:
            shown = "no outage"
        else:
            shown = "never recovered" if rto is None else f"RTO {format_duration(rto)}"
        lines.append(f"  {service.service:<9} {service.verdict.value:<12} {shown}, {lost} lost")
    for function in result.functions:
        lines.append(f"  function {function.function}: {function.verdict.value}")
    for phase in result.phases[:16]:
        state = "ok" if phase.ok else "FAILED"
        lines.append(
            f"  phase {phase.name:<10} {phase.seconds * 1000:8.1f} ms {state} {phase.detail}"
        )
    return "\n".join(lines)
