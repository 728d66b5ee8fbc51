"""The rows and sections of ``report.html``, built from one run's ``drill.json``.

Each builder turns a part of the document into a frozen view object whose fields the
template prints as they are, so every decision about what a reader sees (badges,
margins, which outage window to name) is made here in Python, not in the template.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from pytest_drdrill.reporting import plots
from pytest_drdrill.reporting.html_format import (
    duration_text,
    lost_text,
    rpo_target,
    rpo_text,
    rto_text,
    size_text,
    target_name,
    target_pair,
    timestamp,
)
from pytest_drdrill.reporting.plot_roles import role_facts

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class Badge:
    """A verdict as shown: a CSS class for its colour plus the words that carry it."""

    kind: str
    text: str
    symbol: str


BADGES = {
    "pass": Badge("pass", "PASS", "✓"),
    "warn": Badge("warn", "WARN", "!"),
    "fail": Badge("fail", "FAIL", "✗"),
    "inconclusive": Badge("inconclusive", "INCONCLUSIVE", "?"),
    "aborted": Badge("aborted", "ABORTED", "■"),
    "not_required": Badge("neutral", "NOT REQUIRED", "–"),
}
WENT_RED = Badge("expected", "WENT RED AS REQUIRED", "✓")
NOT_RED = Badge("fail", "DID NOT GO RED", "✗")
REGRESSION = Badge("fail", "REGRESSION", "▲")
NO_REGRESSION = Badge("pass", "NO REGRESSION", "✓")


@dataclasses.dataclass(frozen=True)
class DrillRow:
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
    badge: Badge


@dataclasses.dataclass(frozen=True)
class ControlRow:
    """One negative control: a drill whose recovery is broken on purpose."""

    anchor: str
    scenario: str
    name: str
    verdict: Badge
    badge: Badge
    reason: str


@dataclasses.dataclass(frozen=True)
class FunctionRow:
    """One business function, in one drill or summed up over the run."""

    function: str
    services: str
    not_exercised: str
    drills: str
    rto: str
    rto_target: str
    lost_writes: str
    badge: Badge
    reason: str


@dataclasses.dataclass(frozen=True)
class FaultRow:
    """One injected fault, with offsets from the drill's start."""

    kind: str
    target: str
    injected: str
    healed: str
    lasted: str


@dataclasses.dataclass(frozen=True)
class PhaseRow:
    """One recovery phase."""

    name: str
    start: str
    duration: str
    badge: Badge
    detail: str


@dataclasses.dataclass(frozen=True)
class ServiceRow:
    """One service's verdict within a drill."""

    service: str
    badge: Badge
    rto: str
    lost_writes: str
    acknowledged: str
    reason: str


@dataclasses.dataclass(frozen=True)
class NotificationRow:
    """One notification sent (or withheld) during a drill."""

    template: str
    audience: str
    sink: str
    timing: str
    delivered: str
    approval: str
    badge: Badge
    detail: str


@dataclasses.dataclass(frozen=True)
class Resources:
    """Processes and memory a drill's topology used."""

    processes: str
    memory: str
    nodes: tuple[tuple[str, str, str], ...]


@dataclasses.dataclass(frozen=True)
class DrillSection:
    """Everything shown for one drill in its own section."""

    anchor: str
    scenario: str
    name: str
    negative_control: bool
    badge: Badge
    reason: str
    facts: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    faults: tuple[FaultRow, ...]
    phases: tuple[PhaseRow, ...]
    plot: Markup
    timeline_missing: bool
    services: tuple[ServiceRow, ...]
    functions: tuple[FunctionRow, ...]
    notifications: tuple[NotificationRow, ...] | None
    resources: Resources | None


@dataclasses.dataclass(frozen=True)
class TrendRow:
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
class TrendScenario:
    """One scenario's history: a plot and its table."""

    scenario: str
    plot: Markup
    rows: tuple[TrendRow, ...]


@dataclasses.dataclass(frozen=True)
class Regression:
    """One regression flagged by the trend analysis."""

    scenario: str
    run_id: str
    detail: str


@dataclasses.dataclass(frozen=True)
class Trend:
    """The trend section."""

    regressions: tuple[Regression, ...]
    scenarios: tuple[TrendScenario, ...]


def went_red(drill: Mapping[str, Any]) -> bool:
    """Whether a negative control showed the verdict it had to (``fail`` by default)."""
    expected = drill.get("expected_verdict") or "fail"
    return drill.get("verdict") == expected


def drill_row(index: int, drill: Mapping[str, Any]) -> DrillRow:
    """The summary table's row of a drill: RTO and RPO against its target, and the margin left."""
    target = drill.get("target") or {}
    measured = drill.get("rto_seconds")
    rto_target = target.get("rto_target_seconds")
    margin, short = "—", False
    if measured is not None and rto_target is not None:
        left = float(rto_target) - float(measured)
        short = left < 0
        margin = duration_text(left)
        if rto_target:
            # Truncated, not rounded: 0.43 s used of 15 minutes must not read as 100.0% left.
            share = math.trunc(left / float(rto_target) * 1000) / 10
            margin += f" ({share:.1f}%)"
    return DrillRow(
        anchor=_anchor(index),
        scenario=str(drill.get("scenario", "")),
        name=str(drill.get("name", "")),
        cadence=str(drill.get("cadence") or "—"),
        target=str(target.get("name") or "none"),
        rto=rto_text(drill.get("rto"), measured),
        rto_target=target_pair(rto_target, target.get("rto_max_seconds")),
        margin=margin,
        margin_short=short,
        rpo=rpo_text(drill.get("rpo")),
        rpo_target=rpo_target(target),
        badge=verdict_badge(drill.get("verdict")),
    )


def control_row(index: int, drill: Mapping[str, Any]) -> ControlRow:
    """The negative controls table's row of a drill: did it go red as required."""
    return ControlRow(
        anchor=_anchor(index),
        scenario=str(drill.get("scenario", "")),
        name=str(drill.get("name", "")),
        verdict=verdict_badge(drill.get("verdict")),
        badge=WENT_RED if went_red(drill) else NOT_RED,
        reason=str(drill.get("reason", "")),
    )


def drill_section(index: int, drill: Mapping[str, Any]) -> DrillSection:
    """A drill's own section: facts, faults, phases, timeline, services, notifications."""
    negative = bool(drill.get("negative_control"))
    badge = verdict_badge(drill.get("verdict"))
    if negative:
        badge = WENT_RED if went_red(drill) else NOT_RED
    rto = drill.get("rto")
    window = plots.outage_window(drill) if drill.get("started_at") else None
    facts = [
        ("test", str(drill.get("name", ""))),
        ("started at", timestamp(drill.get("started_at"))),
        ("lasted", duration_text(drill.get("duration_seconds"))),
        ("cadence", str(drill.get("cadence") or "—")),
        ("backend", str(drill.get("backend") or "—")),
        ("target", target_name(drill.get("target"))),
        ("RTO measured", rto_text(rto, drill.get("rto_seconds"))),
        ("RPO measured", rpo_text(drill.get("rpo"))),
        ("acknowledged writes", str(drill.get("acknowledged_writes", "—"))),
    ]
    if window is not None:
        start, end = (duration_text(x) for x in window)
        seen = f"from {start} to {end} after the drill started"
        if window[1] is None:
            seen = f"from {start} after the drill started; never recovered"
        facts.append(("outage seen by clients", seen))
    facts += role_facts(drill)
    if negative:
        facts.append(("expected verdict", str(drill.get("expected_verdict") or "fail")))
    facts += _split_brain_facts(drill.get("split_brain"))
    notifications = drill.get("notifications")
    return DrillSection(
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


def _fault_row(fault: Mapping[str, Any]) -> FaultRow:
    injected = fault.get("injected_offset_seconds")
    healed = fault.get("healed_offset_seconds")
    lasted = "not healed"
    if injected is not None and healed is not None:
        lasted = duration_text(float(healed) - float(injected))
    return FaultRow(
        kind=str(fault.get("kind", "")),
        target=str(fault.get("target", "")),
        injected=duration_text(injected),
        healed="never" if healed is None else duration_text(healed),
        lasted=lasted,
    )


def _phase_row(phase: Mapping[str, Any]) -> PhaseRow:
    ok = bool(phase.get("ok", True))
    return PhaseRow(
        name=str(phase.get("name", "")),
        start=duration_text(phase.get("started_offset_seconds")),
        duration=duration_text(phase.get("seconds")),
        badge=Badge("pass", "ok", "✓") if ok else Badge("fail", "failed", "✗"),
        detail=str(phase.get("detail", "")),
    )


def _service_row(service: Mapping[str, Any]) -> ServiceRow:
    rto = service.get("rto")
    rpo = service.get("rpo")
    return ServiceRow(
        service=str(service.get("service", "")),
        badge=verdict_badge(service.get("verdict")),
        rto=rto_text(rto, (rto or {}).get("seconds")),
        lost_writes=rpo_text(rpo),
        acknowledged=str(service.get("acknowledged_writes", "—")),
        reason=str(service.get("reason", "")),
    )


def _function_row(function: Mapping[str, Any], *, drills: str) -> FunctionRow:
    rto = function.get("rto")
    target = function.get("target") or {}
    return FunctionRow(
        function=str(function.get("function", "")),
        services=", ".join(str(name) for name in function.get("services") or ()) or "—",
        not_exercised=", ".join(str(name) for name in function.get("not_exercised") or ())
        or "none",
        drills=drills,
        rto=rto_text(rto, (rto or {}).get("seconds")),
        rto_target=target_pair(target.get("rto_target_seconds"), target.get("rto_max_seconds")),
        lost_writes=lost_text(function.get("rpo")),
        badge=verdict_badge(function.get("verdict")),
        reason=str(function.get("reason", "")),
    )


def _notification_row(item: Mapping[str, Any]) -> NotificationRow:
    after = item.get("seconds_after_incident")
    within = item.get("within_seconds")
    timing = "not sent" if after is None else duration_text(after)
    timing += " (no deadline)" if within is None else f" of {duration_text(within)} allowed"
    return NotificationRow(
        template=str(item.get("template", "")).replace("_", " "),
        audience=str(item.get("audience", "")).replace("_", " "),
        sink=str(item.get("sink", "")),
        timing=timing,
        delivered="yes" if item.get("delivered") else "no",
        approval=str(item.get("approval") or "—"),
        badge=verdict_badge(item.get("verdict")),
        detail=str(item.get("detail", "")),
    )


def _split_brain_facts(watch: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The watcher's polls per server, and each split brain with its times, as facts."""
    if not watch:
        return []
    polls = ", ".join(
        f"{s.get('node')} {s.get('polls')} polls ({s.get('answered')} answered)"
        for s in watch.get("servers") or ()
    )
    overlaps = watch.get("overlaps") or ()
    seen = "no two servers writable at once" if not overlaps else "SPLIT BRAIN"
    facts = [("split-brain watcher", f"{polls or 'no server asked'}: {seen}")]
    for o in overlaps:
        after = o.get("after_fault_seconds")
        when = f"from {duration_text(o.get('started_offset_seconds'))} after the drill started"
        if after is not None:
            when += f" ({float(after):+.2f} s after the fault)"
        facts.append(
            (
                "split brain",
                f"{o.get('first')} and {o.get('second')} both writable {when}, for "
                f"{duration_text(o.get('seconds'))} ({o.get('first_answers')} and "
                f"{o.get('second_answers')} writable answers)",
            )
        )
    if watch.get("error"):
        facts.append(("split-brain watcher crashed", str(watch["error"])))
    return facts


def _resources(resources: Mapping[str, Any] | None) -> Resources | None:
    if not resources:
        return None
    return Resources(
        processes=str(resources.get("processes", "—")),
        memory=size_text(resources.get("pss_bytes")),
        nodes=tuple(
            (
                str(node.get("node", "")),
                str(node.get("processes", "—")),
                size_text(node.get("pss_bytes")),
            )
            for node in resources.get("nodes") or ()
        ),
    )


def trend_section(trend: Mapping[str, Any]) -> Trend:
    """The trend section: per scenario the RTO plot and table, and the regressions."""
    regressions = tuple(
        Regression(
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
            TrendRow(
                run_id=str(point.get("run_id", "")),
                started=timestamp(point.get("started_at")),
                drills=str(point.get("n", "—")),
                p50=duration_text(point.get("rto_p50")),
                p95=duration_text(point.get("rto_p95")),
                passed=str(point.get("passed", "—")),
                failed=str(point.get("failed", "—")),
                regressed=str(point.get("run_id")) in flagged,
            )
            for point in points
        )
        svg = plots.trend_svg(points, regressed=flagged, plot_id=f"plot-trend-{number + 1}")
        scenarios.append(TrendScenario(scenario=str(scenario), plot=Markup(svg), rows=rows))
    return Trend(regressions=regressions, scenarios=tuple(scenarios))


def verdict_badge(verdict: object) -> Badge:
    """The badge of a verdict; an unknown verdict reads as inconclusive, in its own words."""
    return BADGES.get(str(verdict), Badge("inconclusive", str(verdict).upper(), "?"))


def _anchor(index: int) -> str:
    return f"drill-{index + 1}"
