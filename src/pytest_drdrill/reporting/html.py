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
as markup. This module assembles the page; the rows and sections it shows are built by
:mod:`~pytest_drdrill.reporting.html_rows`, their texts by
:mod:`~pytest_drdrill.reporting.html_format`.

.. versionadded:: 0.3
"""

from __future__ import annotations

import collections
import functools
import importlib.resources
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jinja2

from pytest_drdrill.reporting.files import write_atomic
from pytest_drdrill.reporting.html_format import (
    rto_text,
    target_pair,
    timestamp,
)
from pytest_drdrill.reporting.html_rows import (
    BADGES,
    NO_REGRESSION,
    REGRESSION,
    Badge,
    FunctionRow,
    Trend,
    control_row,
    drill_row,
    drill_section,
    trend_section,
    verdict_badge,
    went_red,
)
from pytest_drdrill.verdict import severity

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from pytest_drdrill.reporting.writer import RunResults

__all__ = ["FILENAME", "render_html", "write_html"]

#: File name of the report inside the report directory.
FILENAME = "report.html"

_TEMPLATE_DIR = "templates"
_TEMPLATE = "report.html.j2"


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
    trend_view = trend_section(trend) if trend is not None else None
    context = {
        "run": run,
        "run_started": timestamp(run.get("started_at")),
        "versions": sorted((run.get("versions") or {}).items()),
        "overall": _overall(real, [drill for _, drill in controls], trend_view),
        "drill_rows": [
            drill_row(index, drill)
            for index, drill in enumerate(drills)
            if not drill.get("negative_control")
        ],
        "control_rows": [control_row(index, drill) for index, drill in controls],
        "function_rows": _function_summary(real),
        "sections": [drill_section(index, drill) for index, drill in enumerate(drills)],
        "trend": trend_view,
        "badges": {**BADGES, "regression": REGRESSION, "no_regression": NO_REGRESSION},
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
    trend: Trend | None,
) -> tuple[Badge, str]:
    counts = collections.Counter(str(drill.get("verdict")) for drill in real)
    silent = [drill for drill in controls if not went_red(drill)]
    parts: list[str] = []
    if not real and not controls:
        return BADGES["inconclusive"], "no drills ran"
    if real:
        parts.append(f"{counts['pass']} of {len(real)} drills passed")
    if counts["fail"]:
        parts.append(f"{counts['fail']} failed")
    if counts["warn"]:
        parts.append(f"{counts['warn']} over target but within the maximum")
    if counts["inconclusive"]:
        parts.append(f"{counts['inconclusive']} inconclusive")
    if counts["aborted"]:
        parts.append(f"{counts['aborted']} aborted by a guardrail or the kill switch")
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
        badge = BADGES["fail"]
    elif counts["aborted"]:
        badge = BADGES["aborted"]
    elif counts["warn"] or (trend is not None and trend.regressions):
        badge = BADGES["warn"]
    elif counts["inconclusive"]:
        badge = BADGES["inconclusive"]
    else:
        badge = BADGES["pass"]
    return badge, "; ".join(parts)


def _function_summary(drills: Iterable[Mapping[str, Any]]) -> list[FunctionRow]:
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
                severity(str(entry[1].get("verdict"))),
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
            FunctionRow(
                function=name,
                services=", ".join(services) or "—",
                not_exercised=", ".join(missing) or "none",
                drills=f"{len(entries)} (worst: {worst_drill.get('scenario', '')})",
                rto=rto_text(rto, (rto or {}).get("seconds")),
                rto_target=target_pair(
                    target.get("rto_target_seconds"), target.get("rto_max_seconds")
                ),
                lost_writes=str(sum(lost)) if lost else "not measured",
                badge=verdict_badge(worst.get("verdict")),
                reason=str(worst.get("reason", "")),
            )
        )
    return rows


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
