"""The human-readable drill report, ``report.html``.

One self-contained page per run, for people who never read the code: the run's
overall verdict, a table of drills against their targets, the negative controls, the
impact on each business function, and per drill its faults, phases, timeline plot,
services, notifications and resources; with a trend object, each scenario's RTO across
runs and any regression. The page loads nothing: styles are inline and plots are inline
SVG, so it opens the same from a CI artifact, a mail attachment or an air-gapped laptop.

The page is rendered from ``drill.json`` (a dict), never from live objects, so a report
can be rebuilt from any stored run. Every text from the document is escaped by jinja2's
autoescaping; only the SVG drawn by :mod:`pytest_drdrill.reporting.plots` is inserted
as markup.

.. versionadded:: 0.3
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as _dt
import functools
import importlib.resources
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup

from pytest_drdrill.durations import format_duration
from pytest_drdrill.reporting import plots
from pytest_drdrill.reporting.files import write_atomic

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from pytest_drdrill.reporting.writer import RunResults

__all__ = ["FILENAME", "render_html", "write_html"]

#: File name of the report inside the report directory.
FILENAME = "report.html"

_TEMPLATE_DIR = "templates"
_TEMPLATE = "report.html.j2"
_SEVERITY = {"fail": 3, "warn": 2, "inconclusive": 1, "pass": 0}


@dataclasses.dataclass(frozen=True)
class _Badge:
    """A verdict as shown: a CSS class for its colour plus the words that carry it."""

    kind: str
    text: str
    symbol: str


_BADGES = {
    "pass": _Badge("pass", "PASS", "✓"),
    "warn": _Badge("warn", "WARN", "!"),
    "fail": _Badge("fail", "FAIL", "✗"),
    "inconclusive": _Badge("inconclusive", "INCONCLUSIVE", "?"),
    "not_required": _Badge("neutral", "NOT REQUIRED", "–"),
}
_WENT_RED = _Badge("expected", "WENT RED AS REQUIRED", "✓")
_NOT_RED = _Badge("fail", "DID NOT GO RED", "✗")
_REGRESSION = _Badge("fail", "REGRESSION", "▲")
_NO_REGRESSION = _Badge("pass", "NO REGRESSION", "✓")


@dataclasses.dataclass(frozen=True)
class _DrillRow:
    """One real drill in the summary table."""

    anchor: str
    scenario: str
    name: str
    cadence: str
    target: str
    rto: str
    rto_target: str
    margin: str
    margin_short: bool
    rpo: str
    rpo_target: str
    badge: _Badge


@dataclasses.dataclass(frozen=True)
class _ControlRow:
    """One negative control: a drill whose recovery is broken on purpose."""

    anchor: str
    scenario: str
    name: str
    verdict: _Badge
    badge: _Badge
    reason: str


@dataclasses.dataclass(frozen=True)
class _FunctionRow:
    """One business function, in one drill or summed up over the run."""

    function: str
    services: str
    not_exercised: str
    drills: str
    rto: str
    rto_target: str
    lost_writes: str
    badge: _Badge
    reason: str


@dataclasses.dataclass(frozen=True)
class _FaultRow:
    """One injected fault, with offsets from the drill's start."""

    kind: str
    target: str
    injected: str
    healed: str
    lasted: str


@dataclasses.dataclass(frozen=True)
class _PhaseRow:
    """One recovery phase."""

    name: str
    start: str
    duration: str
    badge: _Badge
    detail: str


@dataclasses.dataclass(frozen=True)
class _ServiceRow:
    """One service's verdict within a drill."""

    service: str
    badge: _Badge
    rto: str
    lost_writes: str
    acknowledged: str
    reason: str


@dataclasses.dataclass(frozen=True)
class _NotificationRow:
    """One notification sent (or withheld) during a drill."""

    template: str
    audience: str
    sink: str
    timing: str
    delivered: str
    approval: str
    badge: _Badge
    detail: str


@dataclasses.dataclass(frozen=True)
class _Resources:
    """Processes and memory a drill's topology used."""

    processes: str
    memory: str
    nodes: tuple[tuple[str, str, str], ...]


@dataclasses.dataclass(frozen=True)
class _DrillSection:
    """Everything shown for one drill in its own section."""

    anchor: str
    scenario: str
    name: str
    negative_control: bool
    badge: _Badge
    reason: str
    facts: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    faults: tuple[_FaultRow, ...]
    phases: tuple[_PhaseRow, ...]
    plot: Markup
    timeline_missing: bool
    services: tuple[_ServiceRow, ...]
    functions: tuple[_FunctionRow, ...]
    notifications: tuple[_NotificationRow, ...] | None
    resources: _Resources | None


@dataclasses.dataclass(frozen=True)
class _TrendRow:
    """One run of one scenario in the trend table."""

    run_id: str
    started: str
    drills: str
    p50: str
    p95: str
    passed: str
    failed: str
    regressed: bool


@dataclasses.dataclass(frozen=True)
class _TrendScenario:
    """One scenario's history: a plot and its table."""

    scenario: str
    plot: Markup
    rows: tuple[_TrendRow, ...]


@dataclasses.dataclass(frozen=True)
class _Regression:
    """One regression flagged by the trend analysis."""

    scenario: str
    run_id: str
    detail: str


@dataclasses.dataclass(frozen=True)
class _Trend:
    """The trend section."""

    regressions: tuple[_Regression, ...]
    scenarios: tuple[_TrendScenario, ...]


def render_html(document: Mapping[str, Any], *, trend: Mapping[str, Any] | None = None) -> str:
    """Render a run's ``drill.json`` document as one self-contained HTML page.

    .. versionadded:: 0.3

    :param document: the parsed ``drill.json`` (see ``drill.schema.json``); keys added
        after schema version 1 (``timeline``, ``resources``, ``notifications``,
        ``expected_verdict``, ``services``...) are optional.
    :param trend: the run history from :mod:`pytest_drdrill.reporting.history`
        (``scenarios`` and ``regressions``); the trend section is left out without it.
    :returns: the page's HTML text.
    :raises ValueError: when the document lacks its ``run`` object or ``drills`` list.
    """
    run = document.get("run")
    drills = document.get("drills")
    if not isinstance(run, Mapping) or not isinstance(drills, list):
        missing = "run" if not isinstance(run, Mapping) else "drills"
        raise ValueError(
            f"cannot render the HTML report: the drill.json document has no {missing!r} "
            f"{'object' if missing == 'run' else 'list'}; pass the whole document as "
            "written by pytest-drdrill (reports/<run-id>/drill.json), not one drill of it"
        )
    real = [drill for drill in drills if not drill.get("negative_control")]
    controls = [
        (index, drill) for index, drill in enumerate(drills) if drill.get("negative_control")
    ]
    trend_view = _trend(trend) if trend is not None else None
    context = {
        "run": run,
        "run_started": _timestamp(run.get("started_at")),
        "versions": sorted((run.get("versions") or {}).items()),
        "overall": _overall(real, [drill for _, drill in controls], trend_view),
        "drill_rows": [
            _drill_row(index, drill)
            for index, drill in enumerate(drills)
            if not drill.get("negative_control")
        ],
        "control_rows": [_control_row(index, drill) for index, drill in controls],
        "function_rows": _function_summary(real),
        "sections": [_section(index, drill) for index, drill in enumerate(drills)],
        "trend": trend_view,
        "badges": {**_BADGES, "regression": _REGRESSION, "no_regression": _NO_REGRESSION},
    }
    return _template().render(context)


def write_html(
    directory: Path, document: Mapping[str, Any], *, trend: Mapping[str, Any] | None = None
) -> Path:
    """Write ``directory/report.html`` atomically.

    .. versionadded:: 0.3

    :param directory: the run's report directory; created when missing.
    :param document: the parsed ``drill.json``, as for :func:`render_html`.
    :param trend: the run history, as for :func:`render_html`.
    :returns: the path written.
    :raises ValueError: as :func:`render_html`.
    """
    path = directory / FILENAME
    write_atomic(path, render_html(document, trend=trend).encode("utf-8"))
    return path


@functools.cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template(_TEMPLATE)


def _load_template(name: str) -> str:
    resource = importlib.resources.files(__package__ or "pytest_drdrill.reporting")
    try:
        return (resource / _TEMPLATE_DIR / name).read_text("utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"the HTML report template {_TEMPLATE_DIR}/{name} is missing from the installed "
            f"pytest_drdrill.reporting package ({resource}); reinstall pytest-drdrill, or, "
            "when building it from source, list 'reporting/templates/*' under "
            "[tool.setuptools.package-data] pytest_drdrill in pyproject.toml"
        ) from None


def _overall(
    real: Sequence[Mapping[str, Any]],
    controls: Sequence[Mapping[str, Any]],
    trend: _Trend | None,
) -> tuple[_Badge, str]:
    counts = collections.Counter(str(drill.get("verdict")) for drill in real)
    silent = [drill for drill in controls if not _went_red(drill)]
    parts: list[str] = []
    if not real and not controls:
        return _BADGES["inconclusive"], "no drills ran"
    if real:
        parts.append(f"{counts['pass']} of {len(real)} drills passed")
    if counts["fail"]:
        parts.append(f"{counts['fail']} failed")
    if counts["warn"]:
        parts.append(f"{counts['warn']} over target but within the maximum")
    if counts["inconclusive"]:
        parts.append(f"{counts['inconclusive']} inconclusive")
    if silent:
        parts.append(
            f"{len(silent)} of {len(controls)} negative controls DID NOT go red: "
            "these drills cannot prove that a broken recovery would be caught"
        )
    elif controls:
        parts.append(f"{len(controls)} of {len(controls)} negative controls went red as required")
    if trend is not None and trend.regressions:
        scenarios = sorted({regression.scenario for regression in trend.regressions})
        parts.append("RTO regression in " + ", ".join(scenarios))
    if counts["fail"] or silent:
        badge = _BADGES["fail"]
    elif counts["warn"] or (trend is not None and trend.regressions):
        badge = _BADGES["warn"]
    elif counts["inconclusive"]:
        badge = _BADGES["inconclusive"]
    else:
        badge = _BADGES["pass"]
    return badge, "; ".join(parts)


def _went_red(drill: Mapping[str, Any]) -> bool:
    expected = drill.get("expected_verdict") or "fail"
    return drill.get("verdict") == expected


def _drill_row(index: int, drill: Mapping[str, Any]) -> _DrillRow:
    target = drill.get("target") or {}
    measured = drill.get("rto_seconds")
    rto_target = target.get("rto_target_seconds")
    margin, short = "—", False
    if measured is not None and rto_target is not None:
        left = float(rto_target) - float(measured)
        short = left < 0
        margin = _duration(left)
        if rto_target:
            # Truncated, not rounded: 0.43 s used of 15 minutes must not read as 100.0% left.
            share = math.trunc(left / float(rto_target) * 1000) / 10
            margin += f" ({share:.1f}%)"
    return _DrillRow(
        anchor=_anchor(index),
        scenario=str(drill.get("scenario", "")),
        name=str(drill.get("name", "")),
        cadence=str(drill.get("cadence") or "—"),
        target=str(target.get("name") or "none"),
        rto=_rto_text(drill.get("rto"), measured),
        rto_target=_target_pair(rto_target, target.get("rto_max_seconds")),
        margin=margin,
        margin_short=short,
        rpo=_rpo_text(drill.get("rpo")),
        rpo_target=_rpo_target(target),
        badge=_badge(drill.get("verdict")),
    )


def _control_row(index: int, drill: Mapping[str, Any]) -> _ControlRow:
    return _ControlRow(
        anchor=_anchor(index),
        scenario=str(drill.get("scenario", "")),
        name=str(drill.get("name", "")),
        verdict=_badge(drill.get("verdict")),
        badge=_WENT_RED if _went_red(drill) else _NOT_RED,
        reason=str(drill.get("reason", "")),
    )


def _section(index: int, drill: Mapping[str, Any]) -> _DrillSection:
    negative = bool(drill.get("negative_control"))
    badge = _badge(drill.get("verdict"))
    if negative:
        badge = _WENT_RED if _went_red(drill) else _NOT_RED
    rto = drill.get("rto")
    window = plots.outage_window(drill) if drill.get("started_at") else None
    facts = [
        ("test", str(drill.get("name", ""))),
        ("started at", _timestamp(drill.get("started_at"))),
        ("lasted", _duration(drill.get("duration_seconds"))),
        ("cadence", str(drill.get("cadence") or "—")),
        ("backend", str(drill.get("backend") or "—")),
        ("target", _target_name(drill.get("target"))),
        ("RTO measured", _rto_text(rto, drill.get("rto_seconds"))),
        ("RPO measured", _rpo_text(drill.get("rpo"))),
        ("acknowledged writes", str(drill.get("acknowledged_writes", "—"))),
    ]
    if window is not None:
        start, end = (_duration(x) for x in window)
        seen = f"from {start} to {end} after the drill started"
        if window[1] is None:
            seen = f"from {start} after the drill started; never recovered"
        facts.append(("outage seen by clients", seen))
    if negative:
        facts.append(("expected verdict", str(drill.get("expected_verdict") or "fail")))
    notifications = drill.get("notifications")
    return _DrillSection(
        anchor=_anchor(index),
        scenario=str(drill.get("scenario", "")),
        name=str(drill.get("name", "")),
        negative_control=negative,
        badge=badge,
        reason=str(drill.get("reason", "")),
        facts=tuple(facts),
        notes=tuple(str(note) for note in drill.get("notes") or ()),
        faults=tuple(_fault_row(fault) for fault in _faults(drill)),
        phases=tuple(_phase_row(phase) for phase in drill.get("phases") or ()),
        plot=Markup(plots.timeline_svg(drill, plot_id=f"plot-{_anchor(index)}")),
        timeline_missing=not (drill.get("timeline") or {}).get("services"),
        services=tuple(_service_row(service) for service in drill.get("services") or ()),
        functions=tuple(
            _function_row(function, drills=str(drill.get("scenario", "")))
            for function in drill.get("functions") or ()
        ),
        notifications=None
        if notifications is None
        else tuple(_notification_row(item) for item in notifications),
        resources=_resources(drill.get("resources")),
    )


def _faults(drill: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    faults = list(drill.get("faults") or ())
    if not faults and drill.get("fault"):
        faults = [drill["fault"]]
    return faults


def _fault_row(fault: Mapping[str, Any]) -> _FaultRow:
    injected = fault.get("injected_offset_seconds")
    healed = fault.get("healed_offset_seconds")
    lasted = "not healed"
    if injected is not None and healed is not None:
        lasted = _duration(float(healed) - float(injected))
    return _FaultRow(
        kind=str(fault.get("kind", "")),
        target=str(fault.get("target", "")),
        injected=_duration(injected),
        healed="never" if healed is None else _duration(healed),
        lasted=lasted,
    )


def _phase_row(phase: Mapping[str, Any]) -> _PhaseRow:
    ok = bool(phase.get("ok", True))
    return _PhaseRow(
        name=str(phase.get("name", "")),
        start=_duration(phase.get("started_offset_seconds")),
        duration=_duration(phase.get("seconds")),
        badge=_Badge("pass", "ok", "✓") if ok else _Badge("fail", "failed", "✗"),
        detail=str(phase.get("detail", "")),
    )


def _service_row(service: Mapping[str, Any]) -> _ServiceRow:
    rto = service.get("rto")
    rpo = service.get("rpo")
    return _ServiceRow(
        service=str(service.get("service", "")),
        badge=_badge(service.get("verdict")),
        rto=_rto_text(rto, (rto or {}).get("seconds")),
        lost_writes=_rpo_text(rpo),
        acknowledged=str(service.get("acknowledged_writes", "—")),
        reason=str(service.get("reason", "")),
    )


def _function_row(function: Mapping[str, Any], *, drills: str) -> _FunctionRow:
    rto = function.get("rto")
    target = function.get("target") or {}
    return _FunctionRow(
        function=str(function.get("function", "")),
        services=", ".join(str(name) for name in function.get("services") or ()) or "—",
        not_exercised=", ".join(str(name) for name in function.get("not_exercised") or ())
        or "none",
        drills=drills,
        rto=_rto_text(rto, (rto or {}).get("seconds")),
        rto_target=_target_pair(target.get("rto_target_seconds"), target.get("rto_max_seconds")),
        lost_writes=_lost(function.get("rpo")),
        badge=_badge(function.get("verdict")),
        reason=str(function.get("reason", "")),
    )


def _function_summary(drills: Iterable[Mapping[str, Any]]) -> list[_FunctionRow]:
    """One row per business function: its worst drill, and the writes lost in all."""
    seen: dict[str, list[tuple[Mapping[str, Any], Mapping[str, Any]]]] = {}
    for drill in drills:
        for function in drill.get("functions") or ():
            seen.setdefault(str(function.get("function")), []).append((drill, function))
    rows = []
    for name, entries in seen.items():
        services = _union(function.get("services") for _, function in entries)
        # Listed as not exercised in one drill but exercised in another is exercised.
        missing = [
            name
            for name in _union(function.get("not_exercised") for _, function in entries)
            if name not in services
        ]
        worst_drill, worst = max(
            entries,
            key=lambda entry: (
                _SEVERITY.get(str(entry[1].get("verdict")), 0),
                _seconds_or_zero(entry[1].get("rto")),
            ),
        )
        lost = [
            int((function.get("rpo") or {}).get("lost_writes", 0))
            for _, function in entries
            if function.get("rpo") is not None
        ]
        target = worst.get("target") or {}
        rto = worst.get("rto")
        rows.append(
            _FunctionRow(
                function=name,
                services=", ".join(services) or "—",
                not_exercised=", ".join(missing) or "none",
                drills=f"{len(entries)} (worst: {worst_drill.get('scenario', '')})",
                rto=_rto_text(rto, (rto or {}).get("seconds")),
                rto_target=_target_pair(
                    target.get("rto_target_seconds"), target.get("rto_max_seconds")
                ),
                lost_writes=str(sum(lost)) if lost else "not measured",
                badge=_badge(worst.get("verdict")),
                reason=str(worst.get("reason", "")),
            )
        )
    return rows


def _notification_row(item: Mapping[str, Any]) -> _NotificationRow:
    after = item.get("seconds_after_incident")
    within = item.get("within_seconds")
    timing = "not sent" if after is None else _duration(after)
    timing += " (no deadline)" if within is None else f" of {_duration(within)} allowed"
    return _NotificationRow(
        template=str(item.get("template", "")).replace("_", " "),
        audience=str(item.get("audience", "")).replace("_", " "),
        sink=str(item.get("sink", "")),
        timing=timing,
        delivered="yes" if item.get("delivered") else "no",
        approval=str(item.get("approval") or "—"),
        badge=_badge(item.get("verdict")),
        detail=str(item.get("detail", "")),
    )


def _resources(resources: Mapping[str, Any] | None) -> _Resources | None:
    if not resources:
        return None
    return _Resources(
        processes=str(resources.get("processes", "—")),
        memory=_bytes(resources.get("pss_bytes")),
        nodes=tuple(
            (
                str(node.get("node", "")),
                str(node.get("processes", "—")),
                _bytes(node.get("pss_bytes")),
            )
            for node in resources.get("nodes") or ()
        ),
    )


def _trend(trend: Mapping[str, Any]) -> _Trend:
    regressions = tuple(
        _Regression(
            scenario=str(item.get("scenario", "")),
            run_id=str(item.get("run_id", "")),
            detail=str(item.get("detail", "")),
        )
        for item in trend.get("regressions") or ()
    )
    scenarios = []
    for number, (scenario, points) in enumerate(sorted((trend.get("scenarios") or {}).items())):
        flagged = {r.run_id for r in regressions if r.scenario == scenario}
        rows = tuple(
            _TrendRow(
                run_id=str(point.get("run_id", "")),
                started=_timestamp(point.get("started_at")),
                drills=str(point.get("n", "—")),
                p50=_duration(point.get("rto_p50")),
                p95=_duration(point.get("rto_p95")),
                passed=str(point.get("passed", "—")),
                failed=str(point.get("failed", "—")),
                regressed=str(point.get("run_id")) in flagged,
            )
            for point in points
        )
        svg = plots.trend_svg(points, regressed=flagged, plot_id=f"plot-trend-{number + 1}")
        scenarios.append(_TrendScenario(scenario=str(scenario), plot=Markup(svg), rows=rows))
    return _Trend(regressions=regressions, scenarios=tuple(scenarios))


def _badge(verdict: object) -> _Badge:
    return _BADGES.get(str(verdict), _Badge("inconclusive", str(verdict).upper(), "?"))


def _anchor(index: int) -> str:
    return f"drill-{index + 1}"


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "—"
    # format_duration rounds to hundredths; a 0.2 ms phase would read as lasting nothing.
    if 0 < abs(seconds) < 0.005:
        return "<0.01s" if seconds > 0 else "-<0.01s"
    return format_duration(float(seconds))


def _rto_text(rto: Mapping[str, Any] | None, seconds: object) -> str:
    if isinstance(seconds, int | float):
        return _duration(seconds)
    if not rto:
        return "not measured"
    if rto.get("effect_seen"):
        return "not recovered"
    return "no outage seen"


def _rpo_text(rpo: Mapping[str, Any] | None) -> str:
    if not rpo:
        return "not measured"
    text = f"{_lost(rpo)}; window {_duration(rpo.get('window_seconds'))}"
    unacknowledged = rpo.get("unacknowledged_present") or 0
    if unacknowledged:
        text += f" ({unacknowledged} unacknowledged present, not a loss)"
    return text


def _lost(rpo: Mapping[str, Any] | None) -> str:
    if not rpo:
        return "not measured"
    lost = int(rpo.get("lost_writes", 0))
    return f"{lost} lost acknowledged write" + ("" if lost == 1 else "s")


def _target_pair(target: object, maximum: object) -> str:
    if not isinstance(target, int | float):
        return "—"
    text = _duration(target)
    if isinstance(maximum, int | float):
        text += f" (max {_duration(maximum)})"
    return text


def _rpo_target(target: Mapping[str, Any]) -> str:
    parts = []
    if isinstance(target.get("rpo_target_seconds"), int | float):
        parts.append(_target_pair(target["rpo_target_seconds"], target.get("rpo_max_seconds")))
    if target.get("max_lost_writes") is not None:
        parts.append(f"at most {target['max_lost_writes']} lost")
    return "; ".join(parts) or "—"


def _target_name(target: Mapping[str, Any] | None) -> str:
    if not target:
        return "none"
    return f"{target.get('name', '')} ({target.get('kind', '')})"


def _timestamp(stamp: object) -> str:
    if not isinstance(stamp, str):
        return "—"
    try:
        moment = _dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.tzinfo is not None:
        moment = moment.astimezone(_dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _bytes(count: object) -> str:
    if not isinstance(count, int | float):
        return "—"
    value, unit = float(count), "B"
    for bigger in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"


def _seconds_or_zero(rto: Mapping[str, Any] | None) -> float:
    seconds = (rto or {}).get("seconds")
    return float(seconds) if isinstance(seconds, int | float) else 0.0


def _union(lists: Iterable[Sequence[Any] | None]) -> list[str]:
    names: dict[str, None] = {}
    for items in lists:
        for item in items or ():
            names[str(item)] = None
    return list(names)


class HtmlWriter:
    """Writes ``report.html``, with the RTO trend of the run history.

    .. versionadded:: 0.5
    """

    rank = 40

    def write(self, results: RunResults) -> list[tuple[str, Path]]:
        """Write the HTML report of ``results``."""
        return [("html", write_html(results.directory, results.document, trend=results.trend))]
