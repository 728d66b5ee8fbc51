"""The split-brain rule: two writable primaries at once fail any drill, whatever else it met.

A drill whose clients recovered within target still fails when the watcher saw two
PostgreSQL servers accept writes at the same time: writes acknowledged by the one the
endpoint no longer leads to are lost later, or worse, two histories diverge. The evidence
(both servers, the overlap timed from the fault, the answers that prove it, and how many
polls each server got) is kept in the result, so a report shows the watcher really ran.

A watcher that crashed proves nothing after the crash, and a server it could not ask
directly, or that never answered it, proves nothing at all: each is noted, never judged as
"no split brain".
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from pytest_drdrill.results import Verdict

if TYPE_CHECKING:
    from pytest_drdrill.results import DrillResult, SplitBrainOverlap, SplitBrainWatch

__all__ = ["describe_overlap", "judge_split_brain", "polls_text", "with_split_brain"]


def judge_split_brain(
    watch: SplitBrainWatch, verdict: Verdict, reason: str, *, anchor: float, fault: str
) -> tuple[Verdict, str]:
    """``FAIL`` with every overlap named first when ``watch`` saw one; else unchanged.

    :param anchor: the monotonic stamp the overlap's times are given from (the fault's
        injection; the drill's start when there was no fault).
    :param fault: what ``anchor`` is, in words, e.g. ``the fault (crash of pg-primary)``.

    .. versionadded:: 0.5
    """
    if not watch.overlaps:
        return verdict, reason
    found = "; ".join(describe_overlap(o, anchor=anchor, fault=fault) for o in watch.overlaps)
    return Verdict.FAIL, f"split brain: {found}; {polls_text(watch)}; {reason}"


def describe_overlap(overlap: SplitBrainOverlap, *, anchor: float, fault: str) -> str:
    """One overlap in words: both servers, from when to when after ``fault``, and the proof.

    .. versionadded:: 0.5
    """
    return (
        f"{overlap.first} and {overlap.second} both accepted writes from "
        f"{overlap.start - anchor:+.2f} s to {overlap.end - anchor:+.2f} s after {fault} "
        f"({overlap.end - overlap.start:.2f} s; proven by {overlap.first_answers} and "
        f"{overlap.second_answers} consecutive writable answers of one server process each, "
        "asked directly)"
    )


def polls_text(watch: SplitBrainWatch) -> str:
    """``watcher polls: pg-primary 412 (398 answered), ...``: proof the watcher ran.

    .. versionadded:: 0.5
    """
    shown = ", ".join(f"{s.node} {s.polls} ({s.answered} answered)" for s in watch.servers)
    return f"watcher polls: {shown or 'no server'}"


def with_split_brain(result: DrillResult, watch: SplitBrainWatch) -> DrillResult:
    """``result`` judged by the split-brain rule, with the watcher's evidence and notes.

    .. versionadded:: 0.5
    """
    fault = result.fault
    if fault is not None:
        anchor, described = fault.injected_at, f"the fault ({fault.kind} of {fault.target})"
    else:
        anchor, described = result.started_at, "the drill's start"
    verdict, reason = judge_split_brain(
        watch, result.verdict, result.reason, anchor=anchor, fault=described
    )
    notes = [f"split brain not judged for {why}" for why in watch.unwatched]
    notes += [
        f"split brain not judged for {s.node}: it never answered the watcher's {s.polls} "
        "direct polls (is its address reachable from where pytest runs?)"
        for s in watch.servers
        if s.polls and not s.answered
    ]
    if watch.error is not None:
        notes.append(
            f"the split-brain watcher crashed ({watch.error}): no split brain after its last "
            f"poll is ruled out; {polls_text(watch)}"
        )
    return dataclasses.replace(
        result,
        verdict=verdict,
        reason=reason,
        split_brain=watch,
        notes=(*result.notes, *notes),
    )
