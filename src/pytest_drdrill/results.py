"""Frozen records of what a drill did and measured; reports are written from these.

Times inside a drill are :func:`pytest_drdrill.timing.monotonic` stamps; a
:class:`RunInfo` carries the :class:`~pytest_drdrill.timing.Anchor` that turns them
into wall-clock time when a report is written.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from pytest_drdrill.timing import Anchor


class Verdict(enum.Enum):
    """How a drill's measurements compare with its target.

    .. versionadded:: 0.1
    """

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    #: Stopped by a guardrail or the kill switch: every fault healed, nothing proven
    #: (new in 0.7).
    ABORTED = "aborted"


@dataclasses.dataclass(frozen=True)
class Target:
    """What a drill is judged against, resolved from the targets file.

    :param kind: ``"tier"`` or ``"function"``: which table of the targets file named it.
    :param name: the tier or business function, e.g. ``tier_1_critical``.
    :param rto_target: seconds; over it the drill warns.
    :param rto_max: seconds; over it the drill fails.
    :param rpo_target: seconds of lost acknowledged writes; ``None`` when not judged.
    :param rpo_max: seconds; ``None`` when not judged.
    :param max_lost_writes: a hard cap on lost acknowledged writes (``0`` for synchronous
        replication), from the drill's marker; ``None`` when not judged.
    """

    kind: str
    name: str
    rto_target: float
    rto_max: float
    rpo_target: float | None = None
    rpo_max: float | None = None
    max_lost_writes: int | None = None


@dataclasses.dataclass(frozen=True)
class FaultRecord:
    """One injected fault.

    :param kind: e.g. ``crash``, ``freeze``, ``stop``, ``link-cut``.
    :param target: the node or link it hit, e.g. ``pg-primary``.
    :param injected_at: monotonic stamp of injection.
    :param healed_at: monotonic stamp of healing; ``None`` while active.
    """

    kind: str
    target: str
    injected_at: float
    healed_at: float | None = None


@dataclasses.dataclass(frozen=True)
class Phase:
    """One timed step of recovery: detection, fencing, promotion, repoint or validation.

    :param name: the phase.
    :param started: monotonic stamp.
    :param ended: monotonic stamp.
    :param ok: whether the step succeeded.
    :param detail: a human-readable note (chosen node, LSNs, error).
    """

    name: str
    started: float
    ended: float
    ok: bool = True
    detail: str = ""

    @property
    def seconds(self) -> float:
        """The phase's duration."""
        return self.ended - self.started


@dataclasses.dataclass(frozen=True)
class RtoResult:
    """Recovery time measured from the client's history.

    :param seconds: fault injection → the first acknowledged write after which the
        service stayed up; ``None`` when it never recovered in the observed history.
    :param outage_started: monotonic stamp of the first failed operation after the fault.
    :param recovered_at: monotonic stamp of that first lasting acknowledged write.
    :param effect_seen: whether the client saw any outage at all.
    """

    seconds: float | None
    outage_started: float | None
    recovered_at: float | None
    effect_seen: bool


@dataclasses.dataclass(frozen=True)
class RpoResult:
    """Data loss measured from the client's history against the new primary's contents.

    :param lost_writes: acknowledged writes missing after recovery.
    :param lost_ids: their ids, ascending.
    :param window_seconds: the fault time minus the acknowledgement time of the last
        surviving acknowledged write before the first lost one; 0 when nothing is lost.
    :param unacknowledged_present: writes never acknowledged (failed or indeterminate)
        that are present after recovery; not a loss, counted apart.
    """

    lost_writes: int
    lost_ids: tuple[int, ...]
    window_seconds: float
    unacknowledged_present: int


@dataclasses.dataclass(frozen=True)
class LagSample:
    """How far one replica was behind its primary at one moment.

    :param at: monotonic stamp of the sample.
    :param service: ``postgres``, ``redis`` or ``s3``.
    :param node: the replica (or DR store).
    :param bytes: bytes not yet replayed; ``None`` when the service has no byte measure.
    :param seconds: seconds behind; ``None`` when unknown (replica unreachable).
    :param healthy: under the lag threshold (the requirements' 16 MB for PostgreSQL).

    .. versionadded:: 0.2
    """

    at: float
    service: str
    node: str
    bytes: int | None
    seconds: float | None
    healthy: bool


@dataclasses.dataclass(frozen=True)
class ServiceResult:
    """RTO and RPO of one service, from its own client's history.

    :param service: ``postgres``, ``redis`` or ``s3``.
    :param rto: recovery measured from the service's history.
    :param rpo: data loss against what its endpoint holds after recovery.
    :param acknowledged_writes: writes the client saw acknowledged.
    :param verdict: judged against the drill's target.
    :param reason: why.
    :param lost_ages: for each lost write, seconds between its acknowledgement and the
        fault (how old the lost data was), ascending by id.

    .. versionadded:: 0.2
    """

    service: str
    rto: RtoResult | None
    rpo: RpoResult | None
    acknowledged_writes: int
    verdict: Verdict
    reason: str
    lost_ages: tuple[float, ...] = ()


@dataclasses.dataclass(frozen=True)
class FunctionResult:
    """A business function's downtime and data loss, through its dependencies.

    A function is down while any service it depends on is down; it is back when all are.

    :param function: the key in ``business_functions``.
    :param services: the topology services it depends on in this drill.
    :param not_exercised: dependencies with no counterpart in the topology.
    :param rto: fault → every dependency back; ``None`` if one never recovered.
    :param rpo: lost writes summed over dependencies, the widest window.
    :param verdict: judged against the function's own targets.
    :param reason: why.
    :param probes: what measured it end to end (the targets file's ``probes``), when
        any: its RTO is then its own clients', not its dependencies' (new in 0.7).

    .. versionadded:: 0.2
    """

    function: str
    services: tuple[str, ...]
    not_exercised: tuple[str, ...]
    rto: RtoResult | None
    rpo: RpoResult | None
    verdict: Verdict
    reason: str
    target: Target | None = None
    probes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ServiceTimeline:
    """One service's client history counted in equal time buckets, for plots.

    Bucket ``i`` counts operations that completed in ``[i * bucket, (i + 1) * bucket)``
    seconds after the drill's start.

    :param service: ``postgres``, ``redis`` or ``s3``.
    :param bucket: seconds per bucket.
    :param acknowledged: acknowledged writes per bucket.
    :param failed: writes that certainly did not apply, per bucket.
    :param indeterminate: writes with no answer, per bucket.
    :param probes_ok: successful availability probes per bucket.
    :param probes_failed: failed probes per bucket.

    .. versionadded:: 0.3
    """

    service: str
    bucket: float
    acknowledged: tuple[int, ...]
    failed: tuple[int, ...]
    indeterminate: tuple[int, ...]
    probes_ok: tuple[int, ...]
    probes_failed: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class NodeResources:
    """What one server of the topology used, sampled once in the steady state.

    :param node: e.g. ``pg-primary``.
    :param processes: how many processes it ran.
    :param pss_bytes: proportional set size summed over them (shared pages split fairly).

    .. versionadded:: 0.3
    """

    node: str
    processes: int
    pss_bytes: int


@dataclasses.dataclass(frozen=True)
class RoleSample:
    """One HA member's role at one moment, as its HA stack reported it.

    :param at: monotonic stamp of the sample.
    :param node: the member, e.g. ``pg-sync``.
    :param role: the stack's word (``leader``, ``sync_standby``, ``replica``…);
        ``unreachable`` when the member did not answer.
    :param state: the stack's state of the member (``running``, ``stopped``…).
    :param timeline: its PostgreSQL timeline.
    :param lag_bytes: its replication lag in bytes as the stack reports it.
    :param in_recovery: ``pg_is_in_recovery()`` asked of the server directly; ``None``
        without an answer.
    :param source: what was asked, e.g. ``patroni /cluster``.

    .. versionadded:: 0.6
    """

    at: float
    node: str
    role: str
    state: str
    timeline: int | None
    lag_bytes: int | None
    in_recovery: bool | None
    source: str


@dataclasses.dataclass(frozen=True)
class WatchedServer:
    """How often the split-brain watcher asked one PostgreSQL server, and how often it answered.

    .. versionadded:: 0.5
    """

    node: str
    polls: int
    answered: int


@dataclasses.dataclass(frozen=True)
class SplitBrainOverlap:
    """Two servers proven writable at once, by their own consecutive answers.

    :param first: one server.
    :param second: the other.
    :param start: monotonic stamp from which both were certainly writable.
    :param end: monotonic stamp until which both were.
    :param first_answers: consecutive writable answers proving ``first``'s span.
    :param second_answers: the same for ``second``.

    .. versionadded:: 0.5
    """

    first: str
    second: str
    start: float
    end: float
    first_answers: int
    second_answers: int


@dataclasses.dataclass(frozen=True)
class SplitBrainWatch:
    """What the split-brain watcher saw during a drill: its evidence, found or not.

    :param servers: each server asked directly, with its poll counts (proof it ran).
    :param overlaps: every time two servers were writable at once.
    :param error: why the watcher stopped early; ``None`` when it ran to the end.
    :param unwatched: servers it could not ask directly, each as ``name: why``.

    .. versionadded:: 0.5
    """

    servers: tuple[WatchedServer, ...]
    overlaps: tuple[SplitBrainOverlap, ...]
    error: str | None = None
    unwatched: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class TimelineSwitch:
    """One PostgreSQL timeline switch (a promotion), as the HA stack's history tells it.

    :param timeline: the timeline that began. Patroni's ``/history`` lists the timeline
        that ended: its number plus one.
    :param lsn: where the previous timeline ended, as PostgreSQL writes an LSN
        (``0/3000060``).
    :param at: monotonic stamp of the switch; ``None`` when the stack gave no time.
    :param reason: the stack's reason, e.g. ``no recovery target specified``.
    :param new_leader: the member promoted; ``None`` when the stack does not say.

    .. versionadded:: 0.6
    """

    timeline: int
    lsn: str
    at: float | None
    reason: str
    new_leader: str | None = None


@dataclasses.dataclass(frozen=True)
class DrillResult:
    """Everything one drill measured and concluded.

    .. versionadded:: 0.1
    """

    name: str
    scenario: str
    backend: str
    cadence: str
    fault: FaultRecord | None
    phases: tuple[Phase, ...]
    verdict: Verdict
    reason: str
    rto: RtoResult | None
    rpo: RpoResult | None
    target: Target | None
    acknowledged_writes: int = 0
    negative_control: bool = False
    started_at: float = 0.0
    ended_at: float = 0.0
    faults: tuple[FaultRecord, ...] = ()
    services: tuple[ServiceResult, ...] = ()
    functions: tuple[FunctionResult, ...] = ()
    lag: tuple[LagSample, ...] = ()
    notes: tuple[str, ...] = ()
    #: Per-service write and probe counts over time (0.3).
    timeline: tuple[ServiceTimeline, ...] = ()
    #: The topology's processes and memory in the steady state (0.3).
    resources: tuple[NodeResources, ...] = ()
    #: Notifications the drill sent, as ``notify`` records (0.3).
    notifications: tuple[Any, ...] = ()
    #: The topology as read from its servers before the fault (0.3).
    topology: dict[str, Any] | None = None
    #: The split-brain watcher's polls and findings; ``None`` when it did not run (0.5).
    split_brain: SplitBrainWatch | None = None
    #: Each HA member's role whenever it changed, as sampled from the HA stack (0.6).
    roles: tuple[RoleSample, ...] = ()
    #: Timeline switches the HA stack reported (0.6).
    timeline_switches: tuple[TimelineSwitch, ...] = ()

    @property
    def expected_verdict(self) -> Verdict | None:
        """A negative control must fail; other drills have no expected verdict."""
        return Verdict.FAIL if self.negative_control else None

    @property
    def as_expected(self) -> bool:
        """Whether the run should count this drill as good evidence.

        A negative control is good when it went red; any other drill when it passed or
        only warned.
        """
        if self.negative_control:
            return self.verdict is Verdict.FAIL
        return self.verdict in (Verdict.PASS, Verdict.WARN)


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """Facts about the whole pytest run that reports carry.

    :param run_id: also the report directory's name.
    :param anchor: turns monotonic stamps into wall time.
    :param git_sha: of the checkout, when there is one.
    :param versions: ``{"pytest-drdrill": ..., "python": ..., "postgresql": ...}``.
    :param backend: ``local`` (``docker`` in a later release).
    :param cadence: the ``--drill`` value.
    """

    run_id: str
    anchor: Anchor
    git_sha: str | None
    versions: dict[str, str]
    backend: str
    cadence: str | None
