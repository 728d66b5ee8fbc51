"""What the run history says: the RTO trend per scenario, regressions, the drill cadence.

From the lines of ``reports/history.jsonl`` (:mod:`pytest_drdrill.reporting.history`)
come the RTO trend per scenario (:func:`trend`), the regressions of the latest run
against its predecessors (:func:`find_regressions`) and the tiers whose drills have not
passed as often as their cadence demands (:func:`check_cadence`).

Percentiles are linearly interpolated between closest ranks (Hyndman and Fan's type 7,
the default of ``numpy.percentile``), so the p50 of two runs is their mean.

.. versionadded:: 0.5
   Split from :mod:`pytest_drdrill.reporting.history`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from typing import TYPE_CHECKING, Any

from pytest_drdrill.reporting.history import HISTORY_FILENAME, epoch_of

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence


#: How long each cadence may go without a passing drill, in days, most frequent first.
CADENCE_WINDOW_DAYS: Mapping[str, int] = {"daily": 1, "weekly": 7, "monthly": 31, "quarterly": 92}


_PASSING = frozenset({"pass", "warn"})


_DAY = 86_400.0


#: Run settings that start a series of their own, with the value that needs no suffix.
SERIES_KEYS = (("backend", "local"), ("postgres_failover", "reference"), ("backup_tool", "builtin"))


def _chronological(entries: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    # Two runs finishing together may append out of start order; a stable sort keeps
    # file order for equal starts.
    usable = [entry for entry in entries if epoch_of(entry["started_at"]) is not None]
    return sorted(usable, key=lambda entry: epoch_of(entry["started_at"]) or 0.0)


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-quantile of ``values``, linearly interpolated between ranks.

    .. versionadded:: 0.3

    :param values: at least one number, in any order.
    :param q: the quantile, from 0 to 1 (0.5 is the median).
    :returns: the interpolated quantile (type 7 of Hyndman and Fan).
    :raises ValueError: on no values or a quantile outside [0, 1].
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside [0, 1]")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def trend(
    entries: Iterable[Mapping[str, Any]],
    *,
    scenarios: Collection[str] | None = None,
) -> dict[str, Any]:
    """Summarise each scenario's drills per run, oldest run first, with regressions.

    Negative controls are left out: their failure is the expected outcome. A drill
    counts as passed when its verdict is ``pass`` or ``warn`` and as failed otherwise.
    Drills without an RTO (no recovery was seen, or none was expected) are left out of
    the percentiles; a run whose drills of a scenario have no RTO at all gets
    ``rto_p50`` and ``rto_p95`` of None.

    .. versionadded:: 0.3
    .. versionchanged:: 0.9 a series per HA stack and backup tool too.

    :param entries: history entries, e.g. a
        :class:`~pytest_drdrill.reporting.history.History`; any order.
    :param scenarios: only these scenarios (default: every scenario in the history).
    :returns: ``{"scenarios": {scenario: [point, ...]}, "regressions": [...]}``, each
        scenario of a backend, HA stack or backup tool other than the default under
        ``"<scenario> (<backend>) (<stack>) (<tool>)"`` (:data:`SERIES_KEYS`), each
        point ``{"run_id", "started_at", "n", "rto_p50", "rto_p95", "passed",
        "failed"}`` and the regressions as :func:`find_regressions` returns them.
    """
    series = _series(entries, scenarios)
    return {
        "scenarios": series,
        "regressions": _regressions(series, window=5, min_runs=3, noise=_Noise()),
    }


def _series(
    entries: Iterable[Mapping[str, Any]], scenarios: Collection[str] | None
) -> dict[str, list[dict[str, Any]]]:
    series: dict[str, list[dict[str, Any]]] = {}
    for entry in _chronological(entries):
        by_scenario: dict[str, list[Mapping[str, Any]]] = {}
        for drill in entry["drills"]:
            scenario = drill.get("scenario")
            if drill.get("negative_control") or not isinstance(scenario, str):
                continue
            if scenarios is not None and scenario not in scenarios:
                continue
            by_scenario.setdefault(scenario, []).append(drill)
        # Backends, HA stacks and backup tools differ in their RTOs by design (a killed
        # container times out where a killed process refuses; pg_auto_failover waits out
        # its health checks): each gets its own series, so a Docker or Patroni run is never
        # taken for a regression of the reference ones.
        suffix = "".join(
            f" ({entry[key]})"
            for key, default in SERIES_KEYS
            if entry.get(key) not in (None, default)
        )
        for scenario, drills in by_scenario.items():
            series.setdefault(scenario + suffix, []).append(_point(entry, drills))
    return series


def _point(entry: Mapping[str, Any], drills: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    rtos = [
        float(drill["rto_seconds"])
        for drill in drills
        if isinstance(drill.get("rto_seconds"), int | float)
    ]
    passed = sum(1 for drill in drills if drill.get("verdict") in _PASSING)
    return {
        "run_id": entry["run_id"],
        "started_at": entry["started_at"],
        "n": len(drills),
        "rto_p50": percentile(rtos, 0.5) if rtos else None,
        "rto_p95": percentile(rtos, 0.95) if rtos else None,
        "passed": passed,
        "failed": len(drills) - passed,
    }


@dataclasses.dataclass(frozen=True)
class _Noise:
    """How far a run's RTO p50 may stray from its predecessors' median by chance.

    The spread is the median absolute deviation scaled to a normal standard deviation
    (1.4826) times ``factor``: unlike a standard deviation, one wild earlier run does
    not widen it. Five runs can agree by luck to within milliseconds, so the floor keeps
    a 2 ms rise from being a regression: 10 % of the baseline, and never less than one
    health-check interval of the reference monitor (``--drill-health-interval``, 100 ms
    by default), since where a fault lands between two checks moves the RTO by up to
    that much.
    """

    factor: float = 3.0
    relative_floor: float = 0.10
    absolute_floor_seconds: float = 0.1

    def of(self, baseline: float, values: Sequence[float]) -> float:
        mad = percentile([abs(value - baseline) for value in values], 0.5)
        floor = max(self.relative_floor * baseline, self.absolute_floor_seconds)
        return max(self.factor * 1.4826 * mad, floor)


def find_regressions(
    entries: Iterable[Mapping[str, Any]],
    *,
    window: int = 5,
    min_runs: int = 3,
    noise_factor: float = 3.0,
    relative_floor: float = 0.10,
    absolute_floor_seconds: float = 0.1,
    scenarios: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Flag scenarios whose latest RTO p50 rose beyond the noise of the runs before it.

    For each scenario, the latest run with an RTO is compared with the median p50 of
    the up to ``window`` runs with an RTO before it. The noise allowed is
    ``noise_factor × 1.4826 × MAD`` of those p50s, but at least
    ``max(relative_floor × median, absolute_floor_seconds)``; a rise beyond it is a
    regression. Negative controls never count.

    .. versionadded:: 0.3
    .. versionchanged:: 0.9 a series per HA stack and backup tool too.

    :param entries: history entries, e.g. a
        :class:`~pytest_drdrill.reporting.history.History`; any order.
    :param window: how many earlier runs form the baseline.
    :param min_runs: fewer earlier runs than this and nothing is flagged.
    :param noise_factor: how many robust standard deviations count as noise.
    :param relative_floor: least noise, as a fraction of the baseline median.
    :param absolute_floor_seconds: least noise in seconds.
    :param scenarios: only these scenarios (default: all).
    :returns: one dict per regression: ``scenario``, ``run_id``, ``rto_p50``,
        ``baseline_p50``, ``noise_seconds`` and a readable ``detail``.
    :raises ValueError: when ``window`` or ``min_runs`` is below 1, or ``min_runs``
        exceeds ``window`` (nothing could ever be flagged).
    """
    if window < 1 or min_runs < 1 or min_runs > window:
        raise ValueError(
            f"find_regressions(window={window}, min_runs={min_runs}): both must be at "
            "least 1 and min_runs at most window"
        )
    series = _series(entries, scenarios)
    noise = _Noise(noise_factor, relative_floor, absolute_floor_seconds)
    return _regressions(series, window=window, min_runs=min_runs, noise=noise)


def _regressions(
    series: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    window: int,
    min_runs: int,
    noise: _Noise,
) -> list[dict[str, Any]]:
    found = []
    for scenario, points in series.items():
        measured = [point for point in points if point["rto_p50"] is not None]
        if len(measured) < min_runs + 1:
            continue
        latest = measured[-1]
        previous = [point["rto_p50"] for point in measured[-1 - window : -1]]
        baseline = percentile(previous, 0.5)
        allowed = noise.of(baseline, previous)
        rise = latest["rto_p50"] - baseline
        if rise <= allowed:
            continue
        found.append(
            {
                "scenario": scenario,
                "run_id": latest["run_id"],
                "rto_p50": latest["rto_p50"],
                "baseline_p50": baseline,
                "noise_seconds": allowed,
                "detail": (
                    f"RTO p50 {latest['rto_p50']:.2f}s is {rise:.2f}s above the median of "
                    f"the previous {len(previous)} runs ({baseline:.2f}s), beyond their "
                    f"noise of {allowed:.2f}s"
                ),
            }
        )
    return found


def last_passed(entries: Iterable[Mapping[str, Any]]) -> dict[str, tuple[float, str]]:
    """When each tier last passed a drill, at any cadence.

    A drill counts for its tier as :func:`check_cadence` counts it: not a negative
    control, verdict ``pass`` or ``warn``. Dashboards compare the age of that pass with
    the tier's cadence themselves, so no cadence is applied here.

    .. versionadded:: 0.6

    :param entries: history entries, e.g. a
        :class:`~pytest_drdrill.reporting.history.History`; any order.
    :returns: tier to ``(epoch seconds of the run's start, run id)`` of the latest run
        in which a drill of that tier passed; tiers that never passed are absent.
    """
    last: dict[str, tuple[float, str]] = {}
    for entry in _chronological(entries):
        started = epoch_of(entry["started_at"]) or 0.0
        for drill in entry["drills"]:
            tier = drill.get("tier")
            if drill.get("negative_control") or drill.get("verdict") not in _PASSING:
                continue
            if isinstance(tier, str):
                last[tier] = (started, entry["run_id"])
    return last


@dataclasses.dataclass(frozen=True)
class CadenceViolation:
    """A tier whose drills have not passed within the window of its required cadence.

    .. versionadded:: 0.3

    :param tier: the tier's name, e.g. ``tier_1_critical``.
    :param cadence: the cadence the tier requires.
    :param window_days: how many days that cadence allows between passing drills.
    :param last_passed: epoch seconds of the start of the last run in which a drill of
        this tier, at this cadence or a more frequent one, passed; None if never.
    :param last_run_id: that run's id; None if never.
    :param now: the time the check was made, epoch seconds.
    """

    tier: str
    cadence: str
    window_days: int
    last_passed: float | None
    last_run_id: str | None
    now: float

    @property
    def message(self) -> str:
        """What is overdue, since when, and how to fix it."""
        if self.last_passed is None:
            since = "it has never passed one in the history"
        else:
            day = _dt.datetime.fromtimestamp(self.last_passed, tz=_dt.UTC).date().isoformat()
            days = (self.now - self.last_passed) / _DAY
            since = f"it last passed one on {day} ({days:.1f} days ago, run {self.last_run_id})"
        return (
            f"tier {self.tier!r} must pass a {self.cadence} drill every {self.window_days} "
            f"days; {since}. Run `pytest --drill={self.cadence}` and make the tier's drills "
            f"pass; each run is recorded in {HISTORY_FILENAME} in the report directory "
            "(--drill-report-dir)."
        )


def check_cadence(
    entries: Iterable[Mapping[str, Any]],
    schedule: Mapping[str, str],
    *,
    now: float,
) -> list[CadenceViolation]:
    """Find the tiers whose drills have not passed as often as their cadence requires.

    A tier is in time when some run started within the cadence's window
    (:data:`CADENCE_WINDOW_DAYS`) before ``now`` holds a drill of that tier, not a
    negative control, whose verdict is ``pass`` or ``warn`` and whose own cadence is the
    required one or more frequent: a daily drill also meets a weekly or monthly need.

    .. versionadded:: 0.3

    :param entries: history entries, e.g. a
        :class:`~pytest_drdrill.reporting.history.History`; any order.
    :param schedule: tier name to required cadence (daily, weekly, monthly, quarterly).
    :param now: the time to check against, epoch seconds (``timing.wall()``).
    :returns: one violation per overdue tier, in the schedule's order.
    :raises ValueError: when the schedule names an unknown cadence.
    """
    ranks = {cadence: rank for rank, cadence in enumerate(CADENCE_WINDOW_DAYS)}
    for tier, cadence in schedule.items():
        if cadence not in ranks:
            raise ValueError(
                f"cadence schedule: tier {tier!r} requires cadence {cadence!r}; use one of "
                f"{', '.join(CADENCE_WINDOW_DAYS)}"
            )
    last: dict[str, tuple[float, str]] = {}
    for entry in _chronological(entries):
        started = epoch_of(entry["started_at"]) or 0.0
        for drill in entry["drills"]:
            tier = drill.get("tier")
            rank = ranks.get(drill.get("cadence"))
            if drill.get("negative_control") or drill.get("verdict") not in _PASSING:
                continue
            if tier not in schedule or rank is None:
                continue
            if rank <= ranks[schedule[tier]]:
                last[tier] = (started, entry["run_id"])
    violations = []
    for tier, cadence in schedule.items():
        window = CADENCE_WINDOW_DAYS[cadence]
        passed, run_id = last.get(tier, (None, None))
        if passed is not None and now - passed <= window * _DAY:
            continue
        violations.append(CadenceViolation(tier, cadence, window, passed, run_id, now))
    return violations
