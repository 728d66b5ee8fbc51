"""What the report's plots show, read from ``drill.json``: times, outages, availability.

Plain data, no matplotlib: the offsets of faults and outages from a drill's start,
availability per bucket, re-bucketed counts and lag series, so the HTML report can name
the outage window in words and the plots can draw it.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence


#: At most this many points per service are drawn; longer timelines are re-bucketed,
#: so an hour-long drill does not turn into a multi-megabyte page.
MAX_POINTS = 600


COUNT_KEYS = ("acknowledged", "failed", "indeterminate", "probes_ok", "probes_failed")


def seconds_between(start: str, stamp: str | None) -> float | None:
    """Return the seconds from one ISO 8601 timestamp to another.

    .. versionadded:: 0.3

    :param start: the origin, e.g. a drill's ``started_at``.
    :param stamp: the later instant, or ``None``.
    :returns: ``stamp - start`` in seconds, or ``None`` when *stamp* is ``None``.
    :raises ValueError: when either text is not an ISO 8601 timestamp.
    """
    if stamp is None:
        return None
    origin = _dt.datetime.fromisoformat(start)
    return (_dt.datetime.fromisoformat(stamp) - origin).total_seconds()


def outage_window(
    drill: Mapping[str, Any], rto: Mapping[str, Any] | None = None
) -> tuple[float, float | None] | None:
    """Return where a measured outage starts and ends, in seconds since the drill started.

    .. versionadded:: 0.3

    :param drill: one drill of ``drill.json``.
    :param rto: an ``rto`` object of that drill (a service's, a function's); the drill's
        own when omitted.
    :returns: ``(start, recovered)``, with ``recovered`` ``None`` when the service never
        recovered; ``None`` when no outage was seen.
    """
    rto = drill.get("rto") if rto is None else rto
    if not rto or not rto.get("outage_started_at"):
        return None
    start = seconds_between(drill["started_at"], rto["outage_started_at"])
    assert start is not None
    return start, seconds_between(drill["started_at"], rto.get("recovered_at"))


def availability(counts: Mapping[str, Sequence[int]]) -> list[float | None]:
    """Judge, bucket by bucket, whether one service was available.

    A bucket is ``1.0`` when it holds an acknowledged write or a successful probe and no
    failure, ``0.0`` when it holds only failures (failed writes, failed probes), ``0.5``
    when it holds both (the service went down or came back within it) and ``None`` when
    nothing completed in it. Writes of unknown outcome (``indeterminate``) count as
    neither: a timeout proves nothing about the server.

    .. versionadded:: 0.3

    :param counts: the service's entry of ``timeline.services``: lists of counts per
        bucket under ``acknowledged``, ``failed``, ``probes_ok`` and ``probes_failed``
        (missing lists count as zeros).
    :returns: one value per bucket.
    """
    length = max((len(counts.get(key) or ()) for key in COUNT_KEYS), default=0)
    good = _add(length, counts.get("acknowledged"), counts.get("probes_ok"))
    bad = _add(length, counts.get("failed"), counts.get("probes_failed"))
    states: list[float | None] = []
    for ok, failed in zip(good, bad, strict=True):
        if ok and failed:
            states.append(0.5)
        elif ok:
            states.append(1.0)
        elif failed:
            states.append(0.0)
        else:
            states.append(None)
    return states


def fault_spans(drill: Mapping[str, Any]) -> list[tuple[float, float | None]]:
    """Each fault's injection and healing, in seconds from the drill's start.

    A fault never healed ends at ``None``.
    """
    faults = list(drill.get("faults") or ())
    if not faults and drill.get("fault"):
        faults = [drill["fault"]]
    return [
        (
            float(fault["injected_offset_seconds"]),
            None
            if fault.get("healed_offset_seconds") is None
            else float(fault["healed_offset_seconds"]),
        )
        for fault in faults
    ]


def outage_spans(drill: Mapping[str, Any]) -> dict[str | None, tuple[float, float | None]]:
    """Map ``None`` to the drill's outage and each service to its own, when seen."""
    outages: dict[str | None, tuple[float, float | None]] = {}
    window = outage_window(drill)
    if window is not None:
        outages[None] = window
    for service in drill.get("services") or ():
        window = outage_window(drill, service.get("rto") or {})
        if window is not None:
            outages[str(service.get("service"))] = window
    return outages


def lag_series(
    samples: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, list[tuple[float, float, bool]]], dict[str, list[tuple[float, float, bool]]]]:
    """Replication lag per replica: those reporting bytes, then those reporting seconds."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for sample in samples:
        grouped.setdefault(f"{sample.get('service')}/{sample.get('node')}", []).append(sample)
    in_bytes: dict[str, list[tuple[float, float, bool]]] = {}
    in_seconds: dict[str, list[tuple[float, float, bool]]] = {}
    for label, group in grouped.items():
        group.sort(key=lambda sample: float(sample["offset_seconds"]))
        # A replica is plotted in one unit only: bytes when it reports them at all.
        unit = "bytes" if any(s.get("bytes") is not None for s in group) else "seconds"
        points = [
            (float(s["offset_seconds"]), float(s[unit]), bool(s.get("healthy", True)))
            for s in group
            if s.get(unit) is not None
        ]
        if points:
            (in_bytes if unit == "bytes" else in_seconds)[label] = points
    return in_bytes, in_seconds


def plot_end(
    drill: Mapping[str, Any],
    faults: Sequence[tuple[float, float | None]],
    outages: Mapping[str | None, tuple[float, float | None]],
    services: Mapping[str, Mapping[str, Sequence[int]]],
    bucket: float,
    *lag: Mapping[str, Sequence[tuple[float, float, bool]]],
) -> float:
    """Where the time axis ends: the last moment anything drawn happened, or the drill's end."""
    candidates = [float(drill.get("duration_seconds") or 0.0)]
    candidates += [x for fault in faults for x in fault if x is not None]
    candidates += [x for window in outages.values() for x in window if x is not None]
    candidates += [
        float(p["started_offset_seconds"]) + float(p["seconds"]) for p in drill.get("phases") or ()
    ]
    candidates += [bucket * bucket_count(counts) for counts in services.values()]
    candidates += [x for series in lag for points in series.values() for x, _, _ in points]
    return max(candidates) or 1.0


def _add(length: int, *lists: Sequence[int] | None) -> list[int]:
    total = [0] * length
    for values in lists:
        for i, value in enumerate(values or ()):
            total[i] += int(value)
    return total


def bucket_count(counts: Mapping[str, Sequence[int]]) -> int:
    """How many buckets a service's timeline holds."""
    return max((len(counts.get(key) or ()) for key in COUNT_KEYS), default=0)


def rebin(values: Sequence[int] | None, factor: int) -> list[int]:
    """Sum every ``factor`` consecutive buckets into one."""
    values = list(values or ())
    if factor == 1:
        return values
    return [sum(values[i : i + factor]) for i in range(0, len(values), factor)]


def state_runs(states: Sequence[float | None], state: float) -> list[tuple[int, int]]:
    """Return ``(first, count)`` of each run of consecutive buckets in *state*."""
    runs: list[tuple[int, int]] = []
    for i, value in enumerate(states):
        if value != state:
            continue
        if runs and runs[-1][0] + runs[-1][1] == i:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((i, 1))
    return runs


def as_number(value: object) -> float:
    """A number from the document as a float; NaN (not drawn) when it is missing."""
    return float(value) if isinstance(value, int | float) else math.nan
