"""The client-side record of a drill: every write and probe, as the client saw it.

RTO and RPO are derived from this record alone (see :mod:`pytest_drdrill.measure.analysis`),
never from what failover code reports about itself. Operations are recorded in the
style of Jepsen histories: when the client invoked the operation, when it got an answer,
and whether that answer proves the operation applied, proves it did not, or proves
nothing.
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
import threading


class Outcome(enum.Enum):
    """What the client knows about a write once the call returned.

    .. versionadded:: 0.1
    """

    #: The server acknowledged the write (the commit returned success).
    OK = "ok"
    #: The write certainly did not apply: the connection was refused, or the server
    #: answered with an error such as a read-only transaction.
    FAIL = "fail"
    #: Indeterminate: the write was sent but no answer came back, e.g. the connection
    #: died during the commit. It may or may not have applied.
    INFO = "info"


@dataclasses.dataclass(frozen=True, slots=True)
class WriteOp:
    """One sequence-numbered write attempted by the workload.

    .. versionadded:: 0.1

    :param id: the row's sequence number.
    :param invoked: :func:`pytest_drdrill.timing.monotonic` stamp before the call.
    :param completed: stamp when the call returned or raised.
    :param outcome: what the answer proves.
    :param error: the error text for :attr:`Outcome.FAIL` and :attr:`Outcome.INFO`.
    :raises ValueError: when ``completed`` precedes ``invoked``.
    """

    id: int
    invoked: float
    completed: float
    outcome: Outcome
    error: str = ""

    def __post_init__(self) -> None:
        if self.completed < self.invoked:
            raise ValueError(
                f"write {self.id} completed at {self.completed} before it was invoked at "
                f"{self.invoked}; stamp both with pytest_drdrill.timing.monotonic()"
            )


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeOp:
    """One availability probe (a cheap read or ping through the service endpoint).

    .. versionadded:: 0.1

    :param invoked: :func:`pytest_drdrill.timing.monotonic` stamp before the probe.
    :param completed: stamp when it returned or raised.
    :param ok: whether the service answered correctly.
    :param error: the error text when it did not.
    :raises ValueError: when ``completed`` precedes ``invoked``.
    """

    invoked: float
    completed: float
    ok: bool
    error: str = ""

    def __post_init__(self) -> None:
        if self.completed < self.invoked:
            raise ValueError(
                f"probe completed at {self.completed} before it was invoked at "
                f"{self.invoked}; stamp both with pytest_drdrill.timing.monotonic()"
            )


class History:
    """An append-only, thread-safe log of writes and probes.

    Workload and probe threads append while the drill reads snapshots, so appends take
    only a lock and a list append, and every read returns an immutable copy.

    .. versionadded:: 0.1
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._writes: list[WriteOp] = []
        self._probes: list[ProbeOp] = []
        self._ack_completed: list[float] = []
        # A single sequential writer appends acknowledgements in completion order, which
        # lets acknowledged_since() bisect; concurrent writers may break the order, and
        # then it falls back to a scan instead of sorting on every append.
        self._acks_sorted = True
        self._stalls: list[tuple[float, float]] = []

    def record_write(self, op: WriteOp) -> None:
        """Append a finished write.

        :param op: the write, with both stamps and its outcome.
        """
        with self._lock:
            self._writes.append(op)
            if op.outcome is Outcome.OK:
                acks = self._ack_completed
                if acks and op.completed < acks[-1]:
                    self._acks_sorted = False
                acks.append(op.completed)

    def record_probe(self, op: ProbeOp) -> None:
        """Append a finished probe.

        :param op: the probe, with both stamps and whether it succeeded.
        """
        with self._lock:
            self._probes.append(op)

    def record_stall(self, woke: float, seconds: float) -> None:
        """Note that the client itself did not run for ``seconds`` before ``woke``.

        Its loop woke that late (the process got no CPU, or another thread held the GIL):
        an operation that timed out then says nothing about the service.

        .. versionadded:: 0.8
        """
        with self._lock:
            self._stalls.append((woke, seconds))

    def stalls(self) -> tuple[tuple[float, float], ...]:
        """Return the client's own stalls so far, as ``(woke, seconds)``, in order."""
        with self._lock:
            return tuple(self._stalls)

    def writes(self) -> tuple[WriteOp, ...]:
        """Return a snapshot of every write recorded so far, in recording order."""
        with self._lock:
            return tuple(self._writes)

    def probes(self) -> tuple[ProbeOp, ...]:
        """Return a snapshot of every probe recorded so far, in recording order."""
        with self._lock:
            return tuple(self._probes)

    def acknowledged(self) -> tuple[WriteOp, ...]:
        """Return a snapshot of the writes whose outcome is :attr:`Outcome.OK`."""
        with self._lock:
            writes = tuple(self._writes)
        return tuple(op for op in writes if op.outcome is Outcome.OK)

    def acknowledged_since(self, t: float) -> int:
        """Count the acknowledged writes that completed at or after ``t``.

        Cheap enough to poll while waiting for the service to come back.

        :param t: a :func:`pytest_drdrill.timing.monotonic` stamp.
        :returns: the number of such writes.
        """
        with self._lock:
            acks = self._ack_completed
            if self._acks_sorted:
                return len(acks) - bisect.bisect_left(acks, t)
            return sum(1 for completed in acks if completed >= t)

    def last_acknowledged(self) -> float | None:
        """The completion stamp of the newest acknowledged write; ``None`` before any.

        Cheap: the guardrail watch polls it every 100 ms.
        """
        with self._lock:
            acks = self._ack_completed
            if not acks:
                return None
            return acks[-1] if self._acks_sorted else max(acks)

    def recent_writes(self, count: int) -> tuple[WriteOp, ...]:
        """The last ``count`` writes recorded, oldest first; cheap to poll."""
        with self._lock:
            return tuple(self._writes[-count:])

    def __len__(self) -> int:
        """Return the number of operations recorded, writes and probes together."""
        with self._lock:
            return len(self._writes) + len(self._probes)
