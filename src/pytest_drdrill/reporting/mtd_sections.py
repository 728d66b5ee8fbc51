"""The sections of the MTD justification, written as Markdown from one run's measurements.

:class:`JustificationBuilder` answers US 7.4.2 point by point; every figure it writes
comes from the run document (``drill.json``), the targets file and the run history.
Section 1, the infrastructure changes, is :mod:`.mtd_changes`'s.
:mod:`pytest_drdrill.reporting.mtd` renders its Markdown as HTML and writes both files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_drdrill.durations import format_duration
from pytest_drdrill.reporting.checklist import checklist
from pytest_drdrill.reporting.evidence_index import (
    BUDGET_PHASES,
    DrillView,
    notifications,
    passing,
    resources,
    views,
)
from pytest_drdrill.reporting.markdown import maybe_duration, mib, money, table
from pytest_drdrill.reporting.mtd_changes import infrastructure_changes, monitor_text

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pytest_drdrill.targets import Targets


class JustificationBuilder:
    """Builds the justification's Markdown lines, section by section, and its verdict."""

    def __init__(
        self,
        document: Mapping[str, Any],
        targets: Targets,
        history: Sequence[Mapping[str, Any]],
        monitor: Mapping[str, Any],
    ) -> None:
        self.doc = document
        self.targets = targets
        self.history = history
        self.monitor = monitor
        self.drills = views(document)
        self.good = passing(self.drills)
        self.negative = [d for d in self.drills if d.negative_control]
        self.mtd = targets.mtd
        self.lines: list[str] = []

    # --- verdict ------------------------------------------------------------------------------

    def worst(self) -> tuple[DrillView | None, float | None]:
        """The drill with the longest outage; ``None`` seconds when one never recovered."""
        drills = [d for d in self.drills if not d.negative_control]
        unrecovered = [d for d in drills if d.unrecovered]
        if unrecovered:
            return unrecovered[0], None
        measured = [d for d in drills if d.worst_rto is not None]
        if not measured:
            return None, None
        drill = max(measured, key=lambda d: d.worst_rto or 0.0)
        return drill, drill.worst_rto

    def verdict(self) -> tuple[bool, str]:
        """Whether the run shows the MTD met, and the sentence that says so or why not."""
        drill, seconds = self.worst()
        mtd = format_duration(self.mtd)
        red = [d for d in self.negative if d.verdict == "fail"]
        if drill is None:
            return (
                False,
                f"**No evidence:** no drill of this run measured an outage against the {mtd} MTD.",
            )
        if seconds is None:
            return False, (
                f"**The {mtd} MTD is NOT shown to be met:** in drill {drill.scenario} the service "
                f"did not recover within the observation window ({drill.raw.get('reason', '')})."
            )
        if seconds > self.mtd:
            return False, (
                f"**The {mtd} MTD is NOT met:** drill {drill.scenario} measured an outage of "
                f"{format_duration(seconds)}, {format_duration(seconds - self.mtd)} over it."
            )
        failing = [d for d in self.drills if not d.negative_control and not d.passed]
        margin = self.mtd - seconds
        text = (
            f"**The {mtd} MTD is met by every drill of this run.** The longest outage measured "
            f"was {format_duration(seconds)} ({drill.scenario}), {format_duration(margin)} "
            f"inside the MTD ({margin / self.mtd:.1%} of it to spare)."
        )
        if failing:
            text += (
                f" {len(failing)} drill(s) missed another target: "
                + ", ".join(f"{d.scenario} ({d.verdict})" for d in failing)
                + "."
            )
        if red:
            text += (
                f" {len(red)} negative control(s) with deliberately broken recovery went red, "
                "as they must: the measurement can tell a broken recovery from a working one."
            )
        elif self.negative:
            text += " **A negative control did NOT go red: these figures cannot be trusted.**"
            return False, text
        return not failing, text

    # --- sections -----------------------------------------------------------------------------

    def build(self) -> str:
        """The whole justification as Markdown."""
        run = self.doc.get("run", {})
        self.lines += [
            "# MTD justification (US 7.4.2)",
            "",
            f"Run `{run.get('id', '?')}`, started {run.get('started_at', '?')}, cadence "
            f"`{run.get('cadence')}`, backend `{run.get('backend')}`, git "
            f"`{(run.get('git_sha') or 'unknown')[:12]}`. Targets: `{self.targets.source.name}`.",
            "",
            self.verdict()[1],
            "",
            "Every figure below was measured by pytest-drdrill during this run: outages and data "
            "loss from the clients' own histories of acknowledged writes and probes, never from "
            "what the recovery code reported; the infrastructure from the running servers "
            "themselves. Items without a measurement say **no evidence**.",
            "",
        ]
        self.changes()
        self.considerations()
        self.evidence()
        self.readiness()
        return "\n".join(self.lines).rstrip() + "\n"

    def changes(self) -> None:
        """Section 1: the infrastructure changes that keep downtime under the MTD."""
        self.lines += infrastructure_changes(
            self.doc, self.drills, self.history, monitor_text(self.monitor)
        )

    def considerations(self) -> None:
        """Section 2: their technical, operational and cost considerations."""
        t = self.targets
        currency = t.cost_currency
        self.lines += ["## 2. Technical, operational and cost considerations (US 7.4.2.2)", ""]
        self.lines += ["### Technical: targets against the MTD", ""]
        rows: list[tuple[object, ...]] = []
        for tier in t.tiers.values():
            note = (
                "within the MTD" if tier.maximum_acceptable <= t.mtd else "**longer than the MTD**"
            )
            rows.append(
                (
                    tier.name,
                    format_duration(tier.target),
                    format_duration(tier.maximum_acceptable),
                    note,
                )
            )
        self.lines += table(("Tier", "RTO target", "RTO maximum", "Maximum vs MTD"), rows)
        self.lines += [
            f"A tier whose maximum is longer than the {format_duration(t.mtd)} MTD can pass its "
            "own drill and still breach the MTD; this document judges every drill against the "
            "MTD as well.",
            "",
        ]
        self.lines += ["### Operational", ""]
        self.lines += [
            f"- Drills run unattended with `pytest --drill=<cadence>`; this run: "
            f"{len(self.drills)} drill(s), {len(self.good)} passed, "
            f"{len(self.negative)} negative control(s).",
            f"- Failure detection: {monitor_text(self.monitor)}.",
        ]
        notes = notifications(self.doc)
        if notes:
            on_time = [n for n in notes if n.get("verdict") == "pass"]
            late = [n for n in notes if n.get("verdict") == "fail"]
            self.lines.append(
                f"- Communication plan rehearsed: {len(on_time)} notification(s) within their "
                f"deadline, {len(late)} late or undelivered."
            )
            rows = [
                (n["scenario"], n["template"], n["audience"],
                 maybe_duration(n.get("seconds_after_incident")),
                 maybe_duration(n.get("within_seconds")), n["verdict"])
                for n in notes
            ]  # fmt: skip
            self.lines += [
                "",
                *table(
                    ("Drill", "Template", "Audience", "Sent after", "Deadline", "Verdict"), rows
                ),
            ]
        else:
            self.lines += [
                "- Communication plan: **no evidence**: no notification was sent in this run "
                "(configure `--drill-notify`).",
                "",
            ]
        self.lines += ["### Cost", ""]
        if t.downtime_costs:
            at_mtd = t.downtime_cost(t.mtd)
            rows = []
            for d in self.drills:
                if d.negative_control or d.worst_rto is None:
                    continue
                rows.append((d.scenario, format_duration(d.worst_rto),
                             money(t.downtime_cost(d.worst_rto), currency)))  # fmt: skip
            self.lines += [
                f"The requirements' downtime cost table, interpolated, puts an outage of the "
                f"full {format_duration(t.mtd)} MTD at {money(at_mtd, currency)} and one hour "
                f"at {money(t.downtime_cost(3600), currency)}. The outages measured here cost:",
                "",
                *table(("Drill", "Measured outage", "Estimated cost"), rows),
            ]
        used = resources(self.doc)
        if used:
            rows = [(n["node"], n["processes"], mib(n["pss_bytes"])) for n in used["nodes"]]
            rows.append(("**total**", used["processes"], mib(used["pss_bytes"])))
            self.lines += [
                "Resources the topology used, measured in the steady state (proportional set "
                "size, shared pages split fairly):",
                "",
                *table(("Server", "Processes", "Memory (PSS)"), rows),
            ]
        else:
            self.lines += ["Resources: **no measurement** in this run.", ""]

    def evidence(self) -> None:
        """Section 3: the measured evidence that the MTD is met."""
        mtd = self.mtd
        self.lines += ["## 3. Evidence that the MTD is met (US 7.4.2.3)", ""]
        self.lines += [
            f"Each drill's recovery split into phases, against the {format_duration(mtd)} MTD. "
            "The phases are what the recovery code recorded; the outage is what the clients "
            "measured, which also covers the time between phases.",
            "",
        ]
        used_phases = [p for p in BUDGET_PHASES if any(p in d.phase_seconds() for d in self.drills)]
        header = ["Drill", *used_phases, "Outage (measured)", "MTD margin", "Verdict"]
        rows: list[tuple[object, ...]] = []
        for d in self.drills:
            if d.negative_control:
                continue
            spent = d.phase_seconds()
            outage = d.worst_rto
            rows.append(
                (
                    d.scenario,
                    *[format_duration(spent[p]) if p in spent else "-" for p in used_phases],
                    "not recovered" if outage is None else format_duration(outage),
                    "-"
                    if outage is None
                    else f"{format_duration(mtd - outage)} ({(mtd - outage) / mtd:.1%})",
                    d.verdict.upper(),
                )
            )
        self.lines += table(header, rows)
        drill, seconds = self.worst()
        if drill is not None:
            worst = "did not recover" if seconds is None else f"{format_duration(seconds)}"
            self.lines += [f"**Worst case of the run:** {drill.scenario}: {worst}.", ""]
        self.lines += ["### Negative controls", ""]
        if not self.negative:
            self.lines += [
                "**No negative control ran** (was `--drill-skip-negative-controls` given?): "
                "nothing in this run shows the drills can go red.",
                "",
            ]
        for d in self.negative:
            state = "went red, as it must" if d.verdict == "fail" else "**did NOT go red**"
            reason = d.raw.get("reason", "")
            self.lines.append(
                f"- {d.scenario}: recovery broken on purpose; the drill {state}: {reason}"
            )
        self.lines.append("")

    def readiness(self) -> None:
        """The readiness checklist, item by item, with the evidence for each."""
        items = checklist(self.doc, self.history)
        self.lines += ["## Readiness checklist", ""]
        self.lines += [
            f"The requirements' checklist; {sum(i.evidenced for i in items)} of {len(items)} "
            "items are evidenced by drills.",
            "",
        ]
        section = None
        for item in items:
            if item.section != section:
                section = item.section
                self.lines += ["", f"### {section}", ""]
            if item.evidenced:
                self.lines.append(f"- [x] {item.text} — evidence: {'; '.join(item.evidence)}")
            else:
                self.lines.append(f"- [ ] {item.text} — **no evidence** ({item.why_not})")
        self.lines.append("")
