"""The split-brain rule every drill applies: the servers' own answers in, the verdict out."""

from __future__ import annotations

import dataclasses
import types
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from pytest_drdrill.measure.split_brain import Answer, summarize
from pytest_drdrill.measure.watcher import direct_nodes
from pytest_drdrill.reporting import drill_to_dict, load_schema, write_junit
from pytest_drdrill.reporting.html_rows import drill_section
from pytest_drdrill.results import DrillResult, FaultRecord, RunInfo, Verdict
from pytest_drdrill.timing import Anchor
from pytest_drdrill.verdict import judge_split_brain, with_split_brain

ANCHOR = Anchor(mono=1000.0, wall=1_800_000_000.0)
FAULT = FaultRecord("link-cut", "clients -> pg-primary", injected_at=1012.0, healed_at=1020.0)
NODES = ("pg-primary", "pg-sync", "pg-dr")


def primary(node, sent, *, started=1.0):
    return Answer(node, sent, sent + 0.002, False, False, started)


def standby(node, sent):
    return Answer(node, sent, sent + 0.002, True, True, 1.0)


def silent(node, sent):
    return Answer(node, sent, sent + 0.5, error="no answer within 0.5s")


def polled(make, node, start, stop, step=0.1):
    count = round((stop - start) / step)
    return [make(node, start + i * step) for i in range(count)]


def result(verdict=Verdict.PASS, **changes):
    fields = {
        "name": "test_cut",
        "scenario": "client-path-cut",
        "backend": "local",
        "cadence": "monthly",
        "fault": FAULT,
        "faults": (FAULT,),
        "phases": (),
        "verdict": verdict,
        "reason": "RTO 0.41s within tier_1_critical target 15s",
        "rto": None,
        "rpo": None,
        "target": None,
        "started_at": 1010.0,
        "ended_at": 1021.0,
    }
    return DrillResult(**{**fields, **changes})


def unfenced_promotion():
    """The old primary keeps answering writable after the sync standby is promoted at +2 s."""
    answers = polled(primary, "pg-primary", 1010.0, 1021.0)
    answers += polled(standby, "pg-sync", 1010.0, 1014.0)
    answers += polled(primary, "pg-sync", 1014.0, 1021.0)
    answers += polled(standby, "pg-dr", 1010.0, 1021.0)
    return summarize(answers, watched=NODES)


def fenced_handover():
    """The old primary goes silent (killed) before the sync standby is promoted: a gap."""
    answers = polled(primary, "pg-primary", 1010.0, 1012.5)
    answers += polled(silent, "pg-primary", 1012.5, 1021.0, step=0.5)
    answers += polled(standby, "pg-sync", 1010.0, 1013.0)
    answers += polled(primary, "pg-sync", 1013.0, 1021.0)
    answers += polled(standby, "pg-dr", 1010.0, 1021.0)
    return summarize(answers, watched=NODES)


def test_two_writable_servers_fail_the_drill_naming_both_and_the_times_after_the_fault():
    """An overlap turns a passing drill red, naming both servers and times from the fault."""
    judged = with_split_brain(result(), unfenced_promotion())
    assert judged.verdict is Verdict.FAIL
    assert judged.reason.startswith("split brain: pg-primary and pg-sync both accepted writes")
    assert "from +2.00 s to +8.90 s after the fault (link-cut of clients -> pg-primary)" in (
        judged.reason
    )
    assert judged.reason.endswith("; RTO 0.41s within tier_1_critical target 15s")
    (overlap,) = judged.split_brain.overlaps
    assert (overlap.first, overlap.second) == ("pg-primary", "pg-sync")
    assert overlap.start == pytest.approx(1014.002) and overlap.end == pytest.approx(1020.9)
    assert overlap.second_answers == 70


def test_a_negative_control_with_split_brain_counts_as_red():
    """A FAIL from split brain is red like any other FAIL: a negative control is as expected."""
    judged = with_split_brain(result(negative_control=True), unfenced_promotion())
    assert judged.verdict is Verdict.FAIL and judged.as_expected


def test_a_handover_with_a_gap_is_not_flagged_and_the_polls_are_kept():
    """Old primary silent before the new one is writable: verdict unchanged, evidence kept."""
    watch = fenced_handover()
    judged = with_split_brain(result(), watch)
    assert (judged.verdict, judged.reason) == (Verdict.PASS, result().reason)
    assert judged.split_brain == watch and watch.overlaps == ()
    polls = {s.node: (s.polls, s.answered) for s in watch.servers}
    assert polls == {"pg-primary": (42, 25), "pg-sync": (110, 110), "pg-dr": (110, 110)}


def test_one_writable_answer_beside_the_new_primary_is_not_proof():
    """A single writable answer proves an instant, not a span: not enough to fail a drill."""
    answers = polled(primary, "pg-sync", 1013.0, 1021.0)
    answers += [primary("pg-primary", 1015.0), silent("pg-primary", 1015.1)]
    verdict, reason = judge_split_brain(
        summarize(answers, watched=NODES), Verdict.WARN, "late", anchor=1012.0, fault="x"
    )
    assert (verdict, reason) == (Verdict.WARN, "late")


def test_a_crashed_watcher_and_unwatched_servers_are_noted_not_judged():
    """No evidence is not evidence of no split brain: both are noted in the result."""
    watch = dataclasses.replace(
        fenced_handover(), error="OSError: boom", unwatched=("pg-dr: its address is a path",)
    )
    judged = with_split_brain(result(notes=("earlier",)), watch)
    assert judged.verdict is Verdict.PASS
    assert judged.notes[0] == "earlier"
    assert judged.notes[1] == "split brain not judged for pg-dr: its address is a path"
    assert judged.notes[2].startswith("the split-brain watcher crashed (OSError: boom)")
    assert "pg-primary 42 (25 answered)" in judged.notes[2]


def test_a_server_reached_only_through_a_fault_path_is_left_out_and_named():
    """A node whose address is a proxy listener is not watched: the note names the path."""

    def node(port):
        return types.SimpleNamespace(dsn=lambda app="drdrill": f"host=127.0.0.1 port={port}")

    link = types.SimpleNamespace(host="127.0.0.1", port=20002, label="clients -> pg-sync")
    topology = types.SimpleNamespace(
        pg_nodes={"pg-primary": node(20001), "pg-sync": node(20002)}, links=lambda: [link]
    )
    direct, unwatched = direct_nodes(topology)
    assert list(direct) == ["pg-primary"]
    (why,) = unwatched
    assert why.startswith("pg-sync: its address 127.0.0.1:20002 is the fault proxy's path")
    assert "'clients -> pg-sync'" in why


def test_the_evidence_is_written_to_drill_json_html_and_junit(tmp_path):
    """drill.json (schema-valid), the HTML drill section and the JUnit failure carry it."""
    judged = with_split_brain(result(), unfenced_promotion())
    entry = drill_to_dict(judged, ANCHOR)
    schema = load_schema()
    drill_schema = {"$defs": schema["$defs"], "$ref": "#/$defs/drill"}
    jsonschema.Draft202012Validator(drill_schema).validate(entry)
    brain = entry["split_brain"]
    assert [s["polls"] for s in brain["servers"]] == [110, 110, 110]
    (overlap,) = brain["overlaps"]
    assert overlap["after_fault_seconds"] == pytest.approx(2.002)
    assert overlap["started_offset_seconds"] == pytest.approx(4.002)

    facts = dict(drill_section(0, entry).facts)
    assert facts["split-brain watcher"].startswith("pg-primary 110 polls (110 answered), ")
    assert facts["split-brain watcher"].endswith(": SPLIT BRAIN")
    assert "pg-primary and pg-sync both writable from 4" in facts["split brain"]

    run = RunInfo("run-1", ANCHOR, None, {}, "local", "monthly")
    root = ET.parse(write_junit(tmp_path, run, [judged])).getroot()
    failure = root.find("./testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message", "").startswith("split brain: pg-primary and pg-sync")
    out = root.find("./testsuite/testcase/system-out")
    assert out is not None and "split-brain watcher: pg-primary 110 polls" in (out.text or "")


def test_a_drill_without_the_watcher_writes_null():
    """Results from drills that never started the watcher say so with null."""
    assert drill_to_dict(result(), ANCHOR)["split_brain"] is None


def test_a_server_that_never_answered_is_noted():
    """A server silent for the whole drill (unreachable from pytest) is noted, not cleared."""
    answers = polled(primary, "pg-primary", 1010.0, 1012.0)
    answers += polled(silent, "pg-dr", 1010.0, 1012.0, step=0.5)
    judged = with_split_brain(result(), summarize(answers, watched=("pg-primary", "pg-dr")))
    assert judged.verdict is Verdict.PASS
    assert judged.notes == (
        "split brain not judged for pg-dr: it never answered the watcher's 4 direct polls "
        "(is its address reachable from where pytest runs?)",
    )
