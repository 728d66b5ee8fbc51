"""HA members' roles in the timeline's events panel: who led when, and timeline switches.

A drill run under an HA stack (Patroni, pg_auto_failover, repmgr) carries ``roles``
samples in ``drill.json``; each member gets one row of bars in its roles over time (the
leader dark, standbys lighter, a member that did not answer hatched grey), a thin line
where its server itself said it was writable, and a marker where a new timeline began.
A drill without samples gets nothing from here, so its figure is unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from pytest_drdrill.measure.roles import LEADER_ROLES, leader_spans, role_spans
from pytest_drdrill.reporting.html_format import duration_text
from pytest_drdrill.results import RoleSample

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from matplotlib.axes import Axes

#: Bar colour and hatch of each class of role.
ROLE_STYLES: dict[str, tuple[str, str]] = {
    "leader": ("#4a148c", ""),
    "sync": ("#9c6ac4", ""),
    "standby": ("#d9c2ec", ""),
    "down": ("#9e9e9e", ""),
    "unreachable": ("#bdbdbd", "///"),
}

_LEGEND = {
    "leader": "HA leader",
    "sync": "synchronous standby",
    "standby": "standby",
    "down": "member stopped",
    "unreachable": "member unreachable",
}

#: Patroni's states of a member whose PostgreSQL is not serving.
_DOWN_STATES = frozenset(
    {"stopped", "stopping", "crashed", "start failed", "restart failed", "stop failed"}
)

_SYNC_ROLES = frozenset({"sync_standby", "quorum_standby", "sync"})

_WRITABLE_COLOUR = "#000000"

_SWITCH_COLOUR = "#000000"

Bar = tuple[float, float, str, str]


def role_class(role: str, state: str) -> str:
    """The class a member's role is drawn in: one of :data:`ROLE_STYLES`.

    .. versionadded:: 0.6
    """
    if role == "unreachable":
        return "unreachable"
    if state in _DOWN_STATES:
        return "down"
    if role in LEADER_ROLES:
        return "leader"
    return "sync" if role in _SYNC_ROLES else "standby"


def role_samples(drill: Mapping[str, Any]) -> list[RoleSample]:
    """The drill's ``roles`` as samples stamped in seconds from the drill's start."""
    return [
        RoleSample(
            at=float(entry["offset_seconds"]),
            node=str(entry["node"]),
            role=str(entry["role"]),
            state=str(entry.get("state") or ""),
            timeline=entry.get("timeline"),
            lag_bytes=entry.get("lag_bytes"),
            in_recovery=entry.get("in_recovery"),
            source=str(entry.get("source") or ""),
        )
        for entry in drill.get("roles") or ()
    ]


def roles_end(drill: Mapping[str, Any]) -> float:
    """The last moment a role sample or timeline switch of the drill was taken."""
    stamps = [float(entry["offset_seconds"]) for entry in drill.get("roles") or ()]
    stamps += [
        float(s["offset_seconds"])
        for s in drill.get("timeline_switches") or ()
        if s.get("offset_seconds") is not None
    ]
    return max(stamps, default=0.0)


def role_facts(drill: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Who led when and the timeline switches, in words, for the drill's facts table.

    Empty for a drill without role samples.

    .. versionadded:: 0.6
    """
    samples = role_samples(drill)
    if not samples:
        return []
    spans = []
    for node, start, stop in leader_spans(samples):
        text = f"{node} from {duration_text(max(start, 0.0))}"
        spans.append(text if stop is None else f"{text} to {duration_text(stop)}")
    facts = [("HA leader", "; ".join(spans) or "none reported")]
    switches = []
    for switch in drill.get("timeline_switches") or ():
        offset = switch.get("offset_seconds")
        text = f"timeline {switch['timeline']}"
        if offset is not None:
            text += f" at {duration_text(offset)}"
        if switch.get("new_leader"):
            text += f" ({switch['new_leader']})"
        switches.append(text)
    if switches:
        facts.append(("timeline switches", "; ".join(switches)))
    return facts


class RoleRows:
    """The member rows of one drill, ready to be appended to the events panel.

    :param drill: one drill of ``drill.json``.
    :param end: where the time axis ends: a role still held at the last sample runs to it.
    """

    def __init__(self, drill: Mapping[str, Any], end: float) -> None:
        samples = role_samples(drill)
        self.end = end
        self.nodes: list[str] = []
        for sample in samples:
            if sample.node not in self.nodes:
                self.nodes.append(sample.node)
        self.classes: set[str] = set()
        self.bars: dict[str, list[Bar]] = {node: [] for node in self.nodes}
        for node, kind, start, stop in role_spans(samples, _classify):
            colour, hatch = ROLE_STYLES[kind]
            self.bars[node].append((max(start, 0.0), end if stop is None else stop, colour, hatch))
            self.classes.add(kind)
        writable = role_spans(samples, lambda s: "yes" if s.in_recovery is False else "no")
        self.writable = [
            (node, max(start, 0.0), end if stop is None else stop)
            for node, kind, start, stop in writable
            if kind == "yes"
        ]
        self.switches = _switch_marks(drill, samples, end)
        self.lag = _lag_segments(samples, end)

    def rows(self) -> list[tuple[str, list[Bar]]]:
        """``(label, bars)`` per member, in the order members were first sampled."""
        return [(f"role: {node}", self.bars[node]) for node in self.nodes]

    def draw(self, ax: Axes, first: int) -> None:
        """Add writable lines and timeline-switch markers to rows drawn from ``first`` on."""
        row = {node: first + i for i, node in enumerate(self.nodes)}
        if self.writable:
            ax.hlines(
                [row[node] + 0.38 for node, _, _ in self.writable],
                [start for _, start, _ in self.writable],
                [stop for _, _, stop in self.writable],
                colors=_WRITABLE_COLOUR,
                lw=1.4,
                zorder=4,
            )
        for x, timeline, leader in self.switches:
            y = row.get(leader or "", first)
            ax.plot([x], [y], ls="none", marker="D", ms=5, color=_SWITCH_COLOUR, zorder=5)
            ax.annotate(
                f"TL {timeline}",
                (x, y),
                xytext=(4, -4),
                textcoords="offset points",
                fontsize=6.5,
                color=_SWITCH_COLOUR,
                zorder=5,
            )

    def legend_handles(self) -> list[Any]:
        """Legend entries for the classes drawn, the writable line and the switches."""
        handles: list[Any] = [
            Patch(
                facecolor=ROLE_STYLES[kind][0],
                hatch=ROLE_STYLES[kind][1] or None,
                edgecolor="white" if ROLE_STYLES[kind][1] else "none",
                label=_LEGEND[kind],
            )
            for kind in ROLE_STYLES
            if kind in self.classes
        ]
        if self.writable:
            handles.append(
                Line2D([], [], color=_WRITABLE_COLOUR, lw=1.4, label="pg_is_in_recovery() false")
            )
        if self.switches:
            handles.append(
                Line2D(
                    [], [], ls="none", marker="D", ms=5, color=_SWITCH_COLOUR, label="new timeline"
                )
            )
        return handles


def draw_lag_steps(
    ax: Axes,
    members: Mapping[str, Sequence[Sequence[tuple[float, float]]]],
    text: Callable[[str], str],
) -> list[float]:
    """Draw each member's lag segments as steps in one colour; return every value drawn.

    :param text: turns a label into text matplotlib draws literally.
    """
    drawn: list[float] = []
    for label, segments in members.items():
        colour = None
        for segment in segments:
            (line,) = ax.step(
                [x for x, _ in segment],
                [y for _, y in segment],
                where="post",
                lw=1.0,
                color=colour,
                label=None if colour else text(label),
                zorder=3,
            )
            colour = line.get_color()
            drawn += [y for _, y in segment]
    return drawn


def _lag_segments(
    samples: Sequence[RoleSample], end: float
) -> dict[str, list[list[tuple[float, float]]]]:
    """Each standby's reported lag as step segments, keyed ``node (stack)``.

    Samples are kept only when the lag moved, so a value holds until the next sample:
    each segment repeats its last value where it ends. A segment ends where the lag
    became unknown or the member stopped being a standby, and runs to ``end`` otherwise.
    """
    by_node: dict[str, list[RoleSample]] = {}
    for sample in samples:
        by_node.setdefault(sample.node, []).append(sample)
    found: dict[str, list[list[tuple[float, float]]]] = {}
    for node, group in by_node.items():
        group.sort(key=lambda s: s.at)
        segments: list[list[tuple[float, float]]] = []
        current: list[tuple[float, float]] = []
        for sample in group:
            standby = _classify(sample) in ("sync", "standby")
            if standby and sample.lag_bytes is not None:
                current.append((max(sample.at, 0.0), float(sample.lag_bytes)))
                continue
            if current:
                segments.append([*current, (max(sample.at, 0.0), current[-1][1])])
                current = []
        if current:
            segments.append([*current, (max(end, current[-1][0]), current[-1][1])])
        if segments:
            stack = group[0].source.split(" ")[0]
            found[f"{node} ({stack})" if stack else node] = segments
    return found


def _classify(sample: RoleSample) -> str:
    return role_class(sample.role, sample.state)


def _switch_marks(
    drill: Mapping[str, Any], samples: Sequence[RoleSample], end: float
) -> list[tuple[float, int, str | None]]:
    """``(offset, timeline, new leader)`` of each switch within the drill.

    A switch the stack gave no time for is placed where a member was first sampled on
    the new timeline; switches before the drill (the cluster's own start) are left out.
    """
    marks = []
    for switch in drill.get("timeline_switches") or ():
        timeline = int(switch["timeline"])
        x = switch.get("offset_seconds")
        if x is None:
            x = _first_on(samples, timeline)
        if x is not None and 0.0 <= float(x) <= end:
            marks.append((float(x), timeline, switch.get("new_leader")))
    return marks


def _first_on(samples: Sequence[RoleSample], timeline: int) -> float | None:
    """When a member was first seen on ``timeline`` after one was seen before it."""
    on = [s.at for s in samples if s.timeline is not None and s.timeline >= timeline]
    before = [s.at for s in samples if s.timeline is not None and s.timeline < timeline]
    if not on or not before or min(before) > min(on):
        return None
    return min(on)
