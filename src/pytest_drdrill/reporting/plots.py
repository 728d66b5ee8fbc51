"""The plots of the HTML drill report, drawn with matplotlib and returned as SVG text.

A drill's timeline stacks panels over one time axis (seconds since the drill started):
the faults, recovery phases and measured outages as labelled bars; each service's
availability; its acknowledged writes per second; and the replicas' replication lag.
The fault window is shaded across every panel and the measured outage is marked by
dashed lines, so a reader can see what broke, when the orchestrator reacted and when
clients noticed.

Figures are built with :class:`matplotlib.figure.Figure` rather than ``pyplot``: such a
figure is never registered with pyplot's figure manager (so it needs no ``plt.close`` and
cannot leak), draws without any GUI backend, and leaves the backend that the user's own
session may have chosen untouched. Text is written as SVG ``<text>`` (``svg.fonttype``
``none``), which keeps files small and the labels searchable in the page.

.. versionadded:: 0.3
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html
import io
import math
import re
from typing import TYPE_CHECKING, Any

import matplotlib
from cycler import cycler
from matplotlib.figure import Figure

from pytest_drdrill.reporting.plot_data import (
    MAX_POINTS,
    as_number,
    availability,
    outage_window,
    seconds_between,
)
from pytest_drdrill.reporting.plot_timeline import (
    DOWN_COLOUR,
    FAULT_COLOUR,
    OUTAGE_COLOUR,
    PARTIAL_COLOUR,
    UP_COLOUR,
    plain_text,
    timeline_figure,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from matplotlib.typing import RcKeyType

# The colours, MAX_POINTS and the data functions are defined beside the code that uses
# them (plot_timeline, plot_data) and named here, where the report and its tests look.
__all__ = [
    "DOWN_COLOUR",
    "FAULT_COLOUR",
    "MAX_POINTS",
    "OUTAGE_COLOUR",
    "PARTIAL_COLOUR",
    "UP_COLOUR",
    "availability",
    "outage_window",
    "seconds_between",
    "timeline_svg",
    "trend_svg",
]


_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    # One short font list: with svg.fonttype "none" every <text> repeats it.
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 8.0,
    "axes.titlesize": 8.0,
    "axes.labelsize": 8.0,
    "legend.fontsize": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": cycler(
        color=["#1f77b4", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
    ),
}

_SVG_ID = re.compile(r'\bid="([^"]+)"')
_SVG_REF = re.compile(r'(href="#|url\(#)([^")]+)')


def timeline_svg(drill: Mapping[str, Any], *, plot_id: str | None = None) -> str:
    """Draw one drill's timeline as an inline-ready ``<svg>`` element.

    Panels, top to bottom, over a shared axis of seconds since the drill started: faults,
    phases and measured outages as labelled bars; availability per service and
    acknowledged writes per second per service (both from ``timeline``; left out, with a
    note, when the drill has none); replication lag per replica, in bytes where the
    samples have bytes and in seconds otherwise. Every panel shades the fault window and
    marks the measured outage's start and recovery.

    .. versionadded:: 0.3

    :param drill: one drill of ``drill.json``.
    :param plot_id: the ``id`` of the ``<svg>`` element; every id inside it is prefixed
        with it, so several plots can share one HTML page. Derived from the drill's name
        and start when omitted.
    :returns: the SVG markup, without XML declaration or doctype.
    """
    if plot_id is None:
        digest = hashlib.sha1(f"{drill.get('name')}@{drill.get('started_at')}".encode())
        plot_id = "timeline-" + digest.hexdigest()[:10]
    with matplotlib.rc_context(_RC):
        figure = timeline_figure(drill)
        return _svg(figure, plot_id, f"Timeline of drill {drill.get('scenario', '')}")


def trend_svg(
    points: Sequence[Mapping[str, Any]],
    *,
    regressed: Collection[str] = (),
    plot_id: str | None = None,
) -> str:
    """Draw one scenario's RTO p50 and p95 across runs as an inline-ready ``<svg>``.

    .. versionadded:: 0.3

    :param points: the scenario's runs, oldest first, as in the trend object:
        ``run_id``, ``started_at``, ``rto_p50`` and ``rto_p95`` (either may be ``None``
        when no drill of that run recovered).
    :param regressed: run ids flagged as regressions; their p50 is circled in red.
    :param plot_id: the ``id`` of the ``<svg>`` element (see :func:`timeline_svg`).
    :returns: the SVG markup, without XML declaration or doctype.
    """
    if plot_id is None:
        runs = ",".join(str(point.get("run_id")) for point in points)
        plot_id = "trend-" + hashlib.sha1(runs.encode()).hexdigest()[:10]
    with matplotlib.rc_context(_RC):
        figure = _trend_figure(points, regressed)
        return _svg(figure, plot_id, "RTO p50 and p95 per run")


def _trend_figure(points: Sequence[Mapping[str, Any]], regressed: Collection[str]) -> Figure:
    figure = Figure(figsize=(7.0, 2.4), layout="constrained")
    ax = figure.subplots()
    xs = list(range(len(points)))
    p50 = [as_number(point.get("rto_p50")) for point in points]
    p95 = [as_number(point.get("rto_p95")) for point in points]
    ax.plot(xs, p50, marker="o", ms=4, lw=1.4, label="RTO p50")
    ax.plot(xs, p95, marker="s", ms=3.5, lw=1.0, ls="--", label="RTO p95")
    flagged = [
        (x, y)
        for x, y, point in zip(xs, p50, points, strict=True)
        if point.get("run_id") in regressed and not math.isnan(y)
    ]
    if flagged:
        ax.plot(
            [x for x, _ in flagged],
            [y for _, y in flagged],
            ls="none",
            marker="o",
            ms=11,
            mfc="none",
            mec=DOWN_COLOUR,
            mew=2.0,
            label="regression",
            zorder=5,
        )
    if not points:
        ax.text(0.5, 0.5, "no runs recorded", transform=ax.transAxes, ha="center", va="center")
    step = max(1, math.ceil(len(points) / 12))
    ax.set_xticks(
        xs[::step],
        [plain_text(_run_label(point)) for point in points][::step],
        rotation=30,
        ha="right",
    )
    ax.set_ylabel("RTO (seconds)")
    ax.set_ylim(bottom=0.0)
    ax.grid(axis="y", color="#e0e0e0", lw=0.6)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", frameon=False, ncols=3)
    return figure


def _svg(figure: Figure, plot_id: str, label: str) -> str:
    buffer = io.StringIO()
    # The salt makes matplotlib's generated ids depend on the plot, not on chance, so the
    # same document always renders to the same page.
    with matplotlib.rc_context({"svg.hashsalt": plot_id}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # The RDF metadata names external vocabularies by URL; the page needs none of it.
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.DOTALL)
    # Ids must be unique in an HTML page holding many plots, and the stylesheet that
    # matplotlib puts inside the SVG would otherwise apply to the whole page.
    text = _SVG_ID.sub(lambda m: f'id="{plot_id}-{m.group(1)}"', text)
    text = _SVG_REF.sub(lambda m: f"{m.group(1)}{plot_id}-{m.group(2)}", text)
    text = text.replace('<style type="text/css">*{', f'<style type="text/css">#{plot_id} *{{', 1)
    attributes = (
        f'<svg id="{html.escape(plot_id)}" class="plot-svg" role="img" '
        f'aria-label="{html.escape(label)}" '
    )
    return attributes + text[len("<svg ") :].rstrip() + "\n"


def _run_label(point: Mapping[str, Any]) -> str:
    started = point.get("started_at")
    if isinstance(started, str):
        try:
            return _dt.datetime.fromisoformat(started).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            pass
    return str(point.get("run_id", "?"))
