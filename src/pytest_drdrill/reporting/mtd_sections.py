"""The sections of the MTD justification, written as Markdown from one run's measurements.

:class:`JustificationBuilder` answers US 7.4.2 point by point; every figure it writes
comes from the run document (``drill.json``), the targets file and the run history.
:mod:`pytest_drdrill.reporting.mtd` renders its Markdown as HTML and writes both files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_drdrill.backup.region_checks import phase_name
from pytest_drdrill.durations import format_duration
from pytest_drdrill.reporting.checklist import FRONT_DOOR_PHASE, checklist
from pytest_drdrill.reporting.evidence_index import (
    BUDGET_PHASES,
    DrillView,
    median,
    notifications,
    passing,
    resources,
    topology_facts,
    views,
)
from pytest_drdrill.topology._protocol import BACKUP_REGION

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from pytest_drdrill.targets import Targets


def _cell(value: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _money(amount: float, currency: str) -> str:
    return f"{amount:,.2f} {currency}" if amount < 100 else f"{amount:,.0f} {currency}"


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def _maybe_duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def _promoted(service: str) -> Callable[[DrillView], bool]:
    def check(drill: DrillView) -> bool:
        return service in drill.services_hit and "promotion" in drill.phase_seconds()

    return check


def _evidence(drills: Sequence[DrillView], limit: int = 4) -> str:
    if not drills:
        return "**no evidence** in this run"
    shown = "; ".join(d.label() for d in drills[:limit])
    more = f"; and {len(drills) - limit} more" if len(drills) > limit else ""
    return shown + more


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
        facts = topology_facts(self.doc) or {}
        nodes = facts.get("nodes", [])
        replication = facts.get("replication", [])
        pg = [n for n in nodes if n["service"] == "postgres"]
        regions = sorted({n["region"] for n in nodes})

        def rep(service: str, mode: str) -> str:
            rows = [r for r in replication if r["service"] == service and r["mode"] == mode]
            return ", ".join(f"{r['source']} → {r['target']} ({r['state']})" for r in rows)

        def hits(service: str) -> list[DrillView]:
            return passing(self.drills, lambda d: service in d.services_hit)

        sync_zero = passing(
            self.drills,
            lambda d: (
                d.raw.get("target", {}) is not None
                and (d.raw.get("target") or {}).get("max_lost_writes") == 0
                and d.lost_writes == 0
            ),
        )
        detections = [
            d.phase_seconds()["detection"] for d in self.good if "detection" in d.phase_seconds()
        ]
        monitoring = self._monitor_text()
        if detections:
            monitoring_ev = (
                f"detection took {format_duration(median(detections) or 0)} (median of "
                f"{len(detections)} drills), at most {format_duration(max(detections))}"
            )
        else:
            monitoring_ev = "**no evidence** in this run"
        sent = [n for n in notifications(self.doc) if n.get("delivered")]
        if sent:
            monitoring_ev += f"; {len(sent)} alert(s) and notification(s) delivered"
        versioning = facts.get("object_versioning", {})
        async_paths = (rep("postgres", "asynchronous"), rep("redis", "asynchronous"))
        restores = passing(self.drills, lambda d: d.restored)
        front_door = passing(self.drills, lambda d: FRONT_DOOR_PHASE in d.phase_seconds())
        backup_site = [n["name"] for n in nodes if n["region"] == BACKUP_REGION]
        backup_phase = phase_name(BACKUP_REGION)
        backup_verified = passing(self.drills, lambda d: backup_phase in d.phase_seconds())
        backup_controls = [
            d.label() for d in self.drills if d.negative_control and d.verdict == "fail"
            and any(p["name"] == backup_phase and not p.get("ok", True)
                    for p in d.raw.get("phases") or [])
        ]  # fmt: skip
        rows: list[tuple[object, ...]] = [
            ("Redundant database servers",
             f"PostgreSQL: {len(pg)} servers in {len(regions)} region(s) "
             f"({', '.join(n['name'] + ' in ' + n['region'] for n in pg)})" if pg else "unknown",
             _evidence(passing(self.drills, _promoted("postgres")))),
            ("Synchronous replication in the primary region",
             rep("postgres", "synchronous") or "**not found** in pg_stat_replication",
             _evidence(sync_zero) + (" — each lost 0 acknowledged writes" if sync_zero else "")),
            ("Asynchronous replication to the DR region",
             "; ".join(x for x in async_paths if x) or "**not found**",
             _evidence(passing(self.drills, lambda d: any(
                 s == "redis" for s in d.services_hit) or "link-cut" in d.fault_kinds))),
            ("Cross-region object storage replication",
             ("replicator running" if facts.get("storage_replication") else "**not running**")
             + "; versioning " + ", ".join(f"{k}: {v}" for k, v in versioning.items()),
             _evidence(hits("s3"))),
            ("Geographically separate DR site with region failover",
             f"regions: {', '.join(regions)}" if regions else "unknown",
             _evidence(passing(self.drills, lambda d: "region-outage" in d.fault_kinds))),
            ("Encrypted backups and point-in-time recovery",
             "base backups and continuously shipped WAL in object storage, each object an "
             "AES-256-GCM stream; restores authenticate every byte before use"
             if restores else "no backup drill ran",
             _evidence(restores)),
            ("Load balancers, DNS failover and the application tier",
             "an HAProxy per region with HTTP health checks in front of the sample "
             "application's replicas; a DNS name (dnsmasq) clients resolve, repointed to the DR "
             "region by the region failover" if front_door else "no front-door drill ran",
             _evidence(front_door)),
            ("Third region keeping a copy of every backup (the backup site)",
             f"{', '.join(backup_site)} in region {BACKUP_REGION}: an object store receiving "
             "every base backup, WAL segment, Redis snapshot and object backup" if backup_site
             else f"**not configured**: no object store in region {BACKUP_REGION}" if nodes
             else "unknown",
             _evidence(backup_verified) + (
                 f"; negative control {', '.join(backup_controls)} went red on the backup "
                 "region, as it must" if backup_controls else "")),
            ("24/7 monitoring and alerting", monitoring, monitoring_ev),
            ("Automated failover", self._failover_text(),
             _evidence(passing(self.drills, self._failed_over))),
            ("Regular DR drills", f"this run: --drill={self.doc.get('run', {}).get('cadence')}",
             self._history_line()),
        ]  # fmt: skip
        self.lines += [
            "## 1. Infrastructure changes in place (US 7.4.2.1)",
            "",
            "Read from the running topology before any fault (replication from "
            "`pg_stat_replication` and `INFO replication`, versioning from the object stores), "
            "each tied to the drills of this run that exercised it.",
            "",
            *_table(("Change", "In place", "Evidence (drills of this run)"), rows),
        ]
        if facts.get("problems"):
            self.lines += ["Facts that could not be read: " + "; ".join(facts["problems"]), ""]

    def _failed_over(self, drill: DrillView) -> bool:
        """Whether the drill saw a failover.

        The reference records a promotion phase; an HA stack promotes on its own, so its
        drill counts when the PostgreSQL outage it caused ended.
        """
        if "promotion" in drill.phase_seconds():
            return True
        stack = self.doc.get("run", {}).get("postgres_failover") or "reference"
        return stack != "reference" and "postgres" in drill.services_hit and drill.rto is not None

    def _failover_text(self) -> str:
        """Who fails PostgreSQL over in this run, its version and its envelopes as measured."""
        run = self.doc.get("run", {})
        stack = run.get("postgres_failover") or "reference"
        if stack == "reference":
            return (
                "reference orchestrator (or the team's own through the pytest_drdrill_failover "
                "hooks)"
            )
        version = (run.get("versions") or {}).get(stack.replace("_", "-")) or (
            run.get("versions") or {}
        ).get(stack)
        marker = f"{stack} failover envelope (live settings): "
        envelopes = sorted(
            {
                note.split(marker, 1)[1]
                for d in self.drills
                for note in d.raw.get("notes") or []
                if marker in note
            }
        )
        text = f"{stack}{f' {version}' if version else ''} decides PostgreSQL failovers"
        settings = run.get("postgres_failover_settings")
        text += (
            f", with the team's settings from {settings}"
            if settings
            else ", with the drill's default settings"
        )
        if envelopes:
            text += "; its envelope from the live settings: " + "; ".join(envelopes)
        else:
            text += "; no drill of this run computed its envelope"
        return text

    def _history_line(self) -> str:
        runs = len(self.history)
        if not runs:
            return "this run only: no earlier runs in the history"
        passed = sum(
            1
            for run in self.history
            if any(
                d.get("verdict") in ("pass", "warn") and not d.get("negative_control")
                for d in run.get("drills") or []
            )
        )
        last = self.history[-1].get("started_at", "?")
        return f"{runs} earlier run(s) in the history, {passed} with passing drills; last {last}"

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
        self.lines += _table(("Tier", "RTO target", "RTO maximum", "Maximum vs MTD"), rows)
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
            f"- Failure detection: {self._monitor_text()}.",
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
                 _maybe_duration(n.get("seconds_after_incident")),
                 _maybe_duration(n.get("within_seconds")), n["verdict"])
                for n in notes
            ]  # fmt: skip
            self.lines += [
                "",
                *_table(
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
                             _money(t.downtime_cost(d.worst_rto), currency)))  # fmt: skip
            self.lines += [
                f"The requirements' downtime cost table, interpolated, puts an outage of the "
                f"full {format_duration(t.mtd)} MTD at {_money(at_mtd, currency)} and one hour "
                f"at {_money(t.downtime_cost(3600), currency)}. The outages measured here cost:",
                "",
                *_table(("Drill", "Measured outage", "Estimated cost"), rows),
            ]
        used = resources(self.doc)
        if used:
            rows = [(n["node"], n["processes"], _mib(n["pss_bytes"])) for n in used["nodes"]]
            rows.append(("**total**", used["processes"], _mib(used["pss_bytes"])))
            self.lines += [
                "Resources the topology used, measured in the steady state (proportional set "
                "size, shared pages split fairly):",
                "",
                *_table(("Server", "Processes", "Memory (PSS)"), rows),
            ]
        else:
            self.lines += ["Resources: **no measurement** in this run.", ""]

    def _monitor_text(self) -> str:
        m = self.monitor
        if m.get("interval") is None:
            return "reference orchestrator"
        return (
            f"health checks every {format_duration(m['interval'])}, each bounded by "
            f"{format_duration(m['timeout'])}, failover after {m['threshold']} consecutive failures"
        )

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
        self.lines += _table(header, rows)
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
