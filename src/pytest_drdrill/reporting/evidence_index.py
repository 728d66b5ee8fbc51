"""Which drills of a run evidence what: the index the MTD document and checklist read.

Everything here reads the run document (``drill.json`` as a dict), so the justification
can be rebuilt from any stored run, and nothing is taken from what recovery code says
about itself: an RTO is the client-measured one, a loss the ledger-measured one.
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

GOOD = ("pass", "warn")

#: The recovery phases the MTD budget is split into, in the order they happen.
BUDGET_PHASES = (
    "detection", "fencing", "catch-up", "selection", "promotion", "repoint", "validation",
    "fetch", "verify", "decrypt", "start", "replay", "validate",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class DrillView:
    """One drill of the run document, with the figures the justification quotes.

    .. versionadded:: 0.3
    """

    raw: Mapping[str, Any]

    @property
    def scenario(self) -> str:
        """The drill's scenario name."""
        return str(self.raw["scenario"])

    @property
    def verdict(self) -> str:
        """``pass``, ``warn``, ``fail``, ``inconclusive`` or ``aborted``."""
        return str(self.raw["verdict"])

    @property
    def negative_control(self) -> bool:
        """Whether recovery was broken on purpose."""
        return bool(self.raw.get("negative_control"))

    @property
    def passed(self) -> bool:
        """A drill (not a negative control) that met or only warned on its target."""
        return not self.negative_control and self.verdict in GOOD

    @property
    def rto(self) -> float | None:
        """The client-measured RTO of the drill's own service, seconds."""
        value = self.raw.get("rto_seconds")
        return None if value is None else float(value)

    def _outages(self) -> list[Mapping[str, Any]]:
        found = [self.raw["rto"]] if self.raw.get("rto") else []
        found += [s["rto"] for s in self.raw.get("services") or [] if s.get("rto")]
        return [rto for rto in found if rto.get("effect_seen")]

    @property
    def worst_rto(self) -> float | None:
        """The longest outage any service of the drill measured; ``None`` when none did."""
        seconds = [float(r["seconds"]) for r in self._outages() if r.get("seconds") is not None]
        return max(seconds) if seconds else None

    @property
    def unrecovered(self) -> bool:
        """Whether a service saw an outage and never recovered within the drill."""
        return any(r.get("seconds") is None for r in self._outages())

    @property
    def lost_writes(self) -> int | None:
        """Acknowledged writes lost by the drill's own service."""
        rpo = self.raw.get("rpo")
        return None if rpo is None else int(rpo["lost_writes"])

    @property
    def fault_kinds(self) -> set[str]:
        """The kinds of fault injected, e.g. ``{"crash"}``."""
        return {str(f["kind"]) for f in self.raw.get("faults") or []}

    @property
    def services_hit(self) -> set[str]:
        """Services whose clients saw an outage."""
        return {
            str(s["service"])
            for s in self.raw.get("services") or []
            if s.get("rto") is not None and s["rto"].get("effect_seen")
        }

    def phase_seconds(self) -> dict[str, float]:
        """Seconds per recovery phase, summed when a phase ran more than once."""
        spent: dict[str, float] = {}
        for phase in self.raw.get("phases") or []:
            spent[phase["name"]] = spent.get(phase["name"], 0.0) + float(phase["seconds"])
        return spent

    @property
    def restored(self) -> bool:
        """Whether the drill recovered by a point-in-time restore from backups."""
        return "replay" in self.phase_seconds()

    def label(self) -> str:
        """``scenario (verdict, RTO x)`` for evidence lists."""
        from pytest_drdrill.durations import format_duration

        rto = "not recovered" if self.rto is None else f"RTO {format_duration(self.rto)}"
        lost = self.lost_writes
        lost_text = "" if lost is None else f", {lost} lost"
        return f"{self.scenario} ({self.verdict.upper()}, {rto}{lost_text})"


def views(document: Mapping[str, Any]) -> list[DrillView]:
    """Every drill of the run document.

    .. versionadded:: 0.3
    """
    return [DrillView(raw) for raw in document.get("drills") or []]


def topology_facts(document: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The live topology description of the run's first drill that has one."""
    for drill in document.get("drills") or []:
        if drill.get("topology"):
            facts: Mapping[str, Any] = drill["topology"]
            return facts
    return None


def resources(document: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The measured resources of the run's first drill that has them."""
    for drill in document.get("drills") or []:
        if drill.get("resources"):
            found: Mapping[str, Any] = drill["resources"]
            return found
    return None


def notifications(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every notification of every drill, with the drill's scenario added."""
    return [
        {**n, "scenario": drill["scenario"]}
        for drill in document.get("drills") or []
        for n in drill.get("notifications") or []
    ]


def passing(drills: Iterable[DrillView], predicate: Any = None) -> list[DrillView]:
    """The passing drills (negative controls excluded) that satisfy ``predicate``."""
    return [d for d in drills if d.passed and (predicate is None or predicate(d))]


def median(values: Sequence[float]) -> float | None:
    """The median, or ``None`` for no values."""
    return statistics.median(values) if values else None
