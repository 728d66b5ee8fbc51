"""The drill timeline of the HTML report: stacked matplotlib panels over one time axis.

From top to bottom: the faults, recovery phases and measured outages as labelled bars;
each service's availability; its acknowledged writes per second; the replicas'
replication lag. :func:`pytest_drdrill.reporting.plots.timeline_svg` draws the figure
built here as SVG; the figures are described in :mod:`pytest_drdrill.reporting.plots`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter, MaxNLocator

from pytest_drdrill.reporting.plot_data import (
    COUNT_KEYS,
    MAX_POINTS,
    availability,
    bucket_count,
    fault_spans,
    lag_series,
    outage_spans,
    plot_end,
    rebin,
    state_runs,
)
from pytest_drdrill.reporting.plot_roles import RoleRows, draw_lag_steps, roles_end

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from matplotlib.axes import Axes


#: Fill of the fault window, drawn opaque under every panel so that its exact colour
#: can be found in a rendered page.
FAULT_COLOUR = "#fcd9b0"


#: Dashed lines at the measured outage's start and recovery, and the outage bars.
OUTAGE_COLOUR = "#b71c1c"


#: Availability lanes: only successes, both successes and failures, only failures.
UP_COLOUR = "#2e7d32"


PARTIAL_COLOUR = "#f9a825"


DOWN_COLOUR = "#c62828"


_FAULT_BAR_COLOUR = "#e07b1a"


_PHASE_COLOUR = "#1565c0"


_PHASE_LINE_COLOUR = "#757575"


_LABEL_CHARS = 34


def timeline_figure(drill: Mapping[str, Any]) -> Figure:
    """Build the stacked timeline figure of one drill of ``drill.json``."""
    timeline = drill.get("timeline") or None
    services: Mapping[str, Mapping[str, Sequence[int]]] = (timeline or {}).get("services") or {}
    bucket = float((timeline or {}).get("bucket_seconds") or 0.0)
    faults = fault_spans(drill)
    phases = list(drill.get("phases") or ())
    outages = outage_spans(drill)
    lag_bytes, lag_seconds = lag_series(drill.get("lag") or ())
    end = plot_end(drill, faults, outages, services, bucket, lag_bytes, lag_seconds)
    roles = None
    if drill.get("roles"):
        end = max(end, roles_end(drill))
        roles = RoleRows(drill, end)
    rows = _event_rows(faults, phases, outages, end)
    first_role_row = len(rows)
    if roles is not None:
        rows += roles.rows()
    have_timeline = bool(services) and bucket > 0

    heights = [0.1 + 0.22 * max(len(rows), 1)]
    if have_timeline:
        heights += [0.1 + 0.26 * len(services), 1.3]
    member_lag = {} if roles is None else roles.lag
    heights += [1.1] * ((1 if lag_bytes or member_lag else 0) + (1 if lag_seconds else 0))
    # Phase starts are drawn only in the data panels, below the events panel.
    handles = _legend_handles(have_timeline=have_timeline, phases=bool(phases) and len(heights) > 1)
    columns, top = 7, 0.45
    if roles is not None:
        # The member classes double the legend: five a line, with room for every line.
        handles += roles.legend_handles()
        columns = 5
        top = 0.3 + 0.15 * math.ceil(len(handles) / columns)
    figure, axes = _stacked(heights, top=top)
    events, *data = axes
    _draw_events(events, rows)
    if roles is not None:
        roles.draw(events, first_role_row)
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
        factor = max(1, math.ceil(max(bucket_count(c) for c in services.values()) / MAX_POINTS))
        _draw_availability(next(panels), services, bucket, factor)
        _draw_writes(next(panels), services, bucket, factor)
    if lag_bytes or member_lag:
        ax = next(panels)
        _draw_lag(ax, lag_bytes, "replication lag in bytes", least=4.0, members=member_lag)
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
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 1.0),
        ncols=columns,
        frameon=False,
    )
    return figure


def _stacked(heights: Sequence[float], *, top: float = 0.45) -> tuple[Figure, list[Axes]]:
    """Return a figure of panels of the given heights (inches) sharing one x axis.

    Margins are fixed in inches rather than left to a layout engine: laying out text
    costs more than drawing the whole figure, and every timeline has the same frame.
    """
    width, left, right, bottom, gap = 10.0, 1.9, 0.25, 0.5, 0.3
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
        # broken_barh takes one hatch per call: a row mixing hatched and plain bars
        # (an HA member unreachable between roles) is drawn in one call per hatch.
        for hatch in dict.fromkeys(hatch for _, _, _, hatch in bars):
            same = [bar for bar in bars if bar[3] == hatch]
            ax.broken_barh(
                [(start, max(stop - start, least)) for start, stop, _, _ in same],
                (y - 0.35, 0.7),
                facecolors=[colour for _, _, colour, _ in same],
                hatch=hatch or None,
                edgecolor="white" if hatch else "none",
                lw=0,
                zorder=3,
            )
    ax.set_yticks(range(len(rows)), [plain_text(_short(label)) for label, _ in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)


def _draw_availability(
    ax: Axes, services: Mapping[str, Mapping[str, Sequence[int]]], bucket: float, factor: int
) -> None:
    width = bucket * factor
    colours = {1.0: UP_COLOUR, 0.5: PARTIAL_COLOUR, 0.0: DOWN_COLOUR}
    names = list(services)
    for y, name in enumerate(names):
        states = availability({key: rebin(services[name].get(key), factor) for key in COUNT_KEYS})
        for state, colour in colours.items():
            runs = state_runs(states, state)
            if runs:
                ax.broken_barh(
                    [(i * width, n * width) for i, n in runs],
                    (y - 0.32, 0.64),
                    facecolors=colour,
                    lw=0,
                    zorder=3,
                )
    ax.set_yticks(range(len(names)), [plain_text(_short(name)) for name in names])
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.set_title("availability (from writes and probes)", loc="left", y=1.0, pad=2.0)


def _draw_writes(
    ax: Axes, services: Mapping[str, Mapping[str, Sequence[int]]], bucket: float, factor: int
) -> None:
    width = bucket * factor
    for name, counts in services.items():
        acknowledged = rebin(counts.get("acknowledged"), factor)
        if not acknowledged:
            continue
        xs = [i * width for i in range(len(acknowledged) + 1)]
        rates = [count / width for count in acknowledged]
        ax.step(xs, [*rates, rates[-1]], where="post", lw=1.1, label=plain_text(name), zorder=3)
    ax.set_ylabel("writes/s")
    ax.set_ylim(bottom=0.0)
    ax.set_title("acknowledged writes per second", loc="left", y=1.0, pad=2.0)
    _panel_legend(ax)


def _draw_lag(
    ax: Axes,
    series: Mapping[str, Sequence[tuple[float, float, bool]]],
    title: str,
    least: float,
    members: Mapping[str, Sequence[Sequence[tuple[float, float]]]] | None = None,
) -> None:
    """Draw lag samples as points, and HA members' reported lag as steps."""
    for label, points in series.items():
        xs = [x for x, _, _ in points]
        ys = [y for _, y, _ in points]
        ax.plot(xs, ys, marker=".", ms=4, lw=1.0, label=plain_text(label), zorder=3)
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
    tops = [y for points in series.values() for _, y, _ in points]
    if members:
        tops += draw_lag_steps(ax, members, plain_text)
    # A lag that stayed at zero is the common, good case; without a floor on the scale
    # matplotlib would label the flat line in fractions of a byte.
    ax.set_ylim(0.0, max(max(tops) * 1.15, least))
    if not members:
        title += " per replica (x: unhealthy sample)"
    elif series:
        title += " (x: unhealthy; steps: HA stack)"
    else:
        title += " per HA member, as its HA stack reports it"
    ax.set_title(title, loc="left", y=1.0, pad=2.0)
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


def _short(text: str) -> str:
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def plain_text(text: str) -> str:
    # matplotlib reads text between two "$" as mathematics; names from the document are
    # plain text.
    """Text from the document as matplotlib draws it literally (no mathematics between "$")."""
    return text.replace("$", r"\$")
