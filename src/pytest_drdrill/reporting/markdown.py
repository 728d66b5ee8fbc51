"""How the Markdown documents write a table and its values: money, memory, durations.

Plain text in, Markdown lines out; :mod:`.html_format` does the same for ``report.html``,
where a missing value reads "—" rather than "-".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_drdrill.durations import format_duration

if TYPE_CHECKING:
    from collections.abc import Sequence


def cell(value: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table's lines, header first, ending with a blank line."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def money(amount: float, currency: str) -> str:
    """An amount with cents below 100, whole above, thousands separated."""
    return f"{amount:,.2f} {currency}" if amount < 100 else f"{amount:,.0f} {currency}"


def mib(n: int) -> str:
    """A byte count in whole MiB."""
    return f"{n / 2**20:.0f} MiB"


def maybe_duration(seconds: float | None) -> str:
    """A duration, or "-" when there is none."""
    return "-" if seconds is None else format_duration(seconds)
