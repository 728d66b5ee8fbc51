"""Live progress of a drill in the terminal: faults and recovery phases as they happen.

A game day is watched by people; a drill that sits silent for a minute while the
orchestrator fails over looks hung. When pytest writes to a terminal, each fault and
each recovery phase is printed the moment it is recorded, and the run ends with a
table of every drill. When the output is a file or a CI log, nothing here prints: the
plain summary lines of the report collector are enough there.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from pytest_drdrill.durations import format_duration
from pytest_drdrill.results import FaultRecord, Phase, Verdict

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from contextlib import AbstractContextManager

    from rich.console import Console

    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.results import DrillResult

_VERDICT_STYLE = {
    Verdict.PASS: "bold green",
    Verdict.WARN: "bold yellow",
    Verdict.FAIL: "bold red",
    Verdict.INCONCLUSIVE: "bold magenta",
    Verdict.ABORTED: "bold white on red",
}


class LiveProgress:
    """Prints a drill's events as they are recorded, from any thread.

    :param console: where to print; a terminal console in real runs.
    :param guard: entered around each print: in a pytest run it suspends output capture
        and ends pytest's own progress line first, as pytest's live logging does.

    .. versionadded:: 0.3
    """

    def __init__(
        self, console: Console, guard: Callable[[], AbstractContextManager[object]] | None = None
    ) -> None:
        self.console = console
        self._guard = guard or contextlib.nullcontext
        self._lock = threading.Lock()

    def watch(self, record: DrillRecord) -> None:
        """Print ``record``'s faults and phases as they are recorded."""
        scenario = record.scenario
        started = record.started_at

        def on_event(kind: str, item: object) -> None:
            if isinstance(item, FaultRecord):
                self._line(
                    f"[bold cyan]{scenario}[/] +{item.injected_at - started:.2f}s "
                    f"[bold]fault[/] {item.kind} of {item.target}"
                )
            elif isinstance(item, Phase):
                state = "[green]ok[/]" if item.ok else "[red]FAILED[/]"
                self._line(
                    f"[bold cyan]{scenario}[/] +{item.started - started:.2f}s "
                    f"[bold]{item.name}[/] {item.seconds * 1000:.0f} ms {state} "
                    f"[dim]{item.detail[:100]}[/]"
                )

        record.subscribe(on_event)

    def _line(self, text: str) -> None:
        with self._lock, self._guard():
            self.console.print(text, highlight=False, soft_wrap=True)

    def summary(self, results: Sequence[DrillResult]) -> None:
        """Print one table row per drill: verdict, RTO, lost writes, target."""
        from rich.table import Table

        table = Table(title="disaster-recovery drills", title_justify="left")
        for column in ("verdict", "scenario", "RTO", "lost", "target"):
            table.add_column(column, justify="right" if column in ("RTO", "lost") else "left")
        for r in results:
            if r.negative_control:
                verdict = "[bold green]RED (ok)[/]" if r.as_expected else "[bold red]NOT RED[/]"
            else:
                verdict = f"[{_VERDICT_STYLE[r.verdict]}]{r.verdict.value.upper()}[/]"
            rto = "-" if r.rto is None or r.rto.seconds is None else format_duration(r.rto.seconds)
            lost = "-" if r.rpo is None else str(r.rpo.lost_writes)
            target = "-" if r.target is None else r.target.name
            table.add_row(verdict, r.scenario, rto, lost, target)
        with self._lock:
            self.console.print(table)
