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
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter, MaxNLocator

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence

    from matplotlib.axes import Axes
    from matplotlib.typing import RcKeyType

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

#: Fill of the fault window, drawn opaque under every panel so that its exact colour
#: can be found in a rendered page.
FAULT_COLOUR = "#fcd9b0"
#: Dashed lines at the measured outage's start and recovery, and the outage bars.
OUTAGE_COLOUR = "#b71c1c"
#: Availability lanes: only successes, both successes and failures, only failures.
UP_COLOUR = "#2e7d32"
PARTIAL_COLOUR = "#f9a825"
DOWN_COLOUR = "#c62828"
#: At most this many points per service are drawn; longer timelines are re-bucketed,
#: so an hour-long drill does not turn into a multi-megabyte page.
MAX_POINTS = 600

_FAULT_BAR_COLOUR = "#e07b1a"
_PHASE_COLOUR = "#1565c0"
_PHASE_LINE_COLOUR = "#757575"
_LABEL_CHARS = 34

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

_COUNT_KEYS = ("acknowledged", "failed", "indeterminate", "probes_ok", "probes_failed")
_SVG_ID = re.compile(r'\bid="([^"]+)"')
_SVG_REF = re.compile(r'(href="#|url\(#)([^")]+)')


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
    length = max((len(counts.get(key) or ()) for key in _COUNT_KEYS), default=0)
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
        figure = _timeline_figure(drill)
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


def _timeline_figure(drill: Mapping[str, Any]) -> Figure:
    timeline = drill.get("timeline") or None
    services: Mapping[str, Mapping[str, Sequence[int]]] = (timeline or {}).get("services") or {}
    bucket = float((timeline or {}).get("bucket_seconds") or 0.0)
    faults = _faults(drill)
    phases = list(drill.get("phases") or ())
    outages = _outages(drill)
    lag_bytes, lag_seconds = _lag_series(drill.get("lag") or ())
    end = _end(drill, faults, outages, services, bucket, lag_bytes, lag_seconds)
    rows = _event_rows(faults, phases, outages, end)
    have_timeline = bool(services) and bucket > 0

    heights = [0.1 + 0.22 * max(len(rows), 1)]
    if have_timeline:
        heights += [0.1 + 0.26 * len(services), 1.3]
    heights += [1.1] * ((1 if lag_bytes else 0) + (1 if lag_seconds else 0))
    figure, axes = _stacked(heights)
    events, *data = axes
    _draw_events(events, rows)
    if not have_timeline:
        events.set_title(
            "write timeline missing from this report: availability and write rate are not plotted",
            loc="left",
            y=1.0,
            pad=2.0,
            color="#555555",
            style="italic",
        )
    panels = iter(data)
    if have_timeline:
        factor = max(1, math.ceil(max(_length(c) for c in services.values()) / MAX_POINTS))
        _draw_availability(next(panels), services, bucket, factor)
        _draw_writes(next(panels), services, bucket, factor)
    if lag_bytes:
        ax = next(panels)
        _draw_lag(ax, lag_bytes, "replication lag in bytes", least=4.0)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        ax.yaxis.set_major_formatter(EngFormatter(unit="B"))
    if lag_seconds:
        _draw_lag(next(panels), lag_seconds, "replication lag in seconds", least=0.01)

    marks = [x for x in (outages.get(None) or ()) if x is not None]
    starts = [float(phase["started_offset_seconds"]) for phase in phases]
    for ax in axes:
        for start, stop in faults:
            ax.axvspan(start, end if stop is None else stop, color=FAULT_COLOUR, lw=0, zorder=0)
        # One collection per kind of marker: a separate Line2D for each costs far more
        # when a drill has many phases.
        if marks:
            ax.vlines(
                marks,
                0,
                1,
                transform=ax.get_xaxis_transform(),
                colors=OUTAGE_COLOUR,
                linestyles="--",
                lw=1.1,
                zorder=4,
            )
    for ax in data:
        if starts:
            ax.vlines(
                starts,
                0,
                1,
                transform=ax.get_xaxis_transform(),
                colors=_PHASE_LINE_COLOUR,
                linestyles=":",
                lw=0.8,
                zorder=1,
            )
        ax.grid(axis="y", color="#e0e0e0", lw=0.6)
        ax.set_axisbelow(True)
    axes[-1].set_xlim(0.0, end)
    axes[-1].set_xlabel("seconds since the drill started")
    figure.legend(
        handles=_legend_handles(have_timeline=have_timeline, phases=bool(phases and data)),
        loc="upper center",
        bbox_to_anchor=(0.5, 1.0),
        ncols=7,
        frameon=False,
    )
    return figure


def _stacked(heights: Sequence[float]) -> tuple[Figure, list[Axes]]:
    """Return a figure of panels of the given heights (inches) sharing one x axis.

    Margins are fixed in inches rather than left to a layout engine: laying out text
    costs more than drawing the whole figure, and every timeline has the same frame.
    """
    width, left, right, top, bottom, gap = 10.0, 1.9, 0.25, 0.45, 0.5, 0.3
    height = sum(heights) + gap * (len(heights) - 1) + top + bottom
    figure = Figure(figsize=(width, height))
    grid = figure.add_gridspec(
        len(heights),
        1,
        height_ratios=heights,
        left=left / width,
        right=1 - right / width,
        top=1 - top / height,
        bottom=bottom / height,
        hspace=gap / (sum(heights) / len(heights)),
    )
    axes = [figure.add_subplot(grid[0])]
    axes += [figure.add_subplot(grid[i], sharex=axes[0]) for i in range(1, len(heights))]
    for ax in axes[:-1]:
        # Hidden rather than unlabelled: matplotlib still builds and lays out every tick
        # of a visible axis, which made up half the drawing time of a timeline.
        ax.xaxis.set_visible(False)
    return figure, axes


def _faults(drill: Mapping[str, Any]) -> list[tuple[float, float | None]]:
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


def _outages(drill: Mapping[str, Any]) -> dict[str | None, tuple[float, float | None]]:
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


def _lag_series(
    samples: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, list[tuple[float, float, bool]]], dict[str, list[tuple[float, float, bool]]]]:
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


def _end(
    drill: Mapping[str, Any],
    faults: Sequence[tuple[float, float | None]],
    outages: Mapping[str | None, tuple[float, float | None]],
    services: Mapping[str, Mapping[str, Sequence[int]]],
    bucket: float,
    *lag: Mapping[str, Sequence[tuple[float, float, bool]]],
) -> float:
    candidates = [float(drill.get("duration_seconds") or 0.0)]
    candidates += [x for fault in faults for x in fault if x is not None]
    candidates += [x for window in outages.values() for x in window if x is not None]
    candidates += [
        float(p["started_offset_seconds"]) + float(p["seconds"]) for p in drill.get("phases") or ()
    ]
    candidates += [bucket * _length(counts) for counts in services.values()]
    candidates += [x for series in lag for points in series.values() for x, _, _ in points]
    return max(candidates) or 1.0


def _event_rows(
    faults: Sequence[tuple[float, float | None]],
    phases: Sequence[Mapping[str, Any]],
    outages: Mapping[str | None, tuple[float, float | None]],
    end: float,
) -> list[tuple[str, list[tuple[float, float, str, str]]]]:
    """Return ``(label, [(start, stop, colour, hatch)])`` rows, top row first."""
    rows: list[tuple[str, list[tuple[float, float, str, str]]]] = []
    for number, (start, stop) in enumerate(faults, 1):
        label = "fault" if len(faults) == 1 else f"fault {number}"
        stop_at = end if stop is None else stop
        rows.append((label, [(start, stop_at, _FAULT_BAR_COLOUR, "")]))
    by_name: dict[str, list[tuple[float, float, str, str]]] = {}
    for phase in phases:
        start = float(phase["started_offset_seconds"])
        stop = start + float(phase["seconds"])
        ok = bool(phase.get("ok", True))
        name = str(phase.get("name")) + ("" if ok else " (failed)")
        colour, hatch = (_PHASE_COLOUR, "") if ok else (DOWN_COLOUR, "///")
        by_name.setdefault(name, []).append((start, stop, colour, hatch))
    rows += by_name.items()
    service_outages = [key for key in outages if key is not None]
    keys: list[str | None] = [None] if None in outages else []
    if len(service_outages) > 1:
        keys += service_outages
    for key in keys:
        start, stop = outages[key]
        label = "measured outage" if key is None else f"outage: {key}"
        if stop is None:
            label = "outage, not recovered" if key is None else f"{label}, not recovered"
        rows.append((label, [(start, end if stop is None else stop, OUTAGE_COLOUR, "")]))
    return rows


def _draw_events(
    ax: Axes, rows: Sequence[tuple[str, Sequence[tuple[float, float, str, str]]]]
) -> None:
    if not rows:
        ax.text(
            0.5,
            0.5,
            "no faults, phases or outages recorded",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="#555555",
        )
        ax.set_yticks([])
        return
    span = max(stop for _, bars in rows for _, stop, _, _ in bars) or 1.0
    # Recovery phases often last milliseconds in a drill of seconds: give every bar a
    # visible width so none disappears.
    least = span * 0.004
    for y, (_, bars) in enumerate(rows):
        ax.broken_barh(
            [(start, max(stop - start, least)) for start, stop, _, _ in bars],
            (y - 0.35, 0.7),
            facecolors=[colour for _, _, colour, _ in bars],
            hatch=bars[0][3] or None,
            edgecolor="white" if bars[0][3] else "none",
            lw=0,
            zorder=3,
        )
    ax.set_yticks(range(len(rows)), [_plain(_short(label)) for label, _ in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)


def _draw_availability(
    ax: Axes, services: Mapping[str, Mapping[str, Sequence[int]]], bucket: float, factor: int
) -> None:
    width = bucket * factor
    colours = {1.0: UP_COLOUR, 0.5: PARTIAL_COLOUR, 0.0: DOWN_COLOUR}
    names = list(services)
    for y, name in enumerate(names):
        states = availability({key: _rebin(services[name].get(key), factor) for key in _COUNT_KEYS})
        for state, colour in colours.items():
            runs = _runs(states, state)
            if runs:
                ax.broken_barh(
                    [(i * width, n * width) for i, n in runs],
                    (y - 0.32, 0.64),
                    facecolors=colour,
                    lw=0,
                    zorder=3,
                )
    ax.set_yticks(range(len(names)), [_plain(_short(name)) for name in names])
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.set_title("availability (from writes and probes)", loc="left", y=1.0, pad=2.0)


def _draw_writes(
    ax: Axes, services: Mapping[str, Mapping[str, Sequence[int]]], bucket: float, factor: int
) -> None:
    width = bucket * factor
    for name, counts in services.items():
        acknowledged = _rebin(counts.get("acknowledged"), factor)
        if not acknowledged:
            continue
        xs = [i * width for i in range(len(acknowledged) + 1)]
        rates = [count / width for count in acknowledged]
        ax.step(xs, [*rates, rates[-1]], where="post", lw=1.1, label=_plain(name), zorder=3)
    ax.set_ylabel("writes/s")
    ax.set_ylim(bottom=0.0)
    ax.set_title("acknowledged writes per second", loc="left", y=1.0, pad=2.0)
    _panel_legend(ax)


def _draw_lag(
    ax: Axes, series: Mapping[str, Sequence[tuple[float, float, bool]]], title: str, least: float
) -> None:
    for label, points in series.items():
        xs = [x for x, _, _ in points]
        ys = [y for _, y, _ in points]
        ax.plot(xs, ys, marker=".", ms=4, lw=1.0, label=_plain(label), zorder=3)
        sick = [(x, y) for x, y, healthy in points if not healthy]
        if sick:
            ax.plot(
                [x for x, _ in sick],
                [y for _, y in sick],
                ls="none",
                marker="x",
                ms=6,
                color=DOWN_COLOUR,
                zorder=4,
            )
    # A lag that stayed at zero is the common, good case; without a floor on the scale
    # matplotlib would label the flat line in fractions of a byte.
    highest = max(y for points in series.values() for _, y, _ in points)
    ax.set_ylim(0.0, max(highest * 1.15, least))
    ax.set_title(title + " per replica (x: unhealthy sample)", loc="left", y=1.0, pad=2.0)
    _panel_legend(ax)


def _panel_legend(ax: Axes) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(
            handles,
            labels,
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),
            frameon=False,
            ncols=len(handles),
            borderaxespad=0.0,
            handlelength=1.6,
        )


def _legend_handles(*, have_timeline: bool, phases: bool) -> list[Any]:
    handles: list[Any] = [
        Patch(color=FAULT_COLOUR, label="fault window"),
        Line2D([], [], color=OUTAGE_COLOUR, ls="--", label="measured outage start / recovery"),
    ]
    if phases:
        handles.append(Line2D([], [], color=_PHASE_LINE_COLOUR, ls=":", label="phase start"))
    if have_timeline:
        handles += [
            Patch(color=UP_COLOUR, label="available"),
            Patch(color=PARTIAL_COLOUR, label="some requests failed"),
            Patch(color=DOWN_COLOUR, label="unavailable"),
        ]
    return handles


def _trend_figure(points: Sequence[Mapping[str, Any]], regressed: Collection[str]) -> Figure:
    figure = Figure(figsize=(7.0, 2.4), layout="constrained")
    ax = figure.subplots()
    xs = list(range(len(points)))
    p50 = [_number(point.get("rto_p50")) for point in points]
    p95 = [_number(point.get("rto_p95")) for point in points]
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
        xs[::step], [_plain(_run_label(point)) for point in points][::step], rotation=30, ha="right"
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


def _add(length: int, *lists: Sequence[int] | None) -> list[int]:
    total = [0] * length
    for values in lists:
        for i, value in enumerate(values or ()):
            total[i] += int(value)
    return total


def _length(counts: Mapping[str, Sequence[int]]) -> int:
    return max((len(counts.get(key) or ()) for key in _COUNT_KEYS), default=0)


def _rebin(values: Sequence[int] | None, factor: int) -> list[int]:
    values = list(values or ())
    if factor == 1:
        return values
    return [sum(values[i : i + factor]) for i in range(0, len(values), factor)]


def _runs(states: Sequence[float | None], state: float) -> list[tuple[int, int]]:
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


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def _run_label(point: Mapping[str, Any]) -> str:
    started = point.get("started_at")
    if isinstance(started, str):
        try:
            return _dt.datetime.fromisoformat(started).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            pass
    return str(point.get("run_id", "?"))


def _short(text: str) -> str:
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def _plain(text: str) -> str:
    # matplotlib reads text between two "$" as mathematics; names from the document are
    # plain text.
    return text.replace("$", r"\$")
