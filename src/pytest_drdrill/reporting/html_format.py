"""How ``report.html`` writes values: durations, RTO and RPO, targets, times and sizes.

Each function takes a value as found in ``drill.json``, where anything may be missing,
and returns the text a reader sees ("—", "not measured"), never raising on a gap.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

from pytest_drdrill.durations import format_duration

if TYPE_CHECKING:
    from collections.abc import Mapping


def duration_text(seconds: object) -> str:
    """A duration as the page writes it.

    "—" when it is not a number, "<0.01s" when it is too short to round.
    """
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "—"
    # format_duration rounds to hundredths; a 0.2 ms phase would read as lasting nothing.
    if 0 < abs(seconds) < 0.005:
        return "<0.01s" if seconds > 0 else "-<0.01s"
    return format_duration(float(seconds))


def rto_text(rto: Mapping[str, Any] | None, seconds: object) -> str:
    """The RTO a reader sees: the duration, or why there is none.

    That is: not measured, not recovered, or no outage seen.
    """
    if isinstance(seconds, int | float):
        return duration_text(seconds)
    if not rto:
        return "not measured"
    if rto.get("effect_seen"):
        return "not recovered"
    return "no outage seen"


def rpo_text(rpo: Mapping[str, Any] | None) -> str:
    """The writes lost and the RPO window, noting unacknowledged writes found (never a loss)."""
    if not rpo:
        return "not measured"
    text = f"{lost_text(rpo)}; window {duration_text(rpo.get('window_seconds'))}"
    unacknowledged = rpo.get("unacknowledged_present") or 0
    if unacknowledged:
        text += f" ({unacknowledged} unacknowledged present, not a loss)"
    return text


def lost_text(rpo: Mapping[str, Any] | None) -> str:
    """How many acknowledged writes were lost, or "not measured"."""
    if not rpo:
        return "not measured"
    lost = int(rpo.get("lost_writes", 0))
    return f"{lost} lost acknowledged write" + ("" if lost == 1 else "s")


def target_pair(target: object, maximum: object) -> str:
    """A target duration with its maximum in brackets, or "—" without a target."""
    if not isinstance(target, int | float):
        return "—"
    text = duration_text(target)
    if isinstance(maximum, int | float):
        text += f" (max {duration_text(maximum)})"
    return text


def rpo_target(target: Mapping[str, Any]) -> str:
    """The RPO target: the window and the number of writes allowed lost, whichever are set."""
    parts = []
    if isinstance(target.get("rpo_target_seconds"), int | float):
        parts.append(target_pair(target["rpo_target_seconds"], target.get("rpo_max_seconds")))
    if target.get("max_lost_writes") is not None:
        parts.append(f"at most {target['max_lost_writes']} lost")
    return "; ".join(parts) or "—"


def target_name(target: Mapping[str, Any] | None) -> str:
    """The target's name and kind, or "none"."""
    if not target:
        return "none"
    return f"{target.get('name', '')} ({target.get('kind', '')})"


def timestamp(stamp: object) -> str:
    """An ISO 8601 time from the document as UTC to the second; other text as it is."""
    if not isinstance(stamp, str):
        return "—"
    try:
        moment = _dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.tzinfo is not None:
        moment = moment.astimezone(_dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def size_text(count: object) -> str:
    """A byte count in B, KiB, MiB or GiB."""
    if not isinstance(count, int | float):
        return "—"
    value, unit = float(count), "B"
    for bigger in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
