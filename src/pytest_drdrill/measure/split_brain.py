"""Split brain, measured from what each PostgreSQL server itself answered.

The input is the servers' own answers to the watcher (:mod:`pytest_drdrill.measure.watcher`),
never what recovery code recorded about itself. A server's answer only says it was
writable at some instant between sending the poll and receiving the reply; but a running
PostgreSQL server never goes from primary back to standby, so two writable answers from
the same server process prove it writable for the whole time between the first reply and
the last poll. Two such spans of different servers that overlap are a split brain,
whatever any failover claims about fencing.

Everything here is a pure function: answers in, spans and overlaps out. Whether an
overlap fails a drill is :mod:`pytest_drdrill.verdict.split_brain`'s rule.

.. versionadded:: 0.5 moved here from ``schedules.invariants``, so every drill can use it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from pytest_drdrill.results import SplitBrainOverlap, SplitBrainWatch, WatchedServer

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["Answer", "Span", "SplitBrain", "split_brains", "summarize", "writable_spans"]


@dataclasses.dataclass(frozen=True)
class Answer:
    """One server's reply to one watcher poll, or its silence.

    :param node: the server, e.g. ``pg-primary``.
    :param sent: monotonic stamp when the poll was sent.
    :param received: monotonic stamp when the reply (or the error) came.
    :param in_recovery: ``pg_is_in_recovery()``; ``None`` without a reply.
    :param read_only: ``transaction_read_only``; ``None`` without a reply.
    :param started: the postmaster's start time (epoch seconds): tells a server process
        from a later one on the same data directory.
    :param sync_names: its ``synchronous_standby_names`` setting.
    :param in_sync: standbys its ``pg_stat_replication`` showed with ``sync_state`` sync.
    :param error: why there was no reply.

    .. versionadded:: 0.4
    """

    node: str
    sent: float
    received: float
    in_recovery: bool | None = None
    read_only: bool | None = None
    started: float | None = None
    sync_names: str = ""
    in_sync: tuple[str, ...] = ()
    error: str = ""

    @property
    def writable(self) -> bool:
        """The server said it accepts writes: a primary, not read-only."""
        return self.in_recovery is False and self.read_only is False


@dataclasses.dataclass(frozen=True)
class Span:
    """A time during which one server was certainly writable.

    :param node: the server.
    :param start: the reply to the first of its consecutive writable answers.
    :param end: the poll of the last of them.
    :param answers: how many consecutive writable answers prove it.

    .. versionadded:: 0.4
    """

    node: str
    start: float
    end: float
    answers: int


@dataclasses.dataclass(frozen=True)
class SplitBrain:
    """Two servers writable at once, from ``start`` to ``end`` at least.

    .. versionadded:: 0.4
    """

    first: Span
    second: Span
    start: float
    end: float


def writable_spans(answers: Iterable[Answer]) -> list[Span]:
    """The spans each server was certainly writable, from runs of consecutive writable answers.

    A run is broken by any other answer of that server (standby, read-only, silence) and
    by a new server process (another ``started``). A single answer proves an instant,
    not a span, and yields nothing.

    .. versionadded:: 0.4
    """
    by_node: dict[str, list[Answer]] = {}
    for answer in sorted(answers, key=lambda a: a.sent):
        by_node.setdefault(answer.node, []).append(answer)
    spans: list[Span] = []
    for node, polled in by_node.items():
        run: list[Answer] = []
        for answer in polled:
            if answer.writable and run and run[-1].started == answer.started:
                run.append(answer)
                continue
            spans.extend(_span(node, run))
            run = [answer] if answer.writable else []
        spans.extend(_span(node, run))
    return sorted(spans, key=lambda s: s.start)


def _span(node: str, run: Sequence[Answer]) -> list[Span]:
    if len(run) < 2 or not run[0].received < run[-1].sent:
        return []
    return [Span(node, run[0].received, run[-1].sent, len(run))]


def split_brains(spans: Sequence[Span]) -> list[SplitBrain]:
    """Every pair of spans of different servers that overlap in time.

    .. versionadded:: 0.4
    """
    found = []
    for i, first in enumerate(spans):
        for second in spans[i + 1 :]:
            if second.node == first.node:
                continue
            start, end = max(first.start, second.start), min(first.end, second.end)
            if start < end:
                found.append(SplitBrain(first, second, start, end))
    return found


def summarize(
    answers: Iterable[Answer],
    *,
    watched: Iterable[str],
    error: str | None = None,
    unwatched: Sequence[str] = (),
) -> SplitBrainWatch:
    """What the watcher saw, for a drill's result: polls per server and every overlap.

    :param watched: the servers the watcher asked, so one that never answered still
        shows with its polls.
    :param error: why the watcher stopped early, if it crashed.
    :param unwatched: servers it could not ask directly, each with the reason.

    .. versionadded:: 0.5
    """
    answers = list(answers)
    servers = tuple(
        WatchedServer(
            name,
            polls=sum(a.node == name for a in answers),
            answered=sum(a.node == name and not a.error for a in answers),
        )
        for name in watched
    )
    overlaps = tuple(
        SplitBrainOverlap(
            first=b.first.node,
            second=b.second.node,
            start=b.start,
            end=b.end,
            first_answers=b.first.answers,
            second_answers=b.second.answers,
        )
        for b in split_brains(writable_spans(answers))
    )
    return SplitBrainWatch(servers, overlaps, error=error, unwatched=tuple(unwatched))
