"""Reading and writing the durations that RTO, RPO and MTD values are given in.

The targets file borrows the business-continuity documents' spelling
(``15_minutes``, ``1_hour``, ``30_days``); people typing on a command line
prefer ``15m`` or ``1h30m``. :func:`parse_duration` reads both, plus bare
numbers of seconds, and :func:`format_duration` writes the compact form that
reports and verdicts show.
"""

from __future__ import annotations

import math
import re

from pytest_drdrill.errors import DrillError

__all__ = ["ACCEPTED_FORMS", "InvalidDuration", "format_duration", "parse_duration"]

ACCEPTED_FORMS = (
    "15_minutes, 1_hour, 2_hours, 30_days, 1_week, 15m, 900s, 1h30m, 1.5h, 250ms, "
    "or a bare number of seconds such as 900"
)
"""The forms :func:`parse_duration` accepts, as quoted in its error messages."""

_SECOND = 1.0
_MINUTE = 60.0
_HOUR = 3_600.0
_DAY = 86_400.0
_WEEK = 604_800.0

_UNITS: dict[str, float] = {
    "ms": 0.001,
    "msec": 0.001,
    "millisecond": 0.001,
    "milliseconds": 0.001,
    "s": _SECOND,
    "sec": _SECOND,
    "secs": _SECOND,
    "second": _SECOND,
    "seconds": _SECOND,
    "m": _MINUTE,
    "min": _MINUTE,
    "mins": _MINUTE,
    "minute": _MINUTE,
    "minutes": _MINUTE,
    "h": _HOUR,
    "hr": _HOUR,
    "hrs": _HOUR,
    "hour": _HOUR,
    "hours": _HOUR,
    "d": _DAY,
    "day": _DAY,
    "days": _DAY,
    "w": _WEEK,
    "wk": _WEEK,
    "week": _WEEK,
    "weeks": _WEEK,
}

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
# Longest unit names first, so that "ms" is not read as "m" followed by junk.
_UNIT = "|".join(re.escape(unit) for unit in sorted(_UNITS, key=len, reverse=True))
_BARE = re.compile(_NUMBER)
_PART = re.compile(rf"({_NUMBER})[\s_]*({_UNIT})(?![a-z])[\s_]*")


class InvalidDuration(DrillError, ValueError):
    """A duration could not be read: empty, negative, not finite or in no accepted form.

    .. versionadded:: 0.1
    """


def parse_duration(value: str | int | float, *, where: str = "") -> float:
    """Read a duration and return it in seconds.

    Accepted forms:

    * the requirement documents' ``<number>_<unit>``: ``15_minutes``, ``1_hour``,
      ``2_hours``, ``30_days``, ``1_week``;
    * short forms, alone or combined from the largest unit down: ``15m``, ``900s``,
      ``1h30m``, ``1.5h``, ``250ms``, ``2d12h``, ``1h 30m``;
    * a bare number, read as seconds: ``900``, ``12.5``, or an ``int``/``float``.

    Units are ``ms``, ``s``, ``m``, ``h``, ``d`` and ``w`` and their long names,
    singular or plural, in any letter case. Zero is allowed (an RPO of zero is what
    synchronous replication promises).

    .. versionadded:: 0.1

    :param value: the text or number to read.
    :param where: where the value came from, e.g. ``tiers.tier_1_critical.target`` or
        ``--drill-observe``; it starts the error message.
    :returns: the duration in seconds, never negative.
    :raises InvalidDuration: (a :class:`ValueError`) when the value is empty, negative,
        not finite or in none of the accepted forms; the message quotes the value and
        lists the accepted forms.
    """
    prefix = f"{where}: " if where else ""
    if isinstance(value, bool):
        raise InvalidDuration(
            f"{prefix}{value!r} is a boolean, not a duration; write one of {ACCEPTED_FORMS}"
        )
    if isinstance(value, int | float):
        return _checked(float(value), value, prefix)

    text = str(value).strip().lower()
    if not text:
        raise InvalidDuration(f"{prefix}the duration is empty; write one of {ACCEPTED_FORMS}")
    negative = text.startswith("-")
    seconds = _parse_text(text[1:].lstrip() if negative else text)
    if seconds is None:
        raise InvalidDuration(
            f"{prefix}cannot read {value!r} as a duration; write one of {ACCEPTED_FORMS}"
        )
    return _checked(-seconds if negative else seconds, value, prefix)


def _checked(seconds: float, value: object, prefix: str) -> float:
    if not math.isfinite(seconds):
        raise InvalidDuration(
            f"{prefix}duration {value!r} is not a finite number; write one of {ACCEPTED_FORMS}"
        )
    if seconds < 0:
        raise InvalidDuration(
            f"{prefix}duration {value!r} is negative; a duration is zero or more, "
            f"written as one of {ACCEPTED_FORMS}"
        )
    return seconds


def _parse_text(text: str) -> float | None:
    if _BARE.fullmatch(text):
        return float(text)
    total = 0.0
    previous_unit = math.inf
    position = 0
    while position < len(text):
        match = _PART.match(text, position)
        if match is None:
            return None
        unit = _UNITS[match.group(2)]
        # Parts must go from larger units to smaller ones, so "5m5m" or "30s1h"
        # (almost certainly typos) are refused rather than silently added up.
        if unit >= previous_unit:
            return None
        previous_unit = unit
        total += float(match.group(1)) * unit
        position = match.end()
    return total if position else None


def format_duration(seconds: float) -> str:
    """Write a duration compactly, as reports and verdicts show it.

    * under a minute, with two decimals: ``0.31s``, ``12.50s``;
    * under an hour, to the second: ``16m02s``;
    * under a day, to the second: ``1h05m00s``;
    * a day or more, to the minute: ``2d03h00m``.

    Every result reads back with :func:`parse_duration`, within that rounding.
    A negative value (a difference of two durations) gets a leading ``-``.

    .. versionadded:: 0.1

    :param seconds: the duration.
    :returns: the formatted text.
    :raises ValueError: when *seconds* is NaN or infinite.
    """
    if not math.isfinite(seconds):
        raise ValueError(f"cannot format {seconds!r} seconds as a duration: not a finite number")
    if seconds < 0:
        return "-" + format_duration(-seconds)
    text = f"{seconds:.2f}"
    # Decide on the rounded text, so 59.999 becomes "1m00s" and not "60.00s".
    if float(text) < _MINUTE:
        return f"{text}s"
    whole = round(seconds)
    if whole < _HOUR:
        minutes, secs = divmod(whole, 60)
        return f"{minutes}m{secs:02d}s"
    if whole < _DAY:
        hours, rest = divmod(whole, 3_600)
        minutes, secs = divmod(rest, 60)
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    days, rest = divmod(round(seconds / _MINUTE), 1_440)
    hours, minutes = divmod(rest, 60)
    return f"{days}d{hours:02d}h{minutes:02d}m"
