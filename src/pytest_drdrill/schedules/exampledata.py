"""What the schedule runner and one played schedule pass each other.

:class:`ExampleContext` is what every example of one schedule drill shares and
:class:`ExampleOutcome` what each one reports. They are plain values, kept apart from
:mod:`~pytest_drdrill.schedules.example` (which starts servers and injects faults) so
the runner, the reports and the tests read them without that machinery.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from pytest_drdrill.recovery.orchestrator import MonitorSettings
    from pytest_drdrill.results import FaultRecord, Target
    from pytest_drdrill.schedules.invariants import Handover
    from pytest_drdrill.topology._protocol import Topology


@dataclasses.dataclass(frozen=True)
class ExampleOutcome:
    """What one schedule did and how it ended.

    :param number: the example's number in the run (1 for the first).
    :param started: monotonic stamp of its start (topology ready).
    :param ended: monotonic stamp of its end.
    :param ok: whether every invariant held.
    :param steps: the steps, in words, without times.
    :param lines: the full story with times and server events.
    :param faults: the faults injected.
    :param recovery_seconds: last heal to writes succeeding again.
    :param lost: acknowledged writes missing at the end; ``None`` when unread.
    :param handovers: the changes of writable server.
    :param warning: a recovery over target but within the maximum.

    .. versionadded:: 0.4
    """

    number: int
    started: float
    ended: float
    ok: bool
    steps: tuple[str, ...]
    lines: tuple[str, ...]
    faults: tuple[FaultRecord, ...] = ()
    recovery_seconds: float | None = None
    lost: int | None = None
    handovers: tuple[Handover, ...] = ()
    warning: str = ""

    @property
    def summary(self) -> str:
        """``schedule N:`` and :attr:`detail`."""
        return f"schedule {self.number}: {self.detail}"

    @property
    def detail(self) -> str:
        """One line: the steps and how it ended."""
        chain = " -> ".join(
            [self.handovers[0].old, *(h.new for h in self.handovers)] if self.handovers else []
        )
        recovered = (
            "not recovered"
            if self.recovery_seconds is None
            else f"writes back {self.recovery_seconds:.2f}s after the last heal"
        )
        return (
            f"{'; '.join(self.steps) or 'no step'} | "
            f"{'writable ' + chain if chain else 'no handover'}; {recovered}; "
            f"lost {'?' if self.lost is None else self.lost}"
        )


@dataclasses.dataclass
class ExampleContext:
    """What every example of one schedule drill shares.

    :param build: makes a fresh topology in a given directory (the backend's ``topology``).
    :param workdir: a directory for each example's logs.
    :param hook: pytest's hook relay, for the failover and fault observer hooks.
    :param name: the drill (test node id).
    :param scenario: the marker's scenario.
    :param cadence: the marker's cadence.
    :param backend: the backend's name, for records.
    :param target: the tier or function recovery is judged against.
    :param monitor: the reference monitor's settings (``--drill-health-*``).
    :param observe: seconds to wait for recovery after the last heal.
    :param settle_timeout: seconds a ``settle`` step waits at most.
    :param on_outcome: receives each example's outcome.

    .. versionadded:: 0.4
    """

    build: Callable[[Path], Topology]
    workdir: Path
    hook: Any
    name: str
    scenario: str
    cadence: str
    backend: str
    target: Target | None
    monitor: MonitorSettings
    observe: float
    settle_timeout: float
    on_outcome: Callable[[ExampleOutcome], None]
    steady_acks: int = 20
    examples: int = 0
