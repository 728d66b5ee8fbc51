"""The MTD justification: verdict, cost, phase budget and checklist from a run document."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from pytest_drdrill.reporting.checklist import checklist
from pytest_drdrill.reporting.mtd import met, render_html, render_markdown, write_mtd
from pytest_drdrill.targets import load_targets

DATA = Path(__file__).resolve().parents[1] / "data"
TARGETS = Path(__file__).resolve().parents[2] / "fixtures" / "targets.yaml"


@pytest.fixture
def document():
    """The stored 9-drill quarterly run, plus a negative control that went red."""
    doc = json.loads((DATA / "drill-example.json").read_text())
    red = copy.deepcopy(doc["drills"][0])
    red.update(
        scenario="negative-control-no-promotion",
        negative_control=True,
        verdict="fail",
        reason="service did not recover: no lasting acknowledged write",
        rto_seconds=None,
        rto={"seconds": None, "effect_seen": True, "outage_started_at": None, "recovered_at": None},
    )
    doc["drills"].append(red)
    return doc


@pytest.fixture
def targets():
    """The shipped targets file: MTD 20 minutes, the requirements' cost table."""
    return load_targets(TARGETS)


def test_met_when_every_drill_recovers_inside_the_mtd(document, targets):
    """The verdict names the longest measured outage and its margin to the 20-minute MTD."""
    text = render_markdown(document, targets)
    longest = max(
        d["rto_seconds"]
        for d in document["drills"]
        if d["rto_seconds"] and not d["negative_control"]
    )
    assert longest == pytest.approx(4.183, abs=0.001)  # primary-freeze in the stored run
    assert "**The 20m00s MTD is met by every drill of this run.**" in text
    assert "was 4.18s (primary-freeze)" in text
    assert "negative control(s) with deliberately broken recovery went red" in text
    assert met(document, targets)


def test_not_met_when_an_outage_exceeds_the_mtd(document, targets):
    """An outage over 20 minutes turns the verdict red, naming the drill and the excess."""
    document["drills"][1]["rto_seconds"] = 1500.0
    document["drills"][1]["rto"]["seconds"] = 1500.0
    text = render_markdown(document, targets)
    assert (
        "**The 20m00s MTD is NOT met:** drill primary-freeze measured an outage of 25m00s" in text
    )
    assert not met(document, targets)


def test_not_shown_when_a_service_never_recovered(document, targets):
    """A drill whose service never came back cannot show the MTD met."""
    document["drills"][0]["services"][0]["rto"]["seconds"] = None
    text = render_markdown(document, targets)
    assert "MTD is NOT shown to be met" in text
    assert not met(document, targets)


def test_a_green_negative_control_voids_the_evidence(document, targets):
    """If the negative control did not go red, the document says the figures cannot be trusted."""
    document["drills"][-1]["verdict"] = "pass"
    text = render_markdown(document, targets)
    assert "A negative control did NOT go red" in text
    assert "**did NOT go red**" in text
    assert not met(document, targets)


def test_costs_come_from_the_targets_table(document, targets):
    """Each measured outage is priced with the requirements' cost table, not a fixed figure."""
    text = render_markdown(document, targets)
    at_mtd = targets.downtime_cost(targets.mtd)
    assert f"at {at_mtd:,.0f} USD" in text
    freeze = document["drills"][1]["rto_seconds"]
    assert f"| primary-freeze | 4.18s | {targets.downtime_cost(freeze):,.2f} USD |" in text


def test_phase_budget_lists_each_drills_phases(document, targets):
    """Section 3 has one row per drill with its recorded phases and its margin."""
    text = render_markdown(document, targets)
    section = text.split("## 3.")[1].split("## Readiness")[0]
    header = next(line for line in section.splitlines() if line.startswith("| Drill"))
    assert "detection" in header and "promotion" in header and "MTD margin" in header
    assert "| primary-crash |" in section
    assert "negative-control-no-promotion: recovery broken on purpose" in section


def test_checklist_marks_evidence_and_its_absence(document, targets):
    """Items a drill exercised carry it; items no drill measures say what would evidence them."""
    items = {item.text: item for item in checklist(document)}
    storage = items["File storage replication and backup verification"]
    assert any("storage-loss-primary-region" in e for e in storage.evidence)
    assert any("primary-region-outage" in e for e in items[
        "Multi-region deployment architecture implemented"].evidence)  # fmt: skip
    backups = items["Point-in-time recovery capabilities tested"]
    assert not backups.evidenced and "restore drill" in backups.why_not
    document["drills"][0]["phases"].append(
        {"name": "replay", "started_offset_seconds": 1.0, "seconds": 0.1, "ok": True, "detail": ""}
    )
    restored = {i.text: i for i in checklist(document)}[backups.text]
    assert any("primary-crash" in e for e in restored.evidence)
    document["drills"] = [d for d in document["drills"] if "s3" not in str(d["services"])]
    assert not {i.text: i for i in checklist(document)}[storage.text].evidenced


def test_dns_and_load_balancer_items_need_the_front_door_drill(document, targets):
    """A repointed proxy endpoint is not DNS failover: only the front-door drill evidences it."""
    dns = "Network routing and DNS failover mechanisms"
    balancer = "Load balancer health checks and failover rules"
    items = {item.text: item for item in checklist(document)}
    assert not items[dns].evidenced and "front-door region drill" in items[dns].why_not
    assert not items[balancer].evidenced
    assert "| Load balancers, DNS failover and the application tier | no front-door drill ran" in (
        render_markdown(document, targets)
    )
    region = next(d for d in document["drills"] if d["scenario"] == "primary-region-outage")
    region["phases"].append(
        {"name": "dr-application", "started_offset_seconds": 1.0, "seconds": 1.2, "ok": True,
         "detail": "dr: 1 replica and HAProxy started; app.drdrill.test -> 127.0.10.2"}
    )  # fmt: skip
    items = {item.text: item for item in checklist(document)}
    assert any("primary-region-outage" in e for e in items[dns].evidence)
    assert any("primary-region-outage" in e for e in items[balancer].evidence)
    (row,) = [
        line
        for line in render_markdown(document, targets).splitlines()
        if line.startswith("| Load balancers, DNS failover")
    ]
    assert "HAProxy per region" in row and "primary-region-outage" in row


def test_html_is_self_contained_and_escapes_reasons(document, targets, tmp_path):
    """The HTML version has no external resource and shows markup in reasons as text."""
    document["drills"][-1]["reason"] = "<script>alert(1)</script>"
    md_path, html_path = write_mtd(tmp_path, document, targets)
    page = html_path.read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "http://" not in page and "https://" not in page
    assert "<table>" in page
    assert md_path.read_text().startswith("# MTD justification (US 7.4.2)")
    assert render_html("x").startswith("<!DOCTYPE html>")


def test_automated_failover_names_the_ha_stack_and_quotes_its_envelope(document, targets):
    """Under an HA stack the row names it, its version and each envelope the drills computed."""
    reference = render_markdown(document, targets)
    assert "| Automated failover | reference orchestrator" in reference

    document["run"]["postgres_failover"] = "patroni"
    document["run"]["versions"]["patroni"] = "3.0.2"
    crash = document["drills"][0]
    crash["phases"] = [p for p in crash["phases"] if p["name"] == "detection"]  # no own promotion
    envelope = "node loss: at most 12.0 s = ttl 10 s + loop_wait 1 s + promotion 1 s"
    crash["notes"] = [f"patroni failover envelope (live settings): {envelope}"]
    text = render_markdown(document, targets)
    (row,) = [line for line in text.splitlines() if line.startswith("| Automated failover |")]
    stack = "patroni 3.0.2 decides PostgreSQL failovers, with the drill's default settings"
    assert f"{stack}; its envelope from the live settings: {envelope}" in row
    assert "primary-crash" in row, "the stack's drill is its evidence, without a promotion phase"

    document["run"]["postgres_failover_settings"] = "/srv/team/patroni.yml"
    text = render_markdown(document, targets)
    assert (
        "decides PostgreSQL failovers, with the team's settings from /srv/team/patroni.yml;" in text
    )

    for drill in document["drills"]:
        drill["notes"] = []
    text = render_markdown(document, targets)
    assert "no drill of this run computed its envelope" in text


def _backup_row(document, targets) -> str:
    (row,) = [
        line
        for line in render_markdown(document, targets).splitlines()
        if line.startswith("| Third region keeping a copy of every backup")
    ]
    return row


def test_the_third_region_row_needs_its_store_and_its_weekly_check(document, targets):
    """Backup-site row: not configured without a store there; the weekly drill evidences it."""
    assert "| unknown |" in _backup_row(document, targets)  # the run described no topology
    nodes = [
        {"name": f"s3-{r}", "service": "s3", "region": r, "role": "replica"}
        for r in ("primary", "dr")
    ]
    document["drills"][0]["topology"] = {"nodes": nodes}
    assert "**not configured**: no object store in region backup" in _backup_row(document, targets)
    assert "**no evidence** in this run" in _backup_row(document, targets)
    nodes.append(
        {"name": "s3-backup", "service": "s3", "region": "backup", "role": "backup copies"}
    )
    weekly = copy.deepcopy(document["drills"][0])
    weekly.update(scenario="backup-verification-weekly", negative_control=False, verdict="pass")
    weekly["phases"] = [
        {"name": f"cross-region-{r}", "started_offset_seconds": 1.0, "seconds": 0.5, "ok": True,
         "detail": f"{r} region (...): every backup available, intact and decryptable"}
        for r in ("primary", "dr", "backup")
    ]  # fmt: skip
    control = copy.deepcopy(weekly)
    control.update(scenario="negative-control-backup-region-copy-lost", negative_control=True,
                   verdict="fail")  # fmt: skip
    control["phases"][2]["ok"] = False
    document["drills"] += [weekly, control]
    row = _backup_row(document, targets)
    assert "s3-backup in region backup" in row
    assert "backup-verification-weekly" in row
    assert "negative control negative-control-backup-region-copy-lost" in row
    assert "went red on the backup region" in row
