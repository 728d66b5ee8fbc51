"""What no fault schedule may break, judged from the servers' answers and the client's history.

Everything here is a pure function of what was observed from outside: each PostgreSQL
server's own answers to the watcher (:mod:`pytest_drdrill.measure.watcher`) and the
measuring client's history. What recovery code recorded about itself is never read.

- **Split brain**: two servers proven writable at the same moment, measured by
  :mod:`pytest_drdrill.measure.split_brain` (every drill checks it; its names
  :class:`Answer`, :class:`Span`, :class:`SplitBrain`, :func:`writable_spans` and
  :func:`split_brains` are re-exported here, where schedules have always imported them).
- **Lost acknowledged writes**: every handover of the writable role is classified from
  the old primary's last answers. It is *synchronous* when the new primary was reported
  in sync by the old one and its ``synchronous_standby_names`` required that standby's
  confirmation for every commit. When every handover was synchronous, no acknowledged
  write may be missing.
- **Recovery**: after the last heal the client must see writes acknowledged again,
  within the tier's target.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from pytest_drdrill.durations import format_duration
from pytest_drdrill.errors import TargetMissed
from pytest_drdrill.measure.analysis import measure_rto
from pytest_drdrill.measure.history import Outcome
from pytest_drdrill.measure.split_brain import (
    Answer,
    Span,
    SplitBrain,
    split_brains,
    writable_spans,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from pytest_drdrill.measure.history import History
    from pytest_drdrill.results import Target

__all__ = [
    "Answer",
    "Finding",
    "Handover",
    "Recovery",
    "ScheduleFailed",
    "Span",
    "SplitBrain",
    "handovers",
    "lost_writes",
    "recovery_after_heal",
    "split_brain_findings",
    "split_brains",
    "sync_requirement",
    "writable_spans",
]


@dataclasses.dataclass(frozen=True)
class Handover:
    """The writable role passing from one server to another, as the servers showed it.

    :param old: the server that was writable before.
    :param new: the server that became writable.
    :param at: the reply of ``new``'s first writable answer.
    :param synchronous: whether ``old`` could acknowledge no commit that ``new`` lacked.
    :param why: the evidence, in words.

    .. versionadded:: 0.4
    """

    old: str
    new: str
    at: float
    synchronous: bool
    why: str


@dataclasses.dataclass(frozen=True)
class Finding:
    """One broken invariant.

    :param kind: ``split brain``, ``lost writes`` or ``no recovery``.
    :param detail: what was observed, with times and names.

    .. versionadded:: 0.4
    """

    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind.upper()}: {self.detail}"


class ScheduleFailed(TargetMissed):
    """A fault schedule broke an invariant; the message names each finding and the steps.

    .. versionadded:: 0.4
    """

    def __init__(
        self, findings: Sequence[Finding], steps: Sequence[str], *, during: str = ""
    ) -> None:
        self.findings = tuple(findings)
        self.steps = tuple(steps)
        self.during = during
        lines = [f"fault schedule broke {len(self.findings)} invariant(s):"]
        lines += [f"  {finding}" for finding in self.findings]
        if during:
            lines.append(f"first seen during {during}")
        lines += ["what happened, one line per step (times from the schedule's start):"]
        lines += [f"  {step}" for step in self.steps]
        super().__init__("\n".join(lines))


# --- handovers and lost writes ------------------------------------------------------------------

_SYNC_LIST = re.compile(
    r"^\s*(?:(?P<method>FIRST|ANY)\s+)?(?P<num>\d+)\s*\((?P<names>.*)\)\s*$", re.I
)


def sync_requirement(setting: str) -> tuple[int, tuple[str, ...]]:
    """Parse ``synchronous_standby_names``: how many confirmations, from which standbys.

    ``'FIRST 1 ("pg-sync")'`` gives ``(1, ("pg-sync",))``; a bare list ``'a, b'`` means
    ``FIRST 1 (a, b)``; an empty setting means ``(0, ())``: asynchronous.

    .. versionadded:: 0.4
    """
    text = setting.strip()
    if not text:
        return 0, ()
    match = _SYNC_LIST.match(text)
    number, names = (int(match["num"]), match["names"]) if match else (1, text)
    return number, tuple(n.strip().strip('"') for n in names.split(",") if n.strip())


def _certainly_has_every_commit(standby: str, setting: str) -> bool:
    """Whether a primary with ``setting`` needed ``standby``'s confirmation for every commit."""
    number, names = sync_requirement(setting)
    return number >= 1 and standby in names and "*" not in names and number >= len(names)


def handovers(answers: Iterable[Answer], started: float) -> list[Handover]:
    """The order in which servers became writable, and whether each handover was synchronous.

    Servers are ordered by their first writable answer. A handover from ``old`` to
    ``new`` is synchronous when ``old``'s last writable answer before ``new`` became
    writable required ``new``'s confirmation for every commit, and ``old`` had reported
    ``new`` in sync at least once.

    :param started: the schedule's start, for the times in :attr:`Handover.why`.

    .. versionadded:: 0.4
    """
    polled = sorted(answers, key=lambda a: a.sent)
    first_writable: dict[str, float] = {}
    for answer in polled:
        if answer.writable and answer.node not in first_writable:
            first_writable[answer.node] = answer.received
    order = sorted(first_writable, key=first_writable.__getitem__)
    result = []
    for old, new in zip(order, order[1:], strict=False):
        at = first_writable[new]
        before = [a for a in polled if a.node == old and a.writable and a.received < at]
        if not before:
            continue
        last = before[-1]
        seen_in_sync = any(new in a.in_sync for a in before)
        when = f"+{last.received - started:.2f}s"
        if _certainly_has_every_commit(new, last.sync_names) and seen_in_sync:
            synchronous = True
            why = (
                f"{new} was {old}'s synchronous standby (synchronous_standby_names "
                f"{last.sync_names!r}, in sync) at {old}'s last writable answer {when}"
            )
        else:
            synchronous = False
            state = "in sync" if new in last.in_sync else "not in sync"
            why = (
                f"{old}'s last writable answer {when} did not require {new}'s confirmation "
                f"(synchronous_standby_names {last.sync_names!r}; {new} {state})"
            )
        result.append(Handover(old, new, at, synchronous, why))
    return result


def lost_writes(
    history: History, present: set[int], handed: Sequence[Handover], *, cap: int
) -> Finding | None:
    """Acknowledged writes missing from the ledger, when every handover was synchronous.

    :param present: the ids read through the service endpoint at the end.
    :param handed: the handovers; any asynchronous one allows loss (it is reported, not
        judged here: the drill's RPO target covers asynchronous promotion).
    :param cap: how many lost writes are tolerated with synchronous handovers (``0``).

    .. versionadded:: 0.4
    """
    acknowledged = {op.id for op in history.writes() if op.outcome is Outcome.OK}
    lost = sorted(acknowledged - present)
    if len(lost) <= cap or any(not h.synchronous for h in handed):
        return None
    chain = " -> ".join([handed[0].old, *(h.new for h in handed)]) if handed else "no handover"
    shown = ", ".join(str(i) for i in lost[:10]) + (" ..." if len(lost) > 10 else "")
    return Finding(
        "lost writes",
        f"{len(lost)} acknowledged write(s) missing from the ledger read through the endpoint "
        f"(ids {shown}), although every handover was synchronous ({chain}); at most {cap} "
        "may be lost",
    )


# --- recovery ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Recovery:
    """How the service came back after the last heal.

    :param seconds: last heal to the first acknowledged write after which writes kept
        succeeding; ``None`` when that never happened in the observation window.
    :param finding: the broken invariant, if any.
    :param warning: over the target but within the maximum acceptable.

    .. versionadded:: 0.4
    """

    seconds: float | None
    finding: Finding | None
    warning: str = ""


def recovery_after_heal(
    history: History, healed_at: float, target: Target | None, *, observe: float
) -> Recovery:
    """Judge the time from the last heal until the client's writes succeed again.

    .. versionadded:: 0.4
    """
    rto = measure_rto(history, healed_at)
    if rto.effect_seen:
        seconds = rto.seconds
    else:
        seconds = min(
            (op.completed - healed_at for op in history.acknowledged() if op.invoked >= healed_at),
            default=None,
        )
    if seconds is None:
        return Recovery(
            None,
            Finding(
                "no recovery",
                f"no write was acknowledged through the endpoint, and then kept succeeding, "
                f"within the {format_duration(observe)} observation window after the last "
                "heal (--drill-observe / drill_observe, or observe= in the marker)",
            ),
        )
    if target is not None and seconds > target.rto_max:
        return Recovery(
            seconds,
            Finding(
                "no recovery",
                f"writes succeeded again {format_duration(seconds)} after the last heal, over "
                f"{target.name}'s maximum acceptable {format_duration(target.rto_max)}",
            ),
        )
    if target is not None and seconds > target.rto_target:
        return Recovery(
            seconds,
            None,
            f"writes succeeded again {format_duration(seconds)} after the last heal, over "
            f"{target.name}'s target {format_duration(target.rto_target)}",
        )
    return Recovery(seconds, None)


def split_brain_findings(answers: Iterable[Answer], started: float) -> list[Finding]:
    """One finding per split brain seen in ``answers``, timed from ``started``."""
    return [
        Finding(
            "split brain",
            f"{b.first.node} and {b.second.node} both accepted writes from "
            f"+{b.start - started:.2f}s to +{b.end - started:.2f}s (each proven by consecutive "
            f"writable answers of one server process: {b.first.answers} and "
            f"{b.second.answers})",
        )
        for b in split_brains(writable_spans(answers))
    ]
