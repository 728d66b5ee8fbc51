"""One fault schedule against one fresh topology: the faults, the waits, the final judgement.

A :class:`ScheduleExample` plays one drawn schedule. It starts a fresh two-region
topology (1.3 to 1.9 s on the local backend: cheaper, and more honest, than proving that
a reused one is back to a known state after crashes and promotions), the measuring
client, the reference monitor with the failover hooks, and the server watcher. Each step
resolves its role to a server, injects a fault through the drill's fault injector, heals,
or waits; at the end everything is healed and the invariants of
:mod:`pytest_drdrill.schedules.invariants` are judged.

Steps outside the fault model (:mod:`pytest_drdrill.schedules.faultmodel`) are logged
as skipped.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import psycopg

from pytest_drdrill import assembly, timing
from pytest_drdrill.errors import FaultError, TopologyError
from pytest_drdrill.faults import FaultInjector, Partition
from pytest_drdrill.measure.analysis import measure_rto
from pytest_drdrill.measure.split_brain import split_brains, writable_spans
from pytest_drdrill.measure.watcher import ServerWatcher
from pytest_drdrill.record import DrillRecord
from pytest_drdrill.schedules.exampledata import ExampleContext, ExampleOutcome
from pytest_drdrill.schedules.faultmodel import refusal
from pytest_drdrill.schedules.invariants import (
    Finding,
    ScheduleFailed,
    handovers,
    lost_writes,
    recovery_after_heal,
    split_brain_findings,
)
from pytest_drdrill.schedules.steplog import StepLog

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_drdrill.faults import Fault
    from pytest_drdrill.measure.workload import Workload
    from pytest_drdrill.recovery.orchestrator import Orchestrator
    from pytest_drdrill.schedules.invariants import Handover

#: :class:`ExampleContext` and :class:`ExampleOutcome` live in :mod:`~.exampledata`;
#: they are re-exported here, where callers have always imported them.
__all__ = ["ExampleContext", "ExampleOutcome", "ScheduleExample"]

logger = logging.getLogger(__name__)


class ScheduleExample:
    """One schedule's system under test; implements the state machine's subject.

    :raises TopologyError: when the topology or the steady state cannot be reached (what
        was started is removed first).

    .. versionadded:: 0.4
    """

    def __init__(self, context: ExampleContext) -> None:
        context.examples += 1
        self.number = context.examples
        self.context = context
        self.record = DrillRecord(
            f"{context.name} schedule {self.number}",
            scenario=context.scenario,
            cadence=context.cadence,
            target=context.target,
            backend=context.backend,
        )
        self.topology = context.build(context.workdir / f"schedule-{self.number}")
        self.started = timing.monotonic()
        self.log = StepLog(self.started)
        #: Active faults' keys by node, for the fault model.
        self.impaired: dict[str, list[str]] = {}
        #: What each step did, in words.
        self.steps: list[str] = []
        self._steps_at: list[tuple[float, str]] = []
        #: The faults injected since the last heal, in words.
        self.active: list[str] = []
        #: Proxies carrying a latency toxic now (one toxic of a kind per proxy).
        self.slowed: set[str] = set()
        #: When the last fault was injected or healed.
        self.changed_at: float | None = None
        self.outcome: ExampleOutcome | None = None
        self._closed = False
        self._monitor: Orchestrator | None = None
        self._watcher: ServerWatcher | None = None
        self._workload: Workload | None = None
        self.faults = FaultInjector(self.record, context.hook, self.topology)
        try:
            self._start()
        except BaseException:
            self._close()
            raise

    def _start(self) -> None:
        topo, record, hook = self.topology, self.record, self.context.hook
        self._watcher = ServerWatcher(topo.pg_nodes).start()
        self._workload = assembly.workload(topo, record, "postgres")
        self._workload.start()
        if not self._workload.wait_for_acks(self.context.steady_acks, timeout=15):
            raise TopologyError(
                f"steady state not reached: fewer than {self.context.steady_acks} writes "
                f"acknowledged through {topo.pg_endpoint} within 15s, before any fault"
            )

        self._monitor = assembly.orchestrator(hook, topo, record, self.context.monitor).start()
        self.log.add(f"steady: {self._writable_now()} writable; writes acknowledged")

    @property
    def watcher(self) -> ServerWatcher:
        """The server watcher (started in the constructor)."""
        assert self._watcher is not None
        return self._watcher

    @property
    def workload(self) -> Workload:
        """The measuring client (started in the constructor)."""
        assert self._workload is not None
        return self._workload

    def _writable_now(self) -> str:
        writable = sorted(n for n, a in self.watcher.latest().items() if a.writable)
        return ", ".join(writable) or "no server"

    # --- the fault model --------------------------------------------------------------------

    def _refusal(self, node: str, kind: str) -> str | None:
        """Why the fault model forbids ``kind`` on ``node`` now, or ``None``."""
        return refusal(
            node,
            kind,
            running={name: n.is_running() for name, n in self.topology.pg_nodes.items()},
            latest=self.watcher.latest(),
            impaired={name for name, faults in self.impaired.items() if faults},
        )

    def _resolve(self, target: str) -> str | None:
        """The server a role names now: where the endpoint sends clients, or a standby."""
        if target == "primary":
            return self.topology.primary.name
        standbys = [n.name for n in self.topology.standbys() if n.is_running()]
        index = 0 if target == "standby" else 1
        return standbys[index] if len(standbys) > index else None

    def _inject(
        self,
        target: str,
        kind: str,
        detail: str,
        faults: Callable[[str], list[Fault]],
    ) -> None:
        at = timing.monotonic()
        node = self._resolve(target)
        if node is None:
            self._step(f"{kind} {target}{detail}: skipped (there is no {target} now)", at)
            return
        what = f"{kind} {node} ({target}){detail}"
        key = f"{kind} {node}{detail}"
        refusal = self._refusal(node, kind)
        if refusal is None and key in self.impaired.get(node, []):
            refusal = "already active"
        if refusal is not None:
            self._step(f"{what}: skipped, outside the fault model ({refusal})", at)
            return
        try:
            built = faults(node)
        except FaultError as exc:
            self._step(f"{what}: skipped ({exc})", at)
            return
        for fault in built:
            self.faults.inject(fault)
        self.impaired.setdefault(node, []).append(key)
        self.active.append(what)
        self.changed_at = at
        self._step(what, at)

    def _step(self, text: str, at: float) -> None:
        self.steps.append(text)
        self._steps_at.append((at, text))
        self.log.add(text, at=at)

    # --- steps (the subject protocol) -------------------------------------------------------

    def crash(self, target: str) -> None:
        """Kill the ``target`` server and all its processes; it stays down."""
        from pytest_drdrill.faults import Crash

        self._inject(target, "crash", "", lambda node: [Crash(self.topology.pg_nodes[node])])

    def freeze(self, target: str) -> None:
        """SIGSTOP the ``target`` server until the next heal."""
        from pytest_drdrill.faults import Freeze

        self._inject(target, "freeze", "", lambda node: [Freeze(self.topology.pg_nodes[node])])

    def partition(self, target: str, side: str) -> None:
        """Cut the ``target`` server off from the clients, or from its replication peers."""

        def partition(node: str) -> list[Fault]:
            others = [n for n in self.topology.pg_nodes if n != node]
            groups = (["clients"], [node]) if side == "clients" else ([node], others)
            return [Partition(self.topology, *groups)]

        self._inject(target, "partition", f" from {side}", partition)

    def latency(self, target: str, ms: int, side: str) -> None:
        """Add ``ms`` of latency on the server's client path, or on its replication paths."""
        from pytest_drdrill.faults import network

        def slow(node: str) -> list[Fault]:
            if side == "clients":
                paths = [self.topology.client_paths[node]]
            else:
                paths = [
                    link
                    for link in self.topology.replication_links.values()
                    if node in (link.source, link.target.name)
                ]
            free = [link for link in paths if link.proxy_name not in self.slowed]
            if not free:
                raise FaultError(f"every {side} path of {node} is already slowed or none exists")
            self.slowed.update(link.proxy_name for link in free)
            return [network.latency(link, ms) for link in free]

        self._inject(target, "latency", f" +{ms}ms on its {side} paths", slow)

    def heal(self) -> None:
        """Heal every active fault; crashed servers stay down."""
        at = self.changed_at = timing.monotonic()
        self._step(f"heal: {self._heal()}", at)

    def _heal(self) -> str:
        healed = self.active or ["nothing active"]
        self.faults.heal()
        self.impaired.clear()
        self.active = []
        self.slowed.clear()
        down = sorted(n for n, node in self.topology.pg_nodes.items() if not node.is_running())
        return ", ".join(healed) + (f" ({', '.join(down)} down for good)" if down else "")

    def settle(self) -> None:
        """Wait until the client's writes succeed again, at most ``settle_timeout``."""
        last = self.changed_at
        if last is None:
            self._step("settle: nothing injected yet", timing.monotonic())
            return
        timeout = self.context.settle_timeout
        back = self.workload.wait_recovered(last, timeout=timeout, stable=0.3)
        seen = measure_rto(self.record.history, last)
        if not back:
            state = f"writes still failing {timeout:.0f}s after the last change"
        elif not seen.effect_seen or seen.seconds is None:
            state = "no outage seen by the client"
        else:
            state = f"writes succeed again {seen.seconds:.2f}s after the last change"
        self._step(f"settle: {state}; writable: {self._writable_now()}", timing.monotonic())

    def abandon(self) -> None:
        """Remove the topology without judging (a step failed; its error is reported)."""
        self._close()

    def finish(self) -> None:
        """Heal, wait for recovery, judge every invariant, remove the topology."""
        if self._closed:
            return
        try:
            findings = self._final_checks()
        finally:
            self._close()
        if findings:
            self._fail(findings)

    # --- the end ----------------------------------------------------------------------------

    def _final_checks(self) -> list[Finding]:
        healed_at = timing.monotonic()
        self.log.add(f"final heal: {self._heal()}", at=healed_at)
        _wait_writes(self.workload, healed_at, timeout=self.context.observe, stable=0.5)
        # A thawed or reconnected old primary must be seen for a while, not for one poll.
        self.watcher.wait_polls(healed_at, 5, timeout=5.0)
        if self._monitor is not None:
            self._monitor.stop()
        self.workload.stop()
        serving = self._serving()
        findings = split_brain_findings(self.watcher.answers(), self.started)
        self.watcher.stop()
        if self.watcher.error is not None:
            findings.append(
                Finding(
                    "split brain",
                    f"cannot be ruled out: the server watcher failed ({self.watcher.error})",
                )
            )
        answers = self.watcher.answers()
        handed = handovers(answers, self.started)
        recovery = recovery_after_heal(
            self.record.history, healed_at, self.context.target, observe=self.context.observe
        )
        if recovery.finding is not None:
            findings.append(recovery.finding)
        lost: int | None = None
        try:
            present = self.workload.read_ids(timeout=5.0)
        except Exception as exc:  # any client library error: report what could not be read
            if recovery.finding is None:
                findings.append(
                    Finding(
                        "lost writes", f"the ledger could not be read through the endpoint: {exc}"
                    )
                )
        else:
            acknowledged = {op.id for op in self.record.history.acknowledged()}
            lost = len(acknowledged - present)
            finding = lost_writes(self.record.history, present, handed, cap=self._cap())
            if finding is not None:
                findings.append(finding)
        back = "never" if recovery.seconds is None else f"{recovery.seconds:.2f}s"
        chain = "; ".join(
            f"{h.old} -> {h.new} {'synchronous' if h.synchronous else 'ASYNCHRONOUS'}"
            for h in handed
        )
        self.log.add(
            f"end: writes back {back} after the last heal; endpoint served by {serving}; "
            f"handovers: {chain or 'none'}; {'?' if lost is None else lost} acknowledged "
            "write(s) missing" + (f"; {recovery.warning}" if recovery.warning else "")
        )
        for error in self.record.recovery_errors:
            self.log.add(f"[recovery] reported: {error}")
        self._record_outcome(
            ok=not findings,
            recovery_seconds=recovery.seconds,
            lost=lost,
            handed=tuple(handed),
            warning=recovery.warning,
        )
        return findings

    def _cap(self) -> int:
        target = self.context.target
        return target.max_lost_writes if target is not None and target.max_lost_writes else 0

    def _serving(self) -> str:
        """Which server answers through the endpoint, asked of the server itself."""
        ports = {node.port: name for name, node in self.topology.pg_nodes.items()}
        try:
            with psycopg.connect(
                self.topology.pg_endpoint.dsn(app="drdrill-watcher"),
                autocommit=True,
                connect_timeout=2,
            ) as conn:
                row = conn.execute("SELECT current_setting('port')::int").fetchone()
        except psycopg.Error as exc:
            return f"nobody ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        port = int(row[0]) if row else -1
        return ports.get(port, f"an unknown server on port {port}")

    def _record_outcome(
        self,
        *,
        ok: bool,
        recovery_seconds: float | None = None,
        lost: int | None = None,
        handed: tuple[Handover, ...] = (),
        warning: str = "",
    ) -> None:
        if self.outcome is not None:
            return
        spans = writable_spans(self.watcher.answers())
        self.outcome = ExampleOutcome(
            number=self.number,
            started=self.started,
            ended=timing.monotonic(),
            ok=ok,
            steps=tuple(self.steps),
            lines=tuple(self.log.lines(spans, split_brains(spans), self.record.phases)),
            faults=self.record.faults,
            recovery_seconds=recovery_seconds,
            lost=lost,
            handovers=handed,
            warning=warning,
        )
        self.context.on_outcome(self.outcome)

    def _fail(self, findings: list[Finding]) -> None:
        self._record_outcome(ok=False)
        assert self.outcome is not None
        brains = split_brains(writable_spans(self.watcher.answers()))
        during = "the end of the schedule (final heal and checks)"
        if brains:
            first = min(b.start for b in brains)
            before = [text for at, text in self._steps_at if at <= first]
            if before:
                during = f"step {len(before)} ({before[-1]})"
        raise ScheduleFailed(findings, self.outcome.lines, during=during)

    def _close(self) -> None:
        """Stop everything this example started and remove the topology; never raises."""
        if self._closed:
            return
        self._closed = True
        steps: list[tuple[str, Callable[[], None]]] = []
        if self._monitor is not None:
            steps.append(("monitor", self._monitor.stop))
        if self._workload is not None:
            steps.append(("workload", self._workload.stop))
        steps += [("faults", self.faults.heal)]
        if self._watcher is not None:
            steps.append(("watcher", self._watcher.stop))
        steps.append(("topology", self.topology.close))
        for what, step in steps:
            try:
                step()
            except Exception:  # cleanup goes on; the example's own failure is what matters
                logger.exception("stopping the schedule's %s failed", what)


def _wait_writes(workload: Workload, after: float, *, timeout: float, stable: float) -> None:
    """Wait until writes succeed and keep succeeding for ``stable`` seconds after ``after``.

    Unlike :meth:`Workload.wait_recovered`, a fault with no visible effect ends the wait
    after ``stable`` seconds too: after the final heal there is nothing to give time to.
    """
    while timing.monotonic() - after < timeout:
        seen = measure_rto(workload.history, after)
        since = seen.recovered_at if seen.effect_seen else after
        if since is not None and timing.monotonic() - since >= stable:
            return
        timing.sleep(0.01)
