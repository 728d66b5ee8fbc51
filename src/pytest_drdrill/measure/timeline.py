"""A client's history counted in time buckets: the data behind the report's timeline plot.

Counts only: which write or probe landed in which bucket is all a plot needs, and the
raw history of a long drill would make ``drill.json`` large.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pytest_drdrill.measure.history import Outcome
from pytest_drdrill.results import ServiceTimeline

if TYPE_CHECKING:
    from pytest_drdrill.measure.history import History

#: The finest bucket; coarser ones keep a long drill's timeline at about MAX_BUCKETS.
MIN_BUCKET = 0.1
MAX_BUCKETS = 600


def bucket_seconds(duration: float) -> float:
    """The bucket width for a drill of ``duration`` seconds: 0.1 s, 0.2 s, 0.5 s, 1 s, 2 s….

    .. versionadded:: 0.3
    """
    wanted = max(MIN_BUCKET, duration / MAX_BUCKETS)
    exponent = math.floor(math.log10(wanted))
    for step in (1, 2, 5, 10):
        width = step * 10**exponent
        if width >= wanted - 1e-12:
            return round(width, 6)
    raise AssertionError("unreachable: 10 * 10**exponent >= wanted")


def service_timeline(
    service: str, history: History, *, start: float, end: float, bucket: float
) -> ServiceTimeline:
    """Count ``history``'s operations by the bucket in which they completed.

    .. versionadded:: 0.3

    :param service: the service the history belongs to.
    :param history: its client's history.
    :param start: monotonic stamp of offset 0 (the drill's start).
    :param end: monotonic stamp of the drill's end; later operations are left out.
    :param bucket: seconds per bucket.
    """
    # A float quotient such as 4.000000000000057 must not add an empty bucket.
    size = max(1, math.ceil((end - start) / bucket - 1e-9))
    counts = {name: [0] * size for name in ("ok", "fail", "info", "probe_ok", "probe_fail")}

    def add(name: str, completed: float) -> None:
        index = int((completed - start) // bucket)
        if 0 <= index < size:
            counts[name][index] += 1

    outcome_name = {Outcome.OK: "ok", Outcome.FAIL: "fail", Outcome.INFO: "info"}
    for op in history.writes():
        add(outcome_name[op.outcome], op.completed)
    for probe in history.probes():
        add("probe_ok" if probe.ok else "probe_fail", probe.completed)
    return ServiceTimeline(
        service=service,
        bucket=bucket,
        acknowledged=tuple(counts["ok"]),
        failed=tuple(counts["fail"]),
        indeterminate=tuple(counts["info"]),
        probes_ok=tuple(counts["probe_ok"]),
        probes_failed=tuple(counts["probe_fail"]),
    )
