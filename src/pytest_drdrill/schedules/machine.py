"""The hypothesis state machine that writes fault schedules.

Hypothesis draws the steps of a schedule (crash, freeze, partition, latency, heal), each
followed or not by a *settle*: a bounded wait for the client's writes to succeed again,
which gives recovery time to act before the next step. The machine only writes the
schedule down; at teardown the whole schedule is handed to ``run``, which plays it
against a fresh system and judges every invariant. A failing schedule is shrunk to a
minimal one and printed as the steps hypothesis drew.

Writing first and playing at the end is possible because no step depends on the
system's state: the only precondition reads the schedule itself (``heal`` needs a fault
since the last heal), and a step the fault model forbids at that moment is played as
"skipped". It is also what makes the drill affordable and consistent. When hypothesis
abandons a test case half-drawn (it hit a length limit while mutating one), nothing is
played; and a schedule drawn twice is played once, so hypothesis sees one outcome per
schedule however the servers' timing varies.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
from typing import TYPE_CHECKING, Protocol

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

#: What a fault is aimed at, resolved to a server when the step is played: the server the
#: service endpoint sends clients to, the standby a failover would promote (synchronous
#: first), the other standby. After failovers the same role names another server.
TARGETS = ("primary", "standby", "second standby")
#: ``clients``: the clients' path to the node; ``peers``: its replication paths.
SIDES = ("clients", "peers")
#: Below and above the reference monitor's default 1 s health-check timeout.
LATENCIES_MS = (200, 1500)

_target = st.sampled_from(TARGETS)
_side = st.sampled_from(SIDES)
_settle = st.booleans()


@dataclasses.dataclass(frozen=True)
class Step:
    """One step of a schedule, as drawn.

    :param action: ``crash``, ``freeze``, ``partition``, ``latency`` or ``heal``.
    :param settle: wait afterwards, bounded, for the client's writes to succeed again.
    :param node: the role of the server a fault hits (:data:`TARGETS`).
    :param side: ``clients`` or ``peers``, for partitions and latency.
    :param ms: the added latency.

    .. versionadded:: 0.4
    """

    action: str
    settle: bool
    node: str | None = None
    side: str | None = None
    ms: int | None = None


#: The arguments each action takes, besides ``settle``, and the values each may have.
_ARGUMENTS: dict[str, dict[str, tuple[object, ...]]] = {
    "crash": {"node": TARGETS},
    "freeze": {"node": TARGETS},
    "partition": {"node": TARGETS, "side": SIDES},
    "latency": {"node": TARGETS, "side": SIDES, "ms": LATENCIES_MS},
    "heal": {},
}


def format_step(step: Step) -> str:
    """``step`` as hypothesis prints it: ``state.freeze(node='primary', settle=True)``.

    .. versionadded:: 0.5
    """
    given = {name: getattr(step, name) for name in _ARGUMENTS[step.action]}
    given["settle"] = step.settle
    arguments = ", ".join(f"{name}={given[name]!r}" for name in sorted(given))
    return f"state.{step.action}({arguments})"


def parse_step(text: str) -> Step:
    """Read one step written as hypothesis prints it (the ``state.`` prefix is optional).

    :raises ValueError: naming what is wrong and what the step may say.

    .. versionadded:: 0.5
    """
    example = "e.g. \"state.freeze(node='primary', settle=True)\""
    try:
        call = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ValueError(
            f"{text!r} is not a step; write one as hypothesis prints it, {example}"
        ) from None
    function = call.func if isinstance(call, ast.Call) else None
    if isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name):
        action = function.attr if function.value.id == "state" else None
    else:
        action = function.id if isinstance(function, ast.Name) else None
    if action not in _ARGUMENTS or not isinstance(call, ast.Call) or call.args:
        raise ValueError(
            f"{text!r}: write one of {', '.join(_ARGUMENTS)} with keyword arguments, {example}"
        )
    allowed = {**_ARGUMENTS[action], "settle": (True, False)}
    given: dict[str, object] = {}
    for keyword in call.keywords:
        if keyword.arg not in allowed:
            raise ValueError(
                f"{text!r}: {action} takes {', '.join(sorted(allowed))}, not {keyword.arg}"
            )
        try:
            value = ast.literal_eval(keyword.value)
        except ValueError:
            value = ast.unparse(keyword.value)
        if value not in allowed[keyword.arg] or type(value) is not type(allowed[keyword.arg][0]):
            choices = ", ".join(repr(v) for v in allowed[keyword.arg])
            raise ValueError(f"{text!r}: {keyword.arg}={value!r} is not one of {choices}")
        given[keyword.arg] = value
    missing = sorted(set(allowed) - set(given))
    if missing:
        raise ValueError(f"{text!r}: {action} needs {', '.join(missing)} too")
    return Step(action, **given)  # type: ignore[arg-type]


def parse_schedules(known: Sequence[Sequence[str | Step]]) -> list[tuple[Step, ...]]:
    """Read ``run(known=...)``: schedules, each a list of steps (text or :class:`Step`).

    A heal is refused where the drawn schedules could not have one (first, or right after
    another heal), so a known schedule stays inside the fault model hypothesis explores.

    :raises ValueError: naming the schedule and step, and what to write instead.

    .. versionadded:: 0.5
    """
    if isinstance(known, (str, bytes)) or not all(isinstance(s, (list, tuple)) for s in known):
        raise ValueError(
            "drdrill_schedules.run(known=...): give a list of schedules, each a list of "
            "steps, e.g. known=[[\"state.freeze(node='primary', settle=True)\"]]"
        )
    schedules: list[tuple[Step, ...]] = []
    for number, schedule in enumerate(known, 1):
        steps: list[Step] = []
        faults_since_heal = 0
        for index, item in enumerate(schedule, 1):
            where = f"drdrill_schedules.run(known=...): schedule {number}, step {index}"
            try:
                step = item if isinstance(item, Step) else parse_step(str(item))
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
            if step.action == "heal" and faults_since_heal == 0:
                raise ValueError(f"{where}: a heal needs a fault before it since the last heal")
            faults_since_heal = 0 if step.action == "heal" else faults_since_heal + 1
            steps.append(step)
        if not steps:
            raise ValueError(f"drdrill_schedules.run(known=...): schedule {number} has no step")
        schedules.append(tuple(steps))
    return schedules


class ScheduleSubject(Protocol):
    """The system one schedule is played against.

    .. versionadded:: 0.4
    """

    def crash(self, target: str) -> None:
        """Kill the ``target`` server and all its processes."""

    def freeze(self, target: str) -> None:
        """SIGSTOP the ``target`` server."""

    def partition(self, node: str, side: str) -> None:
        """Cut the ``target`` server off from the clients or from its replication peers."""

    def latency(self, node: str, ms: int, side: str) -> None:
        """Delay the ``target`` server's client or replication paths by ``ms``."""

    def heal(self) -> None:
        """Heal every active fault."""

    def settle(self) -> None:
        """Wait, bounded, until the client's writes succeed again."""

    def finish(self) -> None:
        """Heal, wait for recovery, check every invariant, remove the system; raise on findings."""

    def abandon(self) -> None:
        """Remove the system without judging it (a step failed)."""


def play(subject: ScheduleSubject, steps: tuple[Step, ...]) -> None:
    """Play ``steps`` against ``subject`` and ``finish()`` it; ``abandon()`` it if a step fails.

    .. versionadded:: 0.4
    """
    try:
        for step in steps:
            if step.action == "heal":
                subject.heal()
            elif step.action == "latency":
                assert step.node and step.side and step.ms
                subject.latency(step.node, step.ms, step.side)
            elif step.action == "partition":
                assert step.node and step.side
                subject.partition(step.node, step.side)
            else:
                assert step.node
                getattr(subject, step.action)(step.node)
            if step.settle:
                subject.settle()
    except BaseException:
        subject.abandon()
        raise
    subject.finish()


def schedule_machine(run: Callable[[tuple[Step, ...]], None]) -> type[RuleBasedStateMachine]:
    """A state machine class that draws a schedule and hands it to ``run`` at teardown.

    .. versionadded:: 0.4
    """

    class FaultSchedule(RuleBasedStateMachine):
        """One fault schedule, drawn step by step."""

        def __init__(self) -> None:
            super().__init__()
            self.steps: list[Step] = []
            self.faults_since_heal = 0

        def _add(self, step: Step) -> None:
            self.steps.append(step)
            self.faults_since_heal = 0 if step.action == "heal" else self.faults_since_heal + 1

        @rule(node=_target, settle=_settle)
        def crash(self, node: str, settle: bool) -> None:  # noqa: FBT001 - drawn by hypothesis
            self._add(Step("crash", settle, node))

        @rule(node=_target, settle=_settle)
        def freeze(self, node: str, settle: bool) -> None:  # noqa: FBT001
            self._add(Step("freeze", settle, node))

        @rule(node=_target, side=_side, settle=_settle)
        def partition(self, node: str, side: str, settle: bool) -> None:  # noqa: FBT001
            self._add(Step("partition", settle, node, side))

        @rule(node=_target, ms=st.sampled_from(LATENCIES_MS), side=_side, settle=_settle)
        def latency(self, node: str, ms: int, side: str, settle: bool) -> None:  # noqa: FBT001
            self._add(Step("latency", settle, node, side, ms))

        @precondition(lambda self: self.faults_since_heal > 0)
        @rule(settle=_settle)
        def heal(self, settle: bool) -> None:  # noqa: FBT001
            self._add(Step("heal", settle))

        def teardown(self) -> None:
            # Called from hypothesis's ``finally``: when the test case is being abandoned
            # (hypothesis's own StopTest) there is no schedule to play.
            if sys.exc_info()[1] is None:
                run(tuple(self.steps))

    return FaultSchedule
