"""The drill record: what happened during one drill, written by every party to it.

The test thread records faults, the monitor thread records detection, the failover
code records its phases. Nothing here is measured: measurements come from the
workload's history (:mod:`pytest_drdrill.measure`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import TYPE_CHECKING, Any

from pytest_drdrill import timing
from pytest_drdrill.measure.history import History
from pytest_drdrill.results import (
    DrillResult,
    FaultRecord,
    LagSample,
    Phase,
    RoleSample,
    Target,
    TimelineSwitch,
    Verdict,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

#: A member's lag must move by more than this to be recorded again: at ten samples a
#: second, a lag that creeps by a few kilobytes would otherwise keep every sample.
LAG_STEP_BYTES = 1024 * 1024


@dataclasses.dataclass
class PhaseNote:
    """What a running phase may add before it ends (e.g. the node it chose)."""

    detail: str = ""


class DrillRecord:
    """The timeline of one drill: faults, recovery phases, notes.

    :param name: the drill (the test's node id).
    :param scenario: the scenario from the ``drdrill`` marker.
    :param cadence: daily, weekly, monthly or quarterly.
    :param target: what the drill is judged against.
    :param backend: where the topology runs.
    :param negative_control: whether the drill is expected to go red.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        name: str,
        *,
        scenario: str,
        cadence: str,
        target: Target | None,
        backend: str,
        negative_control: bool = False,
    ) -> None:
        self.name = name
        self.scenario = scenario
        self.cadence = cadence
        self.target = target
        self.backend = backend
        self.negative_control = negative_control
        self.history = History()
        #: Each service's client history; ``postgres`` is :attr:`history`.
        self.histories: dict[str, History] = {"postgres": self.history}
        self.lag_samples: list[LagSample] = []
        self.started_at = timing.monotonic()
        self._lock = threading.Lock()
        self._faults: list[FaultRecord] = []
        self._phases: list[Phase] = []
        self.notes: list[str] = []
        self.recovery_errors: list[str] = []
        self._listeners: list[Callable[[str, object], None]] = []
        self._roles: list[RoleSample] = []
        self._last_role: dict[str, RoleSample] = {}
        self._switches: tuple[TimelineSwitch, ...] = ()

    def subscribe(self, listener: Callable[[str, object], None]) -> None:
        """Call ``listener(kind, item)`` for each new fault (``"fault"``) and phase (``"phase"``).

        It runs in the thread that recorded the item (test or monitor thread), so it must
        be quick and thread-safe; an error in it is noted, never raised into recovery.

        .. versionadded:: 0.3
        """
        with self._lock:
            self._listeners.append(listener)

    def _tell(self, kind: str, item: object) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(kind, item)
            except Exception as exc:  # a broken observer must not break recovery
                self.note(f"a drill listener failed on a {kind}: {type(exc).__name__}: {exc}")

    # --- faults -----------------------------------------------------------------------------

    def fault_injected(self, kind: str, target: str, at: float) -> int:
        """Record an injected fault; returns its index for :meth:`fault_healed`."""
        fault = FaultRecord(kind, target, at)
        with self._lock:
            self._faults.append(fault)
            index = len(self._faults) - 1
        self._tell("fault", fault)
        return index

    def fault_healed(self, index: int, at: float) -> FaultRecord:
        """Record that fault ``index`` was healed at ``at``."""
        with self._lock:
            healed = dataclasses.replace(self._faults[index], healed_at=at)
            self._faults[index] = healed
            return healed

    @property
    def faults(self) -> tuple[FaultRecord, ...]:
        """Every fault so far, in injection order."""
        with self._lock:
            return tuple(self._faults)

    # --- phases -----------------------------------------------------------------------------

    def add_phase(self, phase: Phase) -> None:
        """Record a phase measured elsewhere."""
        with self._lock:
            self._phases.append(phase)
        self._tell("phase", phase)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[PhaseNote]:
        """Time a recovery step; it is recorded as failed if the block raises.

        Usage in failover code::

            with record.phase("promotion") as note:
                promote(node)
                note.detail = f"promoted {node.name}"
        """
        note = PhaseNote()
        started = timing.monotonic()
        try:
            yield note
        except BaseException as exc:
            detail = f"{note.detail}; {type(exc).__name__}: {exc}".lstrip("; ")
            self.add_phase(Phase(name, started, timing.monotonic(), ok=False, detail=detail))
            raise
        self.add_phase(Phase(name, started, timing.monotonic(), ok=True, detail=note.detail))

    @property
    def phases(self) -> tuple[Phase, ...]:
        """Every phase so far, in the order they ended."""
        with self._lock:
            return tuple(self._phases)

    def history_of(self, service: str) -> History:
        """The client history of ``service``, created on first use."""
        with self._lock:
            return self.histories.setdefault(service, History())

    def add_lag(self, sample: LagSample) -> None:
        """Record a replication-lag sample for the timeline."""
        with self._lock:
            self.lag_samples.append(sample)

    # --- HA roles ---------------------------------------------------------------------------

    def add_role_sample(self, sample: RoleSample) -> bool:
        """Record an HA member's role sample if it differs from that member's last one.

        Only changes are kept, so a drill sampled ten times a second stays small: a
        sample is dropped when it repeats the member's last recorded role, state,
        timeline, ``pg_is_in_recovery()`` answer and source, and its lag neither moved
        by more than :data:`LAG_STEP_BYTES` nor appeared, vanished, or left or reached
        zero.

        :returns: whether the sample was kept.

        .. versionadded:: 0.6
        """
        with self._lock:
            last = self._last_role.get(sample.node)
            if last is not None and not _role_changed(last, sample):
                return False
            self._last_role[sample.node] = sample
            self._roles.append(sample)
            return True

    @property
    def role_samples(self) -> tuple[RoleSample, ...]:
        """Every kept role sample, in the order they were recorded.

        .. versionadded:: 0.6
        """
        with self._lock:
            return tuple(self._roles)

    def set_timeline_switches(self, switches: Iterable[TimelineSwitch]) -> None:
        """Replace the drill's timeline switches (the HA stack's whole history, read once).

        .. versionadded:: 0.6
        """
        ordered = tuple(sorted(switches, key=lambda s: s.timeline))
        with self._lock:
            self._switches = ordered

    @property
    def timeline_switches(self) -> tuple[TimelineSwitch, ...]:
        """The timeline switches set so far, by timeline.

        .. versionadded:: 0.6
        """
        with self._lock:
            return self._switches

    def note(self, text: str) -> None:
        """Add a line to the drill's notes (shown in reports)."""
        with self._lock:
            self.notes.append(text)

    def result(
        self, verdict: Verdict, reason: str, *, ended_at: float | None = None, **measured: Any
    ) -> DrillResult:
        """The drill's result: this record's identity, phases, faults and notes, and ``measured``.

        :param ended_at: monotonic end of the drill; default now.
        :param measured: the other :class:`~pytest_drdrill.results.DrillResult` fields
            (``rto``, ``services``, ...); ``phases``, ``faults``, ``roles`` and
            ``timeline_switches`` given here replace the record's.

        .. versionadded:: 0.5
        .. versionchanged:: 0.6 carries the recorded role samples and timeline switches.
        """
        fields: dict[str, Any] = {
            "fault": None,
            "rto": None,
            "rpo": None,
            "phases": tuple(sorted(self.phases, key=lambda p: p.started)),
            "faults": self.faults,
            "roles": self.role_samples,
            "timeline_switches": self.timeline_switches,
            **measured,
        }
        return DrillResult(
            name=self.name,
            scenario=self.scenario,
            backend=self.backend,
            cadence=self.cadence,
            verdict=verdict,
            reason=reason,
            target=self.target,
            negative_control=self.negative_control,
            started_at=self.started_at,
            ended_at=timing.monotonic() if ended_at is None else ended_at,
            notes=tuple(self.notes),
            **fields,
        )


def _role_changed(last: RoleSample, new: RoleSample) -> bool:
    """Whether ``new`` says something about its member that ``last`` did not."""
    same = (last.role, last.state, last.timeline, last.in_recovery, last.source) == (
        new.role,
        new.state,
        new.timeline,
        new.in_recovery,
        new.source,
    )
    return not same or _lag_changed(last.lag_bytes, new.lag_bytes)


def _lag_changed(last: int | None, new: int | None) -> bool:
    if last is None or new is None:
        return (last is None) != (new is None)
    if (last == 0) != (new == 0):
        return True
    return abs(new - last) > LAG_STEP_BYTES
