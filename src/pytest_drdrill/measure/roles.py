"""Who held which role when: HA members' roles sampled through a drill, and their spans.

An HA stack (Patroni, pg_auto_failover, repmgr) knows which member leads; the drill
asks it many times a second and keeps what changed, so the report can show who was
leader when next to what the clients saw. Nothing here knows any one stack: a provider
hands :class:`RoleSampler` a function that returns one
:class:`~pytest_drdrill.results.RoleSample` per member, in the stack's own words.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
from typing import TYPE_CHECKING, Protocol

from pytest_drdrill import timing

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from pytest_drdrill.results import RoleSample, TimelineSwitch
    from pytest_drdrill.timing import Anchor

__all__ = [
    "LEADER_ROLES",
    "RoleSampler",
    "RoleSink",
    "leader_spans",
    "lsn_text",
    "role_spans",
    "wall_to_monotonic",
]

logger = logging.getLogger(__name__)

#: The words HA stacks use for the member that accepts writes. Patroni's ``/cluster``
#: says ``leader`` (``master`` before 3.0); repmgr and pg_auto_failover say ``primary``.
#: A standby cluster's ``standby_leader`` leads no writes and is not one of them.
LEADER_ROLES = frozenset({"leader", "master", "primary"})


class RoleSink(Protocol):
    """Where sampled roles go: a :class:`~pytest_drdrill.record.DrillRecord` is one.

    .. versionadded:: 0.6
    """

    def add_role_sample(self, sample: RoleSample) -> bool:
        """Keep the sample if it says something new; return whether it was kept."""
        ...

    def set_timeline_switches(self, switches: Iterable[TimelineSwitch]) -> None:
        """Replace the recorded timeline switches."""
        ...

    def note(self, text: str) -> None:
        """Add a line to the drill's notes."""
        ...


class RoleSampler:
    """Asks the HA stack for every member's role every ``interval`` seconds, in a thread.

    A failing ask is logged and noted in the drill (the first one, and at :meth:`stop`
    how many failed in all), never raised: the roles illustrate a drill, they do not
    measure it, so an HA stack that stops answering must not end the test.

    :param record: receives each sample (a :class:`~pytest_drdrill.record.DrillRecord`).
    :param sample: returns one sample per member; it bounds its own waiting (a member
        that does not answer in time is reported with role ``unreachable``).
    :param interval: seconds between the starts of two asks; a slower ask delays the
        next, it never overlaps it.
    :param history: read once at :meth:`stop`: the stack's timeline switches, for
        :meth:`~pytest_drdrill.record.DrillRecord.set_timeline_switches`.
    :param name: names the thread and the notes, e.g. ``patroni``.

    .. versionadded:: 0.6
    """

    def __init__(
        self,
        record: RoleSink,
        sample: Callable[[], Sequence[RoleSample]],
        *,
        interval: float = 0.1,
        history: Callable[[], Sequence[TimelineSwitch]] | None = None,
        name: str = "roles",
    ) -> None:
        if interval <= 0:
            raise ValueError(f"RoleSampler interval must be positive, got {interval}")
        self.record = record
        self.sample = sample
        self.interval = interval
        self.history = history
        self.name = name
        #: How many asks returned, and how many raised.
        self.asks = 0
        self.failures = 0
        #: The last failure, as ``Type: message``; ``None`` while every ask succeeded.
        self.error: str | None = None
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, *, first_timeout: float = 5.0) -> RoleSampler:
        """Start sampling; return once the first ask ended (or ``first_timeout`` passed).

        Waiting for the first ask puts the roles before the fault into the record.
        """
        if self._thread is not None:
            return self
        self._stop.clear()
        self._first.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"drdrill-{self.name}-roles", daemon=True
        )
        self._thread.start()
        self._first.wait(first_timeout)
        return self

    def stop(self, *, timeout: float = 5.0) -> None:
        """Stop sampling, then read the history once; never raises, idempotent."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("%s role sampler did not stop within %ss", self.name, timeout)
            self.record.note(f"{self.name} role sampler: an ask still hung after {timeout:g} s")
        if self.failures > 1:
            self.record.note(
                f"{self.name} role sampler: {self.failures} of {self.asks + self.failures} "
                f"asks failed, the last with {self.error}"
            )
        if self.history is not None:
            self._read_history()

    def _read_history(self) -> None:
        assert self.history is not None
        try:
            switches = self.history()
        except Exception as exc:  # a missing history leaves the roles; it is only noted
            logger.exception("%s timeline history failed", self.name)
            self.record.note(f"{self.name} timeline history unread: {_describe(exc)}")
            return
        self.record.set_timeline_switches(switches)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = timing.monotonic()
            self._ask()
            self._first.set()
            elapsed = timing.monotonic() - started
            self._stop.wait(max(0.0, self.interval - elapsed))

    def _ask(self) -> None:
        try:
            for sample in self.sample():
                self.record.add_role_sample(sample)
        except Exception as exc:  # the sampler outlives any failure of the stack it asks
            self.failures += 1
            self.error = _describe(exc)
            if self.failures == 1:
                logger.warning("%s role sample failed: %s", self.name, self.error)
                self.record.note(f"{self.name} role sample failed: {self.error}")
            return
        self.asks += 1


def role_spans(
    samples: Iterable[RoleSample], classify: Callable[[RoleSample], str]
) -> list[tuple[str, str, float, float | None]]:
    """Split each member's samples into runs of one class.

    :param samples: role samples of any members, in any order.
    :param classify: the class of a sample, e.g. its role.
    :returns: ``(node, class, start, end)`` per run, ordered by member (first seen
        first) then time; a run ends where the member's next class begins, and the
        last run of each member ends at ``None`` (still so when sampling stopped).
    """
    by_node: dict[str, list[RoleSample]] = {}
    for sample in samples:
        by_node.setdefault(sample.node, []).append(sample)
    spans: list[tuple[str, str, float, float | None]] = []
    for node, group in by_node.items():
        group.sort(key=lambda s: s.at)
        runs: list[tuple[str, float]] = []
        for sample in group:
            kind = classify(sample)
            if not runs or runs[-1][0] != kind:
                runs.append((kind, sample.at))
        ends: list[float | None] = [start for _, start in runs[1:]]
        ends.append(None)
        spans += [(node, kind, start, end) for (kind, start), end in zip(runs, ends, strict=True)]
    return spans


def leader_spans(
    samples: Iterable[RoleSample], *, roles: frozenset[str] = LEADER_ROLES
) -> list[tuple[str, float, float | None]]:
    """Who was leader when: ``(node, start, end)`` per leadership, by start.

    Two spans overlapping means the stack named two leaders at once.

    :param samples: role samples, e.g. :attr:`~pytest_drdrill.results.DrillResult.roles`.
    :param roles: the words that mean leader (:data:`LEADER_ROLES`).
    :returns: ``end`` is ``None`` when the member still led at its last sample.
    """
    spans = role_spans(samples, lambda s: "leader" if s.role in roles else "other")
    found = [(node, start, end) for node, kind, start, end in spans if kind == "leader"]
    return sorted(found, key=lambda span: span[1])


def wall_to_monotonic(stamp: str | float | None, anchor: Anchor) -> float | None:
    """Turn a wall-clock time an HA stack reported into a monotonic stamp of this process.

    :param stamp: ISO 8601 with an offset (Patroni's ``/history``) or seconds since
        the epoch; ``None`` passes through.
    :param anchor: a reading of both clocks, e.g. :func:`pytest_drdrill.timing.anchor`.
    :raises ValueError: when a text is not ISO 8601 or has no UTC offset.
    """
    if stamp is None:
        return None
    if isinstance(stamp, str):
        parsed = _dt.datetime.fromisoformat(stamp)
        if parsed.tzinfo is None:
            raise ValueError(f"time {stamp!r} has no UTC offset: it cannot be placed")
        epoch = parsed.timestamp()
    else:
        epoch = float(stamp)
    return anchor.mono + (epoch - anchor.wall)


def lsn_text(lsn: int | str) -> str:
    """An LSN as PostgreSQL writes it (``0/3000060``); Patroni's ``/history`` gives integers."""
    if isinstance(lsn, str):
        return lsn
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
