"""The requirements' readiness checklist, each item tied to the drills that evidence it.

The items are the "Business Continuity Validation Checklist" of the DR/BC requirements.
An item is ticked only when a drill of the run (or, for cadence items, of the history)
measured the thing it names; configuration alone never ticks an item. What the drills
cannot show (training, reviews, security controls) says "no evidence" plainly, so the
list never overstates what was proven.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from pytest_drdrill.reporting.evidence_index import DrillView, notifications, passing, views

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

NO_EVIDENCE = "no evidence"


@dataclasses.dataclass(frozen=True)
class ChecklistItem:
    """One checklist line and what evidences it.

    :param section: the checklist's heading, e.g. ``Disaster Recovery Readiness``.
    :param text: the item as the requirements word it.
    :param evidence: the drills (or history facts) that evidence it; empty for none.
    :param why_not: when there is no evidence, what would provide it.

    .. versionadded:: 0.3
    """

    section: str
    text: str
    evidence: tuple[str, ...]
    why_not: str = ""

    @property
    def evidenced(self) -> bool:
        """Whether any drill evidences the item."""
        return bool(self.evidence)


def _labels(drills: list[DrillView]) -> list[str]:
    return [d.label() for d in drills]


def _multi_region(drills: list[DrillView], doc: Mapping[str, Any], _h: Any) -> list[str]:
    regional = passing(drills, lambda d: "region-outage" in d.fault_kinds)
    return _labels(regional)


def _failover(drills: list[DrillView], _d: Any, _h: Any) -> list[str]:
    return _labels(passing(drills, lambda d: any(p == "promotion" for p in d.phase_seconds())))


def _db_replication(drills: list[DrillView], _d: Any, _h: Any) -> list[str]:
    return _labels(passing(drills, lambda d: "postgres" in d.services_hit))


def _storage(drills: list[DrillView], _d: Any, _h: Any) -> list[str]:
    return _labels(passing(drills, lambda d: "s3" in d.services_hit))


#: The phase in which a region failover starts the DR application tier and repoints the
#: front door's DNS name (``app_tier_drill``): clients then reach the DR region through
#: DNS and its load balancer, and their own requests measured it.
FRONT_DOOR_PHASE = "dr-application"


def _front_door(drill: DrillView) -> bool:
    return FRONT_DOOR_PHASE in drill.phase_seconds()


def _routing(drills: list[DrillView], _d: Any, _h: Any) -> list[str]:
    return _labels(passing(drills, _front_door))


def _health_checks(drills: list[DrillView], _d: Any, _h: Any) -> list[str]:
    return _labels(passing(drills, _front_door))


def _negative_and_positive(drills: list[DrillView], _d: Any, _h: Any) -> list[str]:
    red = [d for d in drills if d.negative_control and d.verdict == "fail"]
    good = passing(drills)
    if not red or not good:
        return []
    return [f"{len(good)} passing drill(s)"] + [f"{d.scenario} went red as required" for d in red]


def _delivered(drills: list[DrillView], doc: Mapping[str, Any], _h: Any) -> list[str]:
    sent = [n for n in notifications(doc) if n.get("delivered")]
    judged = [n for n in sent if n.get("verdict") == "pass"]
    if not judged:
        return []
    scenarios = sorted({str(n["scenario"]) for n in judged})
    return [
        f"{len(judged)} notification(s) delivered within their deadline in {', '.join(scenarios)}"
    ]


def _rto(drills: list[DrillView], _d: Any, _h: Any) -> list[str]:
    return _labels(passing(drills, lambda d: d.rto is not None))


def _rpo(drills: list[DrillView], _d: Any, _h: Any) -> list[str]:
    return _labels(passing(drills, lambda d: d.lost_writes is not None))


def _targets_used(drills: list[DrillView], _d: Any, _h: Any) -> list[str]:
    judged = {d.raw["target"]["name"] for d in passing(drills) if d.raw.get("target")}
    return [f"drills judged against {', '.join(sorted(judged))}"] if judged else []


def _functions(drills: list[DrillView], _d: Any, _h: Any) -> list[str]:
    names = {f["function"] for d in passing(drills) for f in d.raw.get("functions") or []}
    return [f"business-function impact measured for {', '.join(sorted(names))}"] if names else []


def _cadence(cadence: str) -> Any:
    from pytest_drdrill.options import includes

    def good(drill: Mapping[str, Any]) -> bool:
        return (
            includes(cadence, str(drill.get("cadence", "quarterly")))
            and not drill.get("negative_control")
            and drill.get("verdict") in ("pass", "warn")
        )

    def find(drills: list[DrillView], doc: Mapping[str, Any], history: Any) -> list[str]:
        runs = [(str(e.get("run_id", "?")), e.get("drills") or []) for e in history]
        runs.append(("this run", doc.get("drills") or []))
        found = []
        for run_id, run_drills in runs:
            passed = [d for d in run_drills if good(d)]
            if passed:
                found.append(f"{run_id}: {len(passed)} drill(s) of {cadence} or more often passed")
        return found[-3:]

    return find


def _restores(drills: list[DrillView], _d: Any, _h: Any) -> list[str]:
    return _labels(passing(drills, lambda d: d.restored))


def _checked(*names: str) -> Any:
    """Drills in which every named verification check ran and passed."""

    def find(drills: list[DrillView], _d: Any, _h: Any) -> list[str]:
        def ran(d: DrillView) -> bool:
            ok = {p["name"] for p in d.raw.get("phases") or [] if p.get("ok")}
            return all(name in ok for name in names)

        return _labels(passing(drills, ran))

    return find


def _nothing(*_args: Any) -> list[str]:
    return []


_BACKUPS = "run the point-in-time restore drill (pytest --drill=monthly)"
_NOT_YET = "no drill enforces retention yet"
_PEOPLE = "a people process; no drill can measure it"

_ITEMS: tuple[tuple[str, str, Any, str], ...] = (
    ("Disaster Recovery Readiness", "Multi-region deployment architecture implemented",
     _multi_region, "run the quarterly primary-region outage drill"),
    ("Disaster Recovery Readiness", "Automated failover systems configured and tested",
     _failover, "run a failover drill (pytest --drill=weekly)"),
    ("Disaster Recovery Readiness", "Database replication with appropriate RPO/RTO targets",
     _db_replication, "run a PostgreSQL failover drill"),
    ("Disaster Recovery Readiness", "File storage replication and backup verification",
     _storage, "run the storage-loss drill (quarterly)"),
    ("Disaster Recovery Readiness", "Network routing and DNS failover mechanisms",
     _routing, "run the quarterly front-door region drill (scenarios/test_application_tier.py): "
     "its failover repoints the DNS name clients resolve"),
    ("Disaster Recovery Readiness", "Load balancer health checks and failover rules",
     _health_checks, "run the quarterly front-door region drill: clients reach the "
     "application through each region's HAProxy and its health checks"),
    ("Disaster Recovery Readiness", "Security controls replicated in DR environment",
     _nothing, "no drill checks security controls"),
    ("Disaster Recovery Readiness", "Monitoring and alerting active in DR site",
     _nothing, "the monitor runs from the clients' side; no drill checks monitoring in DR"),
    ("Backup and Recovery Systems", "Automated backup systems operational", _restores, _BACKUPS),
    ("Backup and Recovery Systems", "Backup encryption and security controls implemented",
     _restores, _BACKUPS),
    ("Backup and Recovery Systems", "Cross-region backup replication validated",
     _checked("cross-region"), "run the weekly backup verification drill"),
    ("Backup and Recovery Systems", "Point-in-time recovery capabilities tested", _restores,
     _BACKUPS),
    ("Backup and Recovery Systems", "Backup integrity verification automated",
     _checked("backup-checksums", "database-integrity"),
     "run the daily backup verification drill (pytest --drill=daily)"),
    ("Backup and Recovery Systems", "Restore testing performed regularly", _restores, _BACKUPS),
    ("Backup and Recovery Systems", "Backup retention policies enforced", _nothing, _NOT_YET),
    ("Backup and Recovery Systems", "Recovery procedures documented and tested",
     _negative_and_positive, "run the drills with their negative control"),
    ("Business Continuity Processes", "Business impact analysis completed and current",
     _functions, "name business functions in drills (function= in the marker)"),
    ("Business Continuity Processes", "Recovery time and point objectives defined",
     _targets_used, "judge drills against a targets file"),
    ("Business Continuity Processes", "Disaster recovery procedures documented",
     _nothing, "documentation is not measured by drills"),
    ("Business Continuity Processes", "Communication plans and templates prepared",
     _delivered, "configure --drill-notify so drills send the plan's notifications"),
    ("Business Continuity Processes", "Stakeholder notification systems configured",
     _delivered, "configure --drill-notify with the team's webhook"),
    ("Business Continuity Processes", "Incident command structure established", _nothing,
     _PEOPLE),
    ("Business Continuity Processes", "Recovery team roles and responsibilities defined",
     _nothing, _PEOPLE),
    ("Business Continuity Processes", "Training and awareness programs implemented", _nothing,
     _PEOPLE),
    ("Testing and Validation", "Monthly disaster recovery drills performed",
     _cadence("monthly"), "run pytest --drill=monthly every month"),
    ("Testing and Validation", "Quarterly full-scale recovery testing", _cadence("quarterly"),
     "run pytest --drill=quarterly every quarter"),
    ("Testing and Validation", "Annual business continuity plan review", _nothing, _PEOPLE),
    ("Testing and Validation", "Backup restoration testing automated", _restores, _BACKUPS),
    ("Testing and Validation", "Communication system testing regular", _delivered,
     "configure --drill-notify so each drill rehearses the communication plan"),
    ("Testing and Validation", "Recovery time objective validation", _rto,
     "run any failover drill"),
    ("Testing and Validation", "Recovery point objective verification", _rpo,
     "run any failover drill"),
    ("Testing and Validation", "Lessons learned process established", _nothing, _PEOPLE),
)  # fmt: skip


def checklist(
    document: Mapping[str, Any], history: Sequence[Mapping[str, Any]] = ()
) -> list[ChecklistItem]:
    """Mark every checklist item with its evidence from the run (and the history).

    .. versionadded:: 0.3

    :param document: the run document (``drill.json``).
    :param history: earlier runs' history entries
        (:func:`~pytest_drdrill.reporting.history.entry_from_document`), oldest first.
    """
    drills = views(document)
    items = []
    for section, text, finder, why_not in _ITEMS:
        evidence = tuple(finder(drills, document, history))
        items.append(ChecklistItem(section, text, evidence, "" if evidence else why_not))
    return items
