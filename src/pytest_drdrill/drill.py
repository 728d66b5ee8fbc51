"""The drill: one fault scenario run against a topology, measured and judged.

:class:`Drill` ties the parts together for a test: the topology, the fault injector,
one measuring workload per service, the orchestrator that triggers failover, and the
record. Its :meth:`Drill.conclude` computes each service's RTO and RPO from that
service's client history alone, judges them and every business function that depends on
them against their targets, and fails the test when the drill went red. The drill owns
the lifecycle and delegates the rest: what watches it while it runs to
:mod:`.drill_watches`, turning measurements into a result to :mod:`.drill_evaluation`,
restores and verification checks to :mod:`.drill_backups`. The rules they apply live in
:mod:`pytest_drdrill.verdict` (judging) and :mod:`pytest_drdrill.notify.policy` (what the
communication plan is told, and when).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from pytest_drdrill import drill_backups, drill_evaluation, timing, verdict
from pytest_drdrill.backup.verification import CheckOutcome
from pytest_drdrill.drill_watches import DrillWatches, fault_envelope
from pytest_drdrill.errors import DrillAborted, EnvelopeExceeded
from pytest_drdrill.guardrails import Guardrails
from pytest_drdrill.measure.services import (
    await_recovered,
    client_rtos,
    reach_steady_state,
    stall_notes,
)
from pytest_drdrill.measure.workload import Workload
from pytest_drdrill.notify.policy import DrillNotifier, IncidentFeed, incident_severity, settle
from pytest_drdrill.recovery.orchestrator import MonitorSettings, Orchestrator
from pytest_drdrill.results import DrillResult, Phase, RpoResult, RtoResult, Verdict

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from pytest_drdrill.backup.pitr import RestoreResult
    from pytest_drdrill.backup.site import BackupSite
    from pytest_drdrill.faults import FaultInjector
    from pytest_drdrill.faults._protocol import Fault
    from pytest_drdrill.guardrails import GuardrailWatch
    from pytest_drdrill.ha._protocol import PostgresHA
    from pytest_drdrill.measure import function_probes
    from pytest_drdrill.measure.history import History
    from pytest_drdrill.measure.proxy_watch import ProxyWatch
    from pytest_drdrill.measure.roles import RoleSampler
    from pytest_drdrill.measure.watcher import ServerWatcher
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.recovery.envelope import FailoverEnvelope
    from pytest_drdrill.recovery.orchestrator import Detection
    from pytest_drdrill.targets import Targets
    from pytest_drdrill.timing import Anchor
    from pytest_drdrill.topology._protocol import Topology

#: Seconds the drill's end waits for the HA stack to take back a member that came back
#: stale (:meth:`~pytest_drdrill.ha._protocol.PostgresHA.settle`) before its final read.
SETTLE_SECONDS = 30.0


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
    :param ha: the HA stack running PostgreSQL failover (``--drill-postgres-failover``);
        its failover envelope is checked before each fault and compared afterwards.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 one workload per service; region failover; functions.
    .. versionchanged:: 0.3 timeline, resources and notifications in the result;
       a negative control passes only when it goes red.
    .. versionchanged:: 0.5 every drill runs the split-brain watcher (:attr:`watcher`).
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
        ha: PostgresHA | None = None,
        guardrails: Guardrails | None = None,
    ) -> None:
        self.topology = topology
        self.ha = ha
        #: The envelope of each fault the HA stack's settings bound, by fault index.
        self.envelopes: list[FailoverEnvelope] = []
        faults.before_inject = self._before_fault
        self.guardrails = guardrails or Guardrails()
        #: The function probes, split-brain watcher, fault proxy watch, guardrails, kill
        #: switch and role sampler running beside the workloads.
        self.watches = DrillWatches(topology, record, faults, self.guardrails)
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
        #: Business functions measured end to end by clients outside the targets file's
        #: probes (the application tier's function clients): name -> their history.
        self.probed_functions: dict[str, History] = {}
        #: Business functions whose data loss their own clients measure: given the fault's
        #: time, each returns the acknowledged writes gone afterwards (the application
        #: tier's uploads and annotations), read when the drill is judged.
        self.function_losses: dict[str, Callable[[float], RpoResult | None]] = {}
        if notifier is not None:
            severity = incident_severity(record.target, targets)
            record.subscribe(IncidentFeed(notifier, service=service, severity=severity))

    @property
    def guard(self) -> GuardrailWatch | None:
        """Watches the guardrails and the kill switch while the drill runs."""
        return self.watches.guard

    @property
    def proxy_watch(self) -> ProxyWatch | None:
        """Watches the fault proxy while the drill runs (``None`` before start)."""
        return self.watches.proxy_watch

    @property
    def watcher(self) -> ServerWatcher | None:
        """Asks every PostgreSQL server directly what it is, from steady state to the end."""
        return self.watches.watcher

    @property
    def roles(self) -> RoleSampler | None:
        """Samples the HA stack's view of its members into the record while the drill runs."""
        return self.watches.roles

    @property
    def function_clients(self) -> list[function_probes.FunctionClient]:
        """The targets file's function probes, from steady state to the end."""
        return self.watches.function_clients

    def _before_fault(self, fault: Fault) -> None:
        """Refuse a fault after an abort; refuse one the HA stack's envelope cannot meet."""
        guard = self.watches.guard
        if guard is not None and guard.tripped.is_set():
            self._refuse("aborted")
            raise DrillAborted(
                f"{fault.kind} of {fault.target} refused: the drill was aborted "
                f"({guard.breach.reason if guard.breach else 'guardrail'})"
            )
        if self.ha is None:
            return
        found, problem = fault_envelope(self.ha, self.topology, self.record, fault)
        if found is not None:
            self.envelopes.append(found)
        if problem is not None:
            self._refuse(f"refused before any fault: {problem}")
            raise EnvelopeExceeded(f"{self.ha.name} settings cannot meet the tier: {problem}")

    def _refuse(self, reason: str) -> None:
        """End the drill before the fault, ``FAIL`` for ``reason``."""
        self._publish(self._measurements().result(Verdict.FAIL, reason, self._end(), fault=None))

    def start(self, *, steady_acks: int = 20, timeout: float = 15.0, failover: bool = True) -> None:
        """Start the workloads, the split-brain watcher and the orchestrator, in steady state.

        The watcher (:func:`~pytest_drdrill.measure.watcher.watch_directly`) runs with or
        without failover: two writable servers at once fail the drill either way.

        :param steady_acks: acknowledged writes each service needs before the fault.
        :param failover: run the orchestrator (and Sentinel following); ``False`` for an
            incident whose recovery is a restore, where an automatic failover would
            recover in its place (new in 0.4).
        :raises TopologyError: when a workload cannot write before any fault.
        """
        reach_steady_state(
            self.workloads, steady_acks, timeout=timeout, endpoint=self.topology.endpoint
        )
        self.watches.start(self.workloads, self.targets, self.ha)
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
        for name, workload in self.workloads.items():
            if workload.is_running:
                workload.stop()
                for line in stall_notes(name, workload, self.record.started_at):
                    self.record.note(line)
        self.watches.stop()

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
        # Seconds after the fault, as Workload.wait_recovered counts.
        limit = timeout or self.observe
        return await_recovered(self.workloads, fault_at, limit=limit, stopped=self.watches.stopped)

    def _fault_at(self) -> float | None:
        return drill_evaluation.last_fault_at(self.record)

    def measure(self, *, fault_at: float | None = None) -> DrillResult:
        """Compute each service's RTO and RPO from its history and judge them; never raises.

        :param fault_at: the fault the RTO counts from; default the last one injected.
        """
        return self._publish(self._evaluate(fault_at))

    def _publish(
        self, result: DrillResult, seen: Mapping[str, RtoResult | None] | None = None
    ) -> DrillResult:
        """Judge split brain, settle the notifications, keep ``result``, hand it on."""
        result = self.watches.judged(result)
        if self.notifier is not None:
            result = settle(self.notifier, result, service=self.service, seen=seen)
        self.result = result
        self._on_result(result)
        return result

    def _end(self) -> float:
        """Stop the drill and heal every fault; return the drill's end."""
        self.stop()
        # The drill ends here: heal what is still active so the report carries every
        # fault's healing time (teardown heals again, harmlessly, whatever is left).
        self.faults.heal()
        ended = timing.monotonic()
        if self.ha is not None:
            settled = self.ha.settle(self.topology, timeout=SETTLE_SECONDS)
            if settled:
                self.record.note(settled)
        return ended

    def _measurements(self) -> drill_evaluation.Measurements:
        return drill_evaluation.Measurements(
            self.record, self.workloads, self.watches.resources, self.watches.facts
        )

    def _evaluate(self, fault_at: float | None) -> DrillResult:
        ended_at = self._end()
        return drill_evaluation.evaluate(
            self._measurements(),
            ended_at=ended_at,
            fault_at=fault_at if fault_at is not None else self._fault_at(),
            service=self.service,
            observe=self.observe,
            targets=self.targets,
            probed={
                **self.probed_functions,
                **{c.function.name: c.history for c in self.function_clients},
            },
            loss_readers=self.function_losses,
            envelope=self.envelopes[-1] if self.envelopes else None,
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
        result = drill_evaluation.as_no_failover(
            self._evaluate(fault_at),
            self.workloads[self.service].history,
            fault_at,
            min_added_ms=min_added_ms,
            recovery_errors=self.record.recovery_errors,
        )
        return self._publish(result)

    def measure_tolerated(self, *, evidence: str) -> DrillResult:
        """Judge a fault that must cause no outage at all, proven in effect by ``evidence``.

        ``PASS`` when no client saw an outage and no acknowledged write was lost; else
        ``FAIL``. Never raises. See :func:`pytest_drdrill.verdict.judge_tolerated`.

        .. versionadded:: 0.6
        """
        result = drill_evaluation.as_tolerated(
            self._evaluate(self._fault_at()),
            evidence=evidence,
            recovery_errors=self.record.recovery_errors,
        )
        return self._publish(result)

    def conclude_tolerated(self, *, evidence: str) -> DrillResult:
        """:meth:`measure_tolerated`, failing the test unless it passed."""
        return verdict.enforce(self.measure_tolerated(evidence=evidence))

    def conclude_no_failover(self, *, min_added_ms: float) -> DrillResult:
        """:meth:`measure_no_failover`, failing the test unless it passed.

        :raises TargetMissed: on a false failover.
        :raises DrillInconclusive: when the fault never slowed the client.
        """
        return verdict.enforce(self.measure_no_failover(min_added_ms=min_added_ms))

    def restore(self, backups: BackupSite, target: float) -> RestoreResult:
        """Restore to epoch time ``target`` through the ``pytest_drdrill_restore`` hook.

        The reference implementation, or the team's own from a conftest, brings up a new
        server; judge it with :meth:`conclude_restore`.

        :raises RuntimeError: when no implementation returned a result.

        .. versionadded:: 0.3
        """
        if self.restore_hook is None:
            raise RuntimeError("this drill has no restore hook; use the drdrill fixture")
        self._restores += 1
        workdir = backups.workdir / f"restore-{self._restores}"
        return drill_backups.run_restore(
            self.restore_hook, backups, target, workdir=workdir, record=self.record
        )

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
        present, validated = drill_backups.validate_restore(self.record, restored)
        ended_at = self._end()
        fault_at = self._fault_at()
        result = drill_backups.restore_result(
            self._measurements(),
            restored,
            present,
            validated=validated,
            service=self.service,
            target=target,
            incident=incident,
            anchor=anchor,
            ended_at=ended_at,
            fault=drill_evaluation.fault_injected_at(self.record, fault_at),
        )
        # The communication plan is told what the clients saw, as in any other drill.
        return verdict.enforce(self._publish(result, client_rtos(self.workloads, fault_at)))

    def check(self, name: str, run: Callable[[], CheckOutcome]) -> CheckOutcome:
        """Run one verification check and record it as a phase (ok or failed, with detail).

        .. versionadded:: 0.3
        """
        return drill_backups.run_check(self.record, name, run)

    def conclude_checks(self) -> DrillResult:
        """Judge a verification drill: it passes when every check recorded with :meth:`check` did.

        There is no fault and no RTO: the drill shows that backups are intact, fresh and
        restorable before they are needed.

        :raises TargetMissed: when a check failed, naming each failure.

        .. versionadded:: 0.3
        """
        self.stop()
        self.result = self.watches.split_brain(drill_backups.checks_result(self._measurements()))
        self._on_result(self.result)
        return verdict.enforce(self.result)

    def conclude(self, *, fault_at: float | None = None) -> DrillResult:
        """Measure, judge, and fail the test if the drill is red or inconclusive.

        Over target but within the maximum acceptable value, a
        :class:`~pytest_drdrill.errors.TargetWarning` is issued and the test passes.

        :raises TargetMissed: on a failing verdict (reported as a test failure).
        :raises DrillInconclusive: when the fault never took effect.
        """
        return verdict.enforce(self.measure(fault_at=fault_at))
