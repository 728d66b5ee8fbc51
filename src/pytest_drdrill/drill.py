"""The drill: one fault scenario run against a topology, measured and judged.

:class:`Drill` ties the parts together for a test: the topology, the fault injector,
one measuring workload per service, the orchestrator that triggers failover, and the
record. Its :meth:`Drill.conclude` computes each service's RTO and RPO from that
service's client history alone, judges them and every business function that depends on
them against their targets, and fails the test when the drill went red. The drill owns
the lifecycle; the rules it applies live in :mod:`pytest_drdrill.verdict` (judging) and
:mod:`pytest_drdrill.notify.policy` (what the communication plan is told, and when).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
from typing import TYPE_CHECKING, Any

from pytest_drdrill import kill_switch, timing, verdict
from pytest_drdrill.backup.verification import CheckOutcome
from pytest_drdrill.errors import DrillAborted, EnvelopeExceeded, TopologyError
from pytest_drdrill.guardrails import Guardrails, GuardrailWatch
from pytest_drdrill.measure import function_probes
from pytest_drdrill.measure.postgres import read_present_ids
from pytest_drdrill.measure.proxy_watch import ProxyWatch
from pytest_drdrill.measure.resources import sample_resources
from pytest_drdrill.measure.restore import check_restore
from pytest_drdrill.measure.roles import RoleSampler
from pytest_drdrill.measure.services import client_rtos, measure_service, median_ack_ms, timelines
from pytest_drdrill.measure.watcher import ServerWatcher, watch_directly
from pytest_drdrill.measure.workload import Workload
from pytest_drdrill.notify.policy import DrillNotifier, IncidentFeed, incident_severity, settle
from pytest_drdrill.recovery.envelope import precheck as envelope_precheck
from pytest_drdrill.recovery.orchestrator import MonitorSettings, Orchestrator
from pytest_drdrill.results import DrillResult, Phase, RpoResult, RtoResult, Verdict
from pytest_drdrill.topology.describe import describe
from pytest_drdrill.verdict.stops import with_abort, with_proxy_death

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from pathlib import Path

    from pytest_drdrill.backup.pitr import RestoreResult
    from pytest_drdrill.backup.site import BackupSite
    from pytest_drdrill.faults import FaultInjector
    from pytest_drdrill.faults._protocol import Fault
    from pytest_drdrill.ha._protocol import PostgresHA
    from pytest_drdrill.measure.history import History
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.recovery.envelope import FailoverEnvelope
    from pytest_drdrill.recovery.orchestrator import Detection
    from pytest_drdrill.results import FaultRecord, NodeResources
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
        #: Watches the guardrails and the kill switch while the drill runs.
        self.guard: GuardrailWatch | None = None
        self._registered: Path | None = None
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
        #: Watches the fault proxy while the drill runs (``None`` before start).
        self.proxy_watch: ProxyWatch | None = None
        self._resources: tuple[NodeResources, ...] = ()
        self._facts: dict[str, Any] | None = None
        #: Asks every PostgreSQL server directly what it is, from steady state to the end.
        self.watcher: ServerWatcher | None = None
        self.function_clients: list[function_probes.FunctionClient] = []
        #: Business functions measured end to end by clients outside the targets file's
        #: probes (the application tier's function clients): name -> their history.
        self.probed_functions: dict[str, History] = {}
        #: Business functions whose data loss their own clients measure: given the fault's
        #: time, each returns the acknowledged writes gone afterwards (the application
        #: tier's uploads and annotations), read when the drill is judged.
        self.function_losses: dict[str, Callable[[float], RpoResult | None]] = {}
        #: Samples the HA stack's view of its members into the record while the drill runs.
        self.roles: RoleSampler | None = None
        if notifier is not None:
            severity = incident_severity(record.target, targets)
            record.subscribe(IncidentFeed(notifier, service=service, severity=severity))

    def _sample_roles(self, ha: PostgresHA) -> RoleSampler | None:
        """Start sampling who leads, when the HA stack has members to ask about."""
        if not ha.roles(self.topology):
            return None
        topology = self.topology
        return RoleSampler(
            self.record,
            functools.partial(ha.roles, topology),
            history=functools.partial(ha.history, topology),
            name=ha.name,
        ).start()

    def _before_fault(self, fault: Fault) -> None:
        """Refuse a fault after an abort; refuse one the HA stack's envelope cannot meet."""
        if self.guard is not None and self.guard.tripped.is_set():
            self._publish(self._result(Verdict.FAIL, "aborted", self._end(), fault=None))
            raise DrillAborted(
                f"{fault.kind} of {fault.target} refused: the drill was aborted "
                f"({self.guard.breach.reason if self.guard.breach else 'guardrail'})"
            )
        if self.ha is None:
            return
        found = self.ha.envelope(self.topology, fault)
        if found is None:
            return
        self.envelopes.append(found)
        self.record.note(f"{self.ha.name} failover envelope (live settings): {found.describe()}")
        target = self.record.target
        problem = None if target is None else envelope_precheck(found, target.rto_max)
        if problem is None:
            return
        self._publish(
            self._result(
                Verdict.FAIL, f"refused before any fault: {problem}", self._end(), fault=None
            )
        )
        raise EnvelopeExceeded(f"{self.ha.name} settings cannot meet the tier: {problem}")

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
        for workload in self.workloads.values():
            workload.start()
        for service, workload in self.workloads.items():
            if not workload.wait_for_acks(steady_acks, timeout=timeout):
                raise TopologyError(
                    f"steady state not reached: fewer than {steady_acks} acknowledged {service} "
                    f"writes through {self.topology.endpoint(service)} within {timeout:.0f}s, "
                    "before any fault"
                )
        # The team's own functions, measured end to end by the targets file's probes.
        self.function_clients = function_probes.start_clients(self.targets, self.record)
        self._resources = sample_resources(self.topology.nodes())
        self._facts = describe(self.topology)
        self.watcher = watch_directly(self.topology)
        url = getattr(getattr(self.topology, "proxy", None), "base_url", None)
        if isinstance(url, str):
            self.proxy_watch = ProxyWatch(url, on_death=self._proxy_died).start()
        started = timing.wall()
        self._registered = kill_switch.register(self.record.scenario, url)
        self.record.note(f"guardrails: {self.guardrails.describe()}; kill switch armed")
        self.guard = GuardrailWatch(
            self.guardrails,
            {service: w.history for service, w in self.workloads.items()},
            {
                f: self.record.history_of(function_probes.history_name(f))
                for f in self.guardrails.functions
            },
            on_breach=self._abort,
            kill_switch=lambda: kill_switch.thrown_since(started),
        ).start()
        if self.ha is not None:
            self.roles = self._sample_roles(self.ha)
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
        function_probes.stop_clients(self.function_clients)
        if self.watcher is not None:
            self.watcher.stop()
        if self.proxy_watch is not None:
            self.proxy_watch.stop()
        if self.guard is not None:
            self.guard.stop()
        if self._registered is not None:
            self._registered.unlink(missing_ok=True)
            self._registered = None
        if self.roles is not None:
            self.roles.stop()
            self.roles = None

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
        limit = timeout or self.observe  # seconds after the fault, as wait_recovered counts
        for workload in self.workloads.values():
            # In half-second slices, so a dead fault proxy or an abort ends the wait at once.
            while not workload.wait_recovered(
                fault_at, timeout=min(limit, timing.monotonic() - fault_at + 0.5)
            ):
                if self._stopped() or timing.monotonic() - fault_at >= limit:
                    return False
        # Healed by an abort or the proxy's death is not a recovery.
        return not self._stopped()

    def _stopped(self) -> bool:
        """Whether the fault proxy died or a guardrail or the kill switch stopped the drill."""
        dead = self.proxy_watch is not None and self.proxy_watch.dead.is_set()
        return dead or (self.guard is not None and self.guard.tripped.is_set())

    def _abort(self, reason: str) -> None:
        """A guardrail or the kill switch tripped: heal every fault now, say why."""
        self.record.note(f"aborted: {reason}; healing every fault")
        try:
            self.faults.heal()
        except Exception as exc:  # heal what can be healed; say what could not
            self.record.note(f"healing after the abort: {exc}")

    def _proxy_died(self) -> None:
        """The fault proxy stopped answering: heal every fault now, say so in the record."""
        assert self.proxy_watch is not None
        self.record.note(
            f"the fault proxy at {self.proxy_watch.base_url} stopped answering "
            f"({self.proxy_watch.error}); every fault healed at once"
        )
        try:
            self.faults.heal()
        except Exception as exc:  # the proxy's own faults cannot be healed through it
            self.record.note(f"healing after the fault proxy died: {exc}")

    def _fault_at(self) -> float | None:
        faults = self.record.faults
        return faults[-1].injected_at if faults else None

    def _fault(self, injected_at: float | None) -> FaultRecord | None:
        return next((f for f in self.record.faults if f.injected_at == injected_at), None)

    def measure(self, *, fault_at: float | None = None) -> DrillResult:
        """Compute each service's RTO and RPO from its history and judge them; never raises.

        :param fault_at: the fault the RTO counts from; default the last one injected.
        """
        return self._publish(self._evaluate(fault_at))

    def _publish(
        self, result: DrillResult, seen: Mapping[str, RtoResult | None] | None = None
    ) -> DrillResult:
        """Judge split brain, settle the notifications, keep ``result``, hand it on."""
        result = with_proxy_death(self._split_brain(result), self.proxy_watch)
        result = with_abort(result, None if self.guard is None else self.guard.breach)
        if self.notifier is not None:
            result = settle(self.notifier, result, service=self.service, seen=seen)
        self.result = result
        self._on_result(result)
        return result

    def _split_brain(self, result: DrillResult) -> DrillResult:
        """``result`` with the watcher's evidence; ``FAIL`` when two servers were writable."""
        if self.watcher is None:
            return result
        return verdict.with_split_brain(result, self.watcher.summary())

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

    def _result(
        self, judged: Verdict, reason: str, ended_at: float, **measured: Any
    ) -> DrillResult:
        record = self.record
        return record.result(
            judged,
            reason,
            ended_at=ended_at,
            lag=tuple(record.lag_samples),
            timeline=timelines(self.workloads, record.started_at, ended_at),
            resources=self._resources,
            topology=self._facts,
            **measured,
        )

    def _evaluate(self, fault_at: float | None) -> DrillResult:
        record = self.record
        ended_at = self._end()
        fault_at = fault_at if fault_at is not None else self._fault_at()
        fault = self._fault(fault_at)
        described = f"{fault.kind} of {fault.target}" if fault else "the fault"
        services = {
            name: verdict.judge_service(
                name,
                measure_service(name, workload, fault_at, note=record.note),
                record.target,
                subject=name == self.service,
                observation_seconds=self.observe,
                fault=described,
            )
            for name, workload in self.workloads.items()
        }
        main = services.get(self.service) or services["postgres"]
        functions = (
            verdict.judge_functions(
                self.targets,
                services,
                observation_seconds=self.observe,
                fault=described,
                probed={
                    **self.probed_functions,
                    **{c.function.name: c.history for c in self.function_clients},
                },
                fault_at=fault_at,
                losses=self._function_losses(fault_at),
            )  # fmt: skip
            if self.targets is not None and fault_at is not None
            else ()
        )
        judged, reason = verdict.judge_drill(
            main, services.values(), functions, recovery_errors=record.recovery_errors
        )
        if self.envelopes and main.rto is not None and main.rto.seconds is not None:
            judged, reason = verdict.judge_envelope(
                judged, reason, self.envelopes[-1], main.rto.seconds, note=record.note
            )
        return self._result(
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

    def _function_losses(self, fault_at: float | None) -> dict[str, RpoResult]:
        """Each self-measuring function's loss; one that cannot be read is noted, not guessed."""
        losses: dict[str, RpoResult] = {}
        if fault_at is None:
            return losses
        for name, read in self.function_losses.items():
            try:
                loss = read(fault_at)
            except Exception as exc:  # any client error: the table falls back, and says so
                self.record.note(
                    f"{name}: its acknowledged writes could not be checked afterwards ({exc}); "
                    "its data loss is its dependencies' instead"
                )
                continue
            if loss is not None:
                losses[name] = loss
        return losses

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
        before = median_ack_ms(history, result.started_at, fault_at or result.started_at)
        during = median_ack_ms(history, fault_at or 0.0, ended)
        judged, reason = verdict.judge_no_failover(
            detections=[p for p in result.phases if p.name == "detection"],
            outage=[s.service for s in result.services if s.rto is not None and s.rto.effect_seen],
            before_ms=before,
            during_ms=during,
            min_added_ms=min_added_ms,
            recovery_errors=self.record.recovery_errors,
        )
        return self._publish(dataclasses.replace(result, verdict=judged, reason=reason))

    def measure_tolerated(self, *, evidence: str) -> DrillResult:
        """Judge a fault that must cause no outage at all, proven in effect by ``evidence``.

        ``PASS`` when no client saw an outage and no acknowledged write was lost; else
        ``FAIL``. Never raises. See :func:`pytest_drdrill.verdict.judge_tolerated`.

        .. versionadded:: 0.6
        """
        result = self._evaluate(self._fault_at())
        judged, reason = verdict.judge_tolerated(
            outage=[s.service for s in result.services if s.rto is not None and s.rto.effect_seen],
            lost_writes=sum(s.rpo.lost_writes for s in result.services if s.rpo is not None),
            evidence=evidence,
            recovery_errors=self.record.recovery_errors,
        )
        return self._publish(dataclasses.replace(result, verdict=judged, reason=reason))

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
        for phase in restored.phases:
            self.record.add_phase(phase)
        with self.record.phase("validate") as note:
            present = read_present_ids(restored.node.dsn(app="drdrill-validate"))
            note.detail = f"{len(present)} ledger rows read from {restored.node.name}"
        validated = self.record.phases[-1].ended
        record = self.record
        ended_at = self._end()
        fault_at = self._fault_at()
        history = self.workloads[self.service].history
        check = check_restore(history, present, anchor=anchor, target=target, incident=incident)
        started = restored.phases[0].started
        rto = RtoResult(validated - started, started, validated, effect_seen=True)
        judged = verdict.judge_restore(
            self.service,
            record.target,
            rto,
            check,
            restored,
            restore_target=target,
            acknowledged_writes=len(history.acknowledged()),
        )
        result = self._result(
            judged.verdict,
            judged.reason,
            ended_at,
            fault=self._fault(fault_at),
            rto=rto,
            rpo=check.rpo,
            acknowledged_writes=judged.acknowledged_writes,
            # A restore drill judges the service it restores; the others may be down on
            # purpose (a lost region with failover off) and are not its subject.
            services=(judged,),
            functions=(),
        )
        # The communication plan is told what the clients saw, as in any other drill.
        return verdict.enforce(self._publish(result, client_rtos(self.workloads, fault_at)))

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
        judged, reason = verdict.judge_checks(phases)
        self.result = self._split_brain(
            record.result(
                judged,
                reason,
                phases=phases,
                faults=(),
                resources=self._resources,
                topology=self._facts,
            )
        )
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
