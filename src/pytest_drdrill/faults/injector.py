"""The fault injector: records every fault and heals all of them at teardown."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.errors import FaultError
from pytest_drdrill.faults.link import LinkCut
from pytest_drdrill.faults.process import Crash, Freeze, Stop

if TYPE_CHECKING:
    import pluggy

    from pytest_drdrill.faults._protocol import Fault
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.topology._protocol import PostgresNode
    from pytest_drdrill.topology.links import Link

logger = logging.getLogger(__name__)


class FaultInjector:
    """Injects faults into a drill's topology and guarantees they are healed.

    :param record: the drill record that receives injection and healing times.
    :param hook: the plugin manager's hook relay, for the observer hooks.

    .. versionadded:: 0.1
    """

    def __init__(self, record: DrillRecord, hook: pluggy.HookRelay | None = None) -> None:
        self.record = record
        self.hook = hook
        self._active: list[tuple[int, Fault]] = []

    def inject(self, fault: Fault) -> float:
        """Inject ``fault`` and record it.

        :returns: the monotonic injection stamp (taken just before injecting, so the
            measured RTO includes the injection itself).
        :raises FaultError: when injection fails; whatever part took effect is healed.
        """
        at = timing.monotonic()
        index = self.record.fault_injected(fault.kind, fault.target, at)
        self._active.append((index, fault))
        try:
            fault.inject()
        except Exception as exc:
            self._heal_one(index, fault)
            raise FaultError(f"could not inject {fault.kind} on {fault.target}: {exc}") from exc
        if self.hook is not None:
            self.hook.pytest_drdrill_fault_injected(
                record=self.record, fault=self.record.faults[index]
            )
        return at

    def crash(self, node: PostgresNode) -> float:
        """Kill ``node`` and all its processes; returns the injection stamp."""
        return self.inject(Crash(node))

    def freeze(self, node: PostgresNode) -> float:
        """SIGSTOP ``node``; healed with SIGCONT; returns the injection stamp."""
        return self.inject(Freeze(node))

    def stop(self, node: PostgresNode) -> float:
        """Shut ``node`` down cleanly; returns the injection stamp."""
        return self.inject(Stop(node))

    def cut(self, link: Link) -> float:
        """Cut a proxied link; returns the injection stamp."""
        return self.inject(LinkCut(link))

    def heal(self, fault_or_target: Fault | str | None = None) -> None:
        """Heal active faults: one (by object or target name) or, with no argument, all."""
        for index, fault in list(self._active):
            if fault_or_target is None or fault_or_target in (fault, fault.target):
                self._heal_one(index, fault)

    def _heal_one(self, index: int, fault: Fault) -> None:
        try:
            fault.heal()
        except Exception:  # teardown heals everything it can; one failure must not stop it
            logger.exception("healing %s on %s failed", fault.kind, fault.target)
        finally:
            self._active = [(i, f) for i, f in self._active if i != index]
            healed = self.record.fault_healed(index, timing.monotonic())
            if self.hook is not None:
                self.hook.pytest_drdrill_fault_healed(record=self.record, fault=healed)

    @property
    def active(self) -> list[Fault]:
        """Faults injected and not yet healed."""
        return [f for _, f in self._active]
