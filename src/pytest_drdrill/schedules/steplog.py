"""One line per step of a fault schedule, with what the servers showed, for people to read.

Three sources are told apart in the story: the schedule's own steps, ``[servers]`` lines
(what the watcher saw the servers answer) and ``[recovery]`` lines (what the recovery
code recorded about itself, shown for reading only: no invariant depends on it).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pytest_drdrill import timing

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pytest_drdrill.measure.split_brain import Span, SplitBrain
    from pytest_drdrill.results import Phase


class StepLog:
    """The story of one schedule: each step, and when servers were writable.

    :param started: monotonic stamp every time is shown relative to.

    .. versionadded:: 0.4
    """

    def __init__(self, started: float) -> None:
        self.started = started
        self._entries: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def add(self, text: str, *, at: float | None = None) -> None:
        """Log ``text`` at ``at`` (default now)."""
        with self._lock:
            self._entries.append((timing.monotonic() if at is None else at, text))

    def lines(
        self,
        spans: Iterable[Span] = (),
        brains: Iterable[SplitBrain] = (),
        phases: Iterable[Phase] = (),
    ) -> list[str]:
        """Every step, server event and recovery phase in time order, as ``+4.52s  text``.

        :param spans: writable spans from the watcher, shown where they begin.
        :param brains: split brains, shown where they begin.
        :param phases: the recovery's own phases (detection, fencing, promotion...).
        """
        with self._lock:
            entries = list(self._entries)
        entries += [
            (
                s.start,
                f"[servers] {s.node} writable +{s.start - self.started:.2f}s .. "
                f"+{s.end - self.started:.2f}s ({s.answers} answers)",
            )
            for s in spans
        ]
        entries += [
            (
                b.start,
                f"[servers] SPLIT BRAIN: {b.first.node} and {b.second.node} both writable "
                f"+{b.start - self.started:.2f}s .. +{b.end - self.started:.2f}s",
            )
            for b in brains
        ]
        entries += [
            (
                p.started,
                f"[recovery] {p.name}{'' if p.ok else ' FAILED'} ({p.seconds * 1000:.0f} ms): "
                f"{p.detail}",
            )
            for p in phases
        ]
        entries.sort(key=lambda entry: entry[0])
        return [f"+{at - self.started:7.2f}s  {text}" for at, text in entries]
