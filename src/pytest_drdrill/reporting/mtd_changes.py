"""Section 1 of the MTD justification: the infrastructure changes in place (US 7.4.2.1).

Each change is read from the running topology before any fault (``topology`` in
``drill.json``) and tied to the drills of the run that exercised it; the rest of the
document is :class:`~.mtd_sections.JustificationBuilder`'s.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from pytest_drdrill.backup.region_checks import phase_name
from pytest_drdrill.durations import format_duration
from pytest_drdrill.reporting.checklist import FRONT_DOOR_PHASE
from pytest_drdrill.reporting.evidence_index import (
    DrillView,
    median,
    notifications,
    passing,
    topology_facts,
)
from pytest_drdrill.reporting.markdown import table
from pytest_drdrill.topology._protocol import BACKUP_REGION

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence


def infrastructure_changes(
    document: Mapping[str, Any],
    drills: Sequence[DrillView],
    history: Sequence[Mapping[str, Any]],
    monitoring: str,
) -> list[str]:
    """Section 1: the infrastructure changes that keep downtime under the MTD.

    :param document: the run document (``drill.json``).
    :param drills: its drills.
    :param history: earlier runs' history entries, oldest first.
    :param monitoring: how failure is detected (:func:`monitor_text`).
    """
    facts = topology_facts(document) or {}
    nodes = facts.get("nodes", [])
    replication = facts.get("replication", [])
    pg = [n for n in nodes if n["service"] == "postgres"]
    regions = sorted({n["region"] for n in nodes})

    def rep(service: str, mode: str) -> str:
        rows = [r for r in replication if r["service"] == service and r["mode"] == mode]
        return ", ".join(f"{r['source']} → {r['target']} ({r['state']})" for r in rows)

    def hits(service: str) -> list[DrillView]:
        return passing(drills, lambda d: service in d.services_hit)

    sync_zero = passing(
        drills,
        lambda d: (
            d.raw.get("target", {}) is not None
            and (d.raw.get("target") or {}).get("max_lost_writes") == 0
            and d.lost_writes == 0
        ),
    )
    detections = [
        d.phase_seconds()["detection"] for d in passing(drills) if "detection" in d.phase_seconds()
    ]
    if detections:
        monitoring_ev = (
            f"detection took {format_duration(median(detections) or 0)} (median of "
            f"{len(detections)} drills), at most {format_duration(max(detections))}"
        )
    else:
        monitoring_ev = "**no evidence** in this run"
    sent = [n for n in notifications(document) if n.get("delivered")]
    if sent:
        monitoring_ev += f"; {len(sent)} alert(s) and notification(s) delivered"
    versioning = facts.get("object_versioning", {})
    async_paths = (rep("postgres", "asynchronous"), rep("redis", "asynchronous"))
    restores = passing(drills, lambda d: d.restored)
    front_door = passing(drills, lambda d: FRONT_DOOR_PHASE in d.phase_seconds())
    backup_site = [n["name"] for n in nodes if n["region"] == BACKUP_REGION]
    backup_phase = phase_name(BACKUP_REGION)
    backup_verified = passing(drills, lambda d: backup_phase in d.phase_seconds())
    backup_controls = [
        d.label() for d in drills if d.negative_control and d.verdict == "fail"
        and any(p["name"] == backup_phase and not p.get("ok", True)
                for p in d.raw.get("phases") or [])
    ]  # fmt: skip
    rows: list[tuple[object, ...]] = [
        ("Redundant database servers",
         f"PostgreSQL: {len(pg)} servers in {len(regions)} region(s) "
         f"({', '.join(n['name'] + ' in ' + n['region'] for n in pg)})" if pg else "unknown",
         _evidence(passing(drills, _promoted("postgres")))),
        ("Synchronous replication in the primary region",
         rep("postgres", "synchronous") or "**not found** in pg_stat_replication",
         _evidence(sync_zero) + (" — each lost 0 acknowledged writes" if sync_zero else "")),
        ("Asynchronous replication to the DR region",
         "; ".join(x for x in async_paths if x) or "**not found**",
         _evidence(passing(drills, lambda d: any(
             s == "redis" for s in d.services_hit) or "link-cut" in d.fault_kinds))),
        ("Cross-region object storage replication",
         ("replicator running" if facts.get("storage_replication") else "**not running**")
         + "; versioning " + ", ".join(f"{k}: {v}" for k, v in versioning.items()),
         _evidence(hits("s3"))),
        ("Geographically separate DR site with region failover",
         f"regions: {', '.join(regions)}" if regions else "unknown",
         _evidence(passing(drills, lambda d: "region-outage" in d.fault_kinds))),
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
        ("Automated failover", _failover_text(document, drills),
         _evidence(passing(drills, functools.partial(_failed_over, document)))),
        ("Regular DR drills", f"this run: --drill={document.get('run', {}).get('cadence')}",
         _history_line(history)),
    ]  # fmt: skip
    lines = [
        "## 1. Infrastructure changes in place (US 7.4.2.1)",
        "",
        "Read from the running topology before any fault (replication from "
        "`pg_stat_replication` and `INFO replication`, versioning from the object stores), "
        "each tied to the drills of this run that exercised it.",
        "",
        *table(("Change", "In place", "Evidence (drills of this run)"), rows),
    ]
    if facts.get("problems"):
        lines += ["Facts that could not be read: " + "; ".join(facts["problems"]), ""]
    return lines


def _failed_over(document: Mapping[str, Any], drill: DrillView) -> bool:
    """Whether the drill saw a failover.

    The reference records a promotion phase; an HA stack promotes on its own, so its
    drill counts when the PostgreSQL outage it caused ended.
    """
    if "promotion" in drill.phase_seconds():
        return True
    stack = document.get("run", {}).get("postgres_failover") or "reference"
    return stack != "reference" and "postgres" in drill.services_hit and drill.rto is not None


def _failover_text(document: Mapping[str, Any], drills: Sequence[DrillView]) -> str:
    """Who fails PostgreSQL over in this run, its version and its envelopes as measured."""
    run = document.get("run", {})
    stack = run.get("postgres_failover") or "reference"
    if stack == "reference":
        return (
            "reference orchestrator (or the team's own through the pytest_drdrill_failover hooks)"
        )
    version = (run.get("versions") or {}).get(stack.replace("_", "-")) or (
        run.get("versions") or {}
    ).get(stack)
    marker = f"{stack} failover envelope (live settings): "
    envelopes = sorted(
        {
            note.split(marker, 1)[1]
            for d in drills
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


def _history_line(history: Sequence[Mapping[str, Any]]) -> str:
    """How many earlier runs the history holds, how many passed, and when the last ran."""
    runs = len(history)
    if not runs:
        return "this run only: no earlier runs in the history"
    passed = sum(
        1
        for run in history
        if any(
            d.get("verdict") in ("pass", "warn") and not d.get("negative_control")
            for d in run.get("drills") or []
        )
    )
    last = history[-1].get("started_at", "?")
    return f"{runs} earlier run(s) in the history, {passed} with passing drills; last {last}"


def monitor_text(monitor: Mapping[str, Any]) -> str:
    """How the orchestrator detects failure, from its settings (or just its name)."""
    if monitor.get("interval") is None:
        return "reference orchestrator"
    return (
        f"health checks every {format_duration(monitor['interval'])}, each bounded by "
        f"{format_duration(monitor['timeout'])}, failover after {monitor['threshold']} "
        "consecutive failures"
    )


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
