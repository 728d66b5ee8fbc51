"""What watches a drill while it runs, beside its measuring clients, and what stops it early.

:class:`DrillWatches` is started in steady state and stopped with the drill
(:meth:`pytest_drdrill.drill.Drill.start` and :meth:`~pytest_drdrill.drill.Drill.stop`):
the team's function probes, the split-brain watcher, the fault proxy's watch, the
guardrails and the kill switch, and the HA stack's role sampler. A tripped guardrail, the
kill switch or the fault proxy's death heals every fault at once and says why in the
record; :meth:`DrillWatches.judged` carries what they saw into the drill's result.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any

from pytest_drdrill import kill_switch, timing, verdict
from pytest_drdrill.guardrails import GuardrailWatch
from pytest_drdrill.measure import function_probes
from pytest_drdrill.measure.proxy_watch import ProxyWatch
from pytest_drdrill.measure.resources import sample_resources
from pytest_drdrill.measure.roles import RoleSampler
from pytest_drdrill.measure.watcher import watch_directly
from pytest_drdrill.recovery.envelope import precheck as envelope_precheck
from pytest_drdrill.topology.describe import describe
from pytest_drdrill.verdict.stops import with_abort, with_proxy_death

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from pytest_drdrill.faults import FaultInjector
    from pytest_drdrill.faults._protocol import Fault
    from pytest_drdrill.guardrails import Guardrails
    from pytest_drdrill.ha._protocol import PostgresHA
    from pytest_drdrill.measure.watcher import ServerWatcher
    from pytest_drdrill.measure.workload import Workload
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.recovery.envelope import FailoverEnvelope
    from pytest_drdrill.results import DrillResult, NodeResources
    from pytest_drdrill.targets import Targets
    from pytest_drdrill.topology._protocol import Topology


@dataclasses.dataclass(eq=False)
class DrillWatches:
    """The watches of one drill; each is ``None`` (or empty) until :meth:`start`.

    :param topology: the system under test.
    :param record: the drill record, told of every abort.
    :param faults: the fault injector, healed on an abort or the fault proxy's death.
    :param guardrails: the limits the drill must stay within.
    """

    topology: Topology
    record: DrillRecord
    faults: FaultInjector
    guardrails: Guardrails
    #: The targets file's function probes.
    function_clients: list[function_probes.FunctionClient] = dataclasses.field(
        default_factory=list, init=False
    )
    #: What the topology's servers used in the steady state.
    resources: tuple[NodeResources, ...] = dataclasses.field(default=(), init=False)
    #: The topology as read before any fault.
    facts: dict[str, Any] | None = dataclasses.field(default=None, init=False)
    #: Asks every PostgreSQL server directly what it is, from steady state to the end.
    watcher: ServerWatcher | None = dataclasses.field(default=None, init=False)
    #: Watches the fault proxy.
    proxy_watch: ProxyWatch | None = dataclasses.field(default=None, init=False)
    #: Watches the guardrails and the kill switch.
    guard: GuardrailWatch | None = dataclasses.field(default=None, init=False)
    #: Samples the HA stack's view of its members into the record.
    roles: RoleSampler | None = dataclasses.field(default=None, init=False)
    _registered: Path | None = dataclasses.field(default=None, init=False)

    def start(
        self, workloads: Mapping[str, Workload], targets: Targets | None, ha: PostgresHA | None
    ) -> None:
        """Start every watch, once the workloads are in steady state."""
        record = self.record
        # The team's own functions, measured end to end by the targets file's probes.
        self.function_clients = function_probes.start_clients(targets, record)
        self.resources = sample_resources(self.topology.nodes())
        self.facts = describe(self.topology)
        self.watcher = watch_directly(self.topology)
        url = getattr(getattr(self.topology, "proxy", None), "base_url", None)
        if isinstance(url, str):
            self.proxy_watch = ProxyWatch(url, on_death=self._proxy_died).start()
        started = timing.wall()
        self._registered = kill_switch.register(record.scenario, url)
        record.note(f"guardrails: {self.guardrails.describe()}; kill switch armed")
        self.guard = GuardrailWatch(
            self.guardrails,
            {service: w.history for service, w in workloads.items()},
            {
                f: record.history_of(function_probes.history_name(f))
                for f in self.guardrails.functions
            },
            on_breach=self._abort,
            kill_switch=lambda: kill_switch.thrown_since(started),
        ).start()
        if ha is not None:
            self.roles = self._sample_roles(ha)

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

    def stop(self) -> None:
        """Stop every watch (idempotent)."""
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

    def stopped(self) -> bool:
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

    def split_brain(self, result: DrillResult) -> DrillResult:
        """``result`` with the watcher's evidence; ``FAIL`` when two servers were writable."""
        if self.watcher is None:
            return result
        return verdict.with_split_brain(result, self.watcher.summary())

    def judged(self, result: DrillResult) -> DrillResult:
        """``result`` with split brain, the fault proxy's death and any abort judged in."""
        result = with_proxy_death(self.split_brain(result), self.proxy_watch)
        return with_abort(result, None if self.guard is None else self.guard.breach)


def fault_envelope(
    ha: PostgresHA, topology: Topology, record: DrillRecord, fault: Fault
) -> tuple[FailoverEnvelope | None, str | None]:
    """The HA stack's failover envelope for ``fault``, and why it cannot meet the tier.

    The envelope, read from the stack's live settings, is noted in the record.

    :returns: the envelope (``None`` when the stack's settings do not bound this fault)
        and the problem (``None`` when the envelope fits the drill's target, or there is
        no target).
    """
    found = ha.envelope(topology, fault)
    if found is None:
        return None, None
    record.note(f"{ha.name} failover envelope (live settings): {found.describe()}")
    target = record.target
    return found, None if target is None else envelope_precheck(found, target.rto_max)
