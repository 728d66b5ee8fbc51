"""Tests for the drill.json and drill-junit.xml report writers."""

from __future__ import annotations

import dataclasses
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_drdrill.config import get_config
from pytest_drdrill.reporting import (
    SCHEMA_VERSION,
    drill_to_dict,
    load_schema,
    write_junit,
)
from pytest_drdrill.reporting.collector import DrillReporter
from pytest_drdrill.reporting.drill_json import run_to_dict, write_document
from pytest_drdrill.results import (
    DrillResult,
    FaultRecord,
    FunctionResult,
    LagSample,
    Phase,
    RpoResult,
    RtoResult,
    RunInfo,
    ServiceResult,
    Target,
    Verdict,
)
from pytest_drdrill.timing import Anchor

# Monotonic 1000.0 is 2027-01-15T08:00:00Z on the wall clock.
ANCHOR = Anchor(mono=1000.0, wall=1_800_000_000.0)
RUN = RunInfo(
    run_id="20270115-080000-abc123",
    anchor=ANCHOR,
    git_sha="0123456789abcdef0123456789abcdef01234567",
    versions={"pytest-drdrill": "0.1.0", "python": "3.11.7", "postgresql": "15.8"},
    backend="local",
    cadence="weekly",
)
TIER1 = Target(
    kind="tier",
    name="tier_1_critical",
    rto_target=1.0,
    rto_max=5.0,
    rpo_target=0.0,
    rpo_max=1.0,
    max_lost_writes=0,
)


def drill(verdict: Verdict, name: str, **changes: Any) -> DrillResult:
    """Build a drill that started at 1010 and had its primary crashed at 1012."""
    fault = FaultRecord("crash", "pg-primary", injected_at=1012.0, healed_at=1020.0)
    fields: dict[str, Any] = {
        "name": name,
        "scenario": "postgres_failover",
        "backend": "local",
        "cadence": "weekly",
        "fault": fault,
        "faults": (fault,),
        "phases": (
            Phase("detection", 1012.0, 1012.3, detail="3 missed probes"),
            Phase("promotion", 1012.3, 1012.35, detail="pg-replica-1"),
        ),
        "verdict": verdict,
        "reason": f"RTO measured for {verdict.value}",
        "rto": RtoResult(seconds=0.5, outage_started=1012.0, recovered_at=1012.5, effect_seen=True),
        "rpo": RpoResult(lost_writes=0, lost_ids=(), window_seconds=0.0, unacknowledged_present=1),
        "target": TIER1,
        "acknowledged_writes": 412,
        "started_at": 1010.0,
        "ended_at": 1021.5,
    }
    fields.update(changes)
    return DrillResult(**fields)


DRILLS = [
    drill(Verdict.PASS, "crash-primary"),
    drill(
        Verdict.WARN,
        "freeze-primary",
        reason="RTO 2.100 s is over the tier_1_critical target of 1.0 s (max 5.0 s)",
        rto=RtoResult(seconds=2.1, outage_started=1012.0, recovered_at=1014.1, effect_seen=True),
    ),
    drill(
        Verdict.FAIL,
        "async-lag",
        reason="lost 3 acknowledged writes; tier_1_critical allows 0",
        rpo=RpoResult(
            lost_writes=3, lost_ids=(40, 41, 42), window_seconds=0.25, unacknowledged_present=0
        ),
    ),
    drill(
        Verdict.INCONCLUSIVE,
        "negative-control",
        reason="the client saw no outage: the fault never took effect",
        rto=RtoResult(seconds=None, outage_started=None, recovered_at=None, effect_seen=False),
        rpo=None,
        target=None,
        fault=FaultRecord("link-cut", "pg-replica-1", injected_at=1011.0),
        faults=(),
        phases=(),
        negative_control=True,
    ),
]


VIDEO_UPLOAD = Target(
    kind="function",
    name="video_upload",
    rto_target=1.0,
    rto_max=30.0,
    rpo_target=0.0,
    rpo_max=60.0,
)
UNAFFECTED = RtoResult(seconds=None, outage_started=None, recovered_at=None, effect_seen=False)
NOTHING_LOST = RpoResult(lost_writes=0, lost_ids=(), window_seconds=0.0, unacknowledged_present=0)


def two_region_drill(**changes: Any) -> DrillResult:
    """A region outage: PostgreSQL untouched, Redis back with nothing lost, S3 lost 2 writes."""
    s3_rto = RtoResult(seconds=1.2, outage_started=1012.1, recovered_at=1013.2, effect_seen=True)
    s3_rpo = RpoResult(
        lost_writes=2, lost_ids=(17, 18), window_seconds=0.4, unacknowledged_present=0
    )
    fields: dict[str, Any] = {
        "scenario": "primary-region-outage",
        "reason": "postgres: unaffected; s3: RTO 1.20s over video_upload target 1.00s",
        "rto": UNAFFECTED,
        "rpo": NOTHING_LOST,
        "services": (
            ServiceResult("postgres", UNAFFECTED, NOTHING_LOST, 400, Verdict.PASS, "unaffected"),
            ServiceResult(
                "redis",
                RtoResult(0.29, outage_started=1012.0, recovered_at=1012.29, effect_seen=True),
                NOTHING_LOST,
                380,
                Verdict.PASS,
                "RTO 0.29s within tier_1_critical target",
            ),
            ServiceResult(
                "s3", s3_rto, s3_rpo, 55, Verdict.WARN, "RTO 1.20s over target", (0.4, 0.1)
            ),
        ),
        "functions": (
            FunctionResult(
                "user_authentication",
                ("postgres", "redis"),
                ("ldap",),
                RtoResult(0.29, outage_started=1012.0, recovered_at=1012.29, effect_seen=True),
                NOTHING_LOST,
                Verdict.PASS,
                "within target",
                target=TIER1,
            ),
            FunctionResult(
                "video_upload",
                ("s3",),
                (),
                s3_rto,
                dataclasses.replace(s3_rpo, lost_ids=()),
                Verdict.WARN,
                "RTO 1.20s over video_upload target 1.00s",
                target=VIDEO_UPLOAD,
            ),
        ),
        "lag": (
            LagSample(1011.5, "postgres", "pg-dr", 4096, 0.05, healthy=True),
            LagSample(1011.5, "s3", "s3-primary", None, None, healthy=True),
            LagSample(1012.5, "redis", "redis-dr", 20_000_000, None, healthy=False),
        ),
        "notes": ("region failover: weights 3 >= threshold 3",),
    }
    fields.update(changes)
    return drill(Verdict.WARN, fields.pop("name", "region-outage"), **fields)


TWO_REGIONS = two_region_drill()


def validation_errors(document: Any, definition: str | None = None) -> list[str]:
    """Validate a document (or one ``$defs`` entry) with format checks; return the errors."""
    schema = load_schema()
    if definition is not None:
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


@pytest.fixture
def report_dir(tmp_path: Path) -> Path:
    return tmp_path / "reports" / RUN.run_id


def write_json(directory: Path, run: RunInfo, drills: list[DrillResult]) -> Path:
    """Write ``drill.json`` the way the reporter does: build the document, then write it."""
    return write_document(directory, run_to_dict(run, drills))


def read_json(directory: Path) -> dict[str, Any]:
    path = write_json(directory, RUN, DRILLS)
    assert path == directory / "drill.json"
    document: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return document


def read_junit(directory: Path) -> ET.Element:
    path = write_junit(directory, RUN, DRILLS)
    assert path == directory / "drill-junit.xml"
    return ET.parse(path).getroot()


def find_case(root: ET.Element, name: str) -> ET.Element:
    found = root.find(f"./testsuite/testcase[@name='{name}']")
    assert found is not None, name
    return found


def properties(element: ET.Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in element.findall("./properties/property")}


# --- drill.json ------------------------------------------------------------------------


def test_schema_is_valid_draft_2020_12() -> None:
    """The shipped schema is itself a valid draft 2020-12 schema."""
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_json_validates_against_schema(report_dir: Path) -> None:
    """drill.json with all four verdicts validates against the strict schema."""
    document = read_json(report_dir)
    validator = jsonschema.Draft202012Validator(
        load_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []


def test_json_run_and_summary(report_dir: Path) -> None:
    """The run block and the per-verdict summary are written."""
    document = read_json(report_dir)
    assert document["schema_version"] == SCHEMA_VERSION == 1
    assert document["run"] == {
        "id": RUN.run_id,
        "started_at": "2027-01-15T08:00:00.000000+00:00",
        "git_sha": RUN.git_sha,
        "versions": RUN.versions,
        "backend": "local",
        "cadence": "weekly",
    }
    assert document["summary"] == {
        "total": 4,
        "pass": 1,
        "warn": 1,
        "fail": 1,
        "inconclusive": 1,
        "aborted": 0,
        "negative_controls": 1,
        "negative_controls_red": 0,
        "unexpected": 2,  # the failed drill and the negative control that did not go red
    }
    assert [d["verdict"] for d in document["drills"]] == ["pass", "warn", "fail", "inconclusive"]


def test_json_drill_fields(report_dir: Path) -> None:
    """A drill's fault, phases, RTO, RPO and target are written with ISO times and offsets."""
    document = read_json(report_dir)
    failed = document["drills"][2]
    assert failed["name"] == "async-lag"
    assert failed["started_at"] == "2027-01-15T08:00:10.000000+00:00"
    assert failed["duration_seconds"] == pytest.approx(11.5)
    assert failed["fault"] == {
        "kind": "crash",
        "target": "pg-primary",
        "injected_at": "2027-01-15T08:00:12.000000+00:00",
        "healed_at": "2027-01-15T08:00:20.000000+00:00",
        "injected_offset_seconds": 2.0,
        "healed_offset_seconds": 10.0,
    }
    assert failed["faults"] == [failed["fault"]]
    assert failed["phases"][0]["name"] == "detection"
    assert failed["phases"][0]["seconds"] == pytest.approx(0.3)
    assert failed["phases"][0]["started_offset_seconds"] == 2.0
    assert failed["phases"][1]["ended_at"] == "2027-01-15T08:00:12.350000+00:00"
    assert failed["rto_seconds"] == 0.5
    assert failed["rpo"] == {
        "lost_writes": 3,
        "lost_ids": [40, 41, 42],
        "window_seconds": 0.25,
        "unacknowledged_present": 0,
    }
    assert failed["target"]["rto_max_seconds"] == 5.0
    assert failed["target"]["max_lost_writes"] == 0
    assert failed["acknowledged_writes"] == 412


def test_json_inconclusive_nulls(report_dir: Path) -> None:
    """An inconclusive drill writes null RTO seconds, RPO and target, and an open fault."""
    document = read_json(report_dir)
    inconclusive = document["drills"][3]
    assert inconclusive["negative_control"] is True
    assert inconclusive["rto_seconds"] is None
    assert inconclusive["rto"]["effect_seen"] is False
    assert inconclusive["rpo"] is None
    assert inconclusive["target"] is None
    assert inconclusive["fault"]["healed_at"] is None
    assert inconclusive["fault"]["injected_offset_seconds"] == 1.0
    assert inconclusive["faults"] == []


def test_schema_rejects_unknown_verdict_and_extra_field() -> None:
    """The schema is strict: an unknown verdict or an unexpected key fails validation."""
    entry = drill_to_dict(DRILLS[0], ANCHOR)
    schema = load_schema()
    validator = jsonschema.Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/drill"})
    assert validator.is_valid(entry)
    assert not validator.is_valid({**entry, "verdict": "passed"})
    assert not validator.is_valid({**entry, "surprise": 1})
    assert not validator.is_valid({**entry, "started_at": "2027-01-15 08:00:10"})


def test_json_refuses_nan(report_dir: Path) -> None:
    """A NaN measurement raises instead of writing invalid JSON, and leaves no file."""
    bad = drill(
        Verdict.PASS,
        "nan",
        rto=RtoResult(
            seconds=float("nan"), outage_started=None, recovered_at=None, effect_seen=True
        ),
    )
    with pytest.raises(ValueError, match="JSON compliant"):
        write_json(report_dir, RUN, [bad])
    assert not report_dir.exists() or list(report_dir.iterdir()) == []


def test_json_two_regions_validates(report_dir: Path) -> None:
    """A drill with services, functions, lag and notes validates next to the older drills."""
    path = write_json(report_dir, RUN, [*DRILLS, TWO_REGIONS])
    document = json.loads(path.read_text("utf-8"))
    assert validation_errors(document) == []
    assert document["schema_version"] == 1
    assert document["summary"]["warn"] == 2


def test_json_services(report_dir: Path) -> None:
    """Each service is written with its verdict, RTO, and RPO with the ages of lost writes."""
    entry = drill_to_dict(TWO_REGIONS, ANCHOR)
    assert [s["service"] for s in entry["services"]] == ["postgres", "redis", "s3"]
    assert entry["services"][2] == {
        "service": "s3",
        "verdict": "warn",
        "reason": "RTO 1.20s over target",
        "acknowledged_writes": 55,
        "rto": {
            "seconds": 1.2,
            "effect_seen": True,
            "outage_started_at": "2027-01-15T08:00:12.100000+00:00",
            "recovered_at": "2027-01-15T08:00:13.200000+00:00",
        },
        "rpo": {
            "lost_writes": 2,
            "lost_ids": [17, 18],
            "window_seconds": 0.4,
            "unacknowledged_present": 0,
            "lost_ages_seconds": [0.4, 0.1],
        },
    }
    postgres = entry["services"][0]
    assert postgres["rto"]["effect_seen"] is False
    assert postgres["rpo"]["lost_ages_seconds"] == []


def test_json_functions() -> None:
    """Each function is written with its services, the unexercised ones, RTO, RPO, target."""
    entry = drill_to_dict(TWO_REGIONS, ANCHOR)
    auth, video = entry["functions"]
    assert auth["function"] == "user_authentication"
    assert auth["services"] == ["postgres", "redis"]
    assert auth["not_exercised"] == ["ldap"]
    assert auth["target"] == drill_to_dict(DRILLS[0], ANCHOR)["target"]
    assert video["verdict"] == "warn"
    assert video["rto"]["seconds"] == 1.2
    assert video["rpo"] == {
        "lost_writes": 2,
        "lost_ids": [],
        "window_seconds": 0.4,
        "unacknowledged_present": 0,
    }
    assert video["target"]["kind"] == "function"
    assert video["target"]["rpo_max_seconds"] == 60.0
    assert video["target"]["max_lost_writes"] is None


def test_json_lag_and_notes() -> None:
    """Lag samples carry an offset from the drill's start, an ISO time and nullable figures."""
    entry = drill_to_dict(TWO_REGIONS, ANCHOR)
    assert entry["lag"][0] == {
        "offset_seconds": 1.5,
        "at": "2027-01-15T08:00:11.500000+00:00",
        "service": "postgres",
        "node": "pg-dr",
        "bytes": 4096,
        "seconds": 0.05,
        "healthy": True,
    }
    assert entry["lag"][1]["bytes"] is None and entry["lag"][1]["seconds"] is None
    assert entry["lag"][2]["healthy"] is False
    assert entry["notes"] == ["region failover: weights 3 >= threshold 3"]


def test_json_new_fields_always_written() -> None:
    """A drill without services still writes the four new fields, empty."""
    entry = drill_to_dict(DRILLS[0], ANCHOR)
    assert {k: entry[k] for k in ("services", "functions", "lag", "notes")} == {
        "services": [],
        "functions": [],
        "lag": [],
        "notes": [],
    }


def test_schema_accepts_reports_written_by_0_1() -> None:
    """A 0.1 drill entry, without the four new fields, still validates; half of them does not."""
    entry = drill_to_dict(TWO_REGIONS, ANCHOR)
    old = {k: v for k, v in entry.items() if k not in ("services", "functions", "lag", "notes")}
    assert validation_errors(old, "drill") == []
    partial = {**old, "services": entry["services"]}
    assert validation_errors(partial, "drill") != []


@pytest.mark.parametrize(
    ("definition", "path", "value"),
    [
        ("service", ("verdict",), "passed"),
        ("service", ("surprise",), 1),
        ("service", ("rpo", "lost_ages_seconds"), [-0.1]),
        ("function", ("target", "kind"), "service"),
        ("lag_sample", ("bytes",), -1),
        ("lag_sample", ("at",), "2027-01-15 08:00:11"),
    ],
)
def test_schema_rejects_bad_new_entries(
    definition: str, path: tuple[str, ...], value: object
) -> None:
    """The new definitions are as strict as the old ones."""
    entry = drill_to_dict(TWO_REGIONS, ANCHOR)
    item = {"service": entry["services"][2], "function": entry["functions"][1]}.get(
        definition, entry["lag"][0]
    )
    assert validation_errors(item, definition) == []
    bad = json.loads(json.dumps(item))
    parent = bad
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    assert validation_errors(bad, definition) != []


# --- drill-junit.xml -------------------------------------------------------------------


def test_junit_suite_counts_and_run_properties(report_dir: Path) -> None:
    """One drdrill suite with one testcase per drill, the run's properties and counts."""
    root = read_junit(report_dir)
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    assert suite.get("name") == "drdrill"
    assert suite.get("tests") == "4"
    assert suite.get("failures") == "2"  # a missed target, a negative control not red
    assert suite.get("errors") == "0"
    assert properties(suite) == {
        "run_id": RUN.run_id,
        "backend": "local",
        "cadence": "weekly",
        "git_sha": RUN.git_sha,
    }
    assert [c.get("name") for c in suite.findall("testcase")] == [d.name for d in DRILLS]
    assert {c.get("classname") for c in suite.findall("testcase")} == {"postgres_failover"}
    assert find_case(root, "crash-primary").get("time") == "11.500000"


def test_junit_verdict_mapping(report_dir: Path) -> None:
    """FAIL is a TargetMissed failure, a negative control not red a failure, WARN/PASS pass."""
    root = read_junit(report_dir)
    failure = find_case(root, "async-lag").find("failure")
    assert failure is not None
    assert failure.get("type") == "TargetMissed"
    assert failure.get("message") == "lost 3 acknowledged writes; tier_1_critical allows 0"
    not_red = find_case(root, "negative-control").find("failure")
    assert not_red is not None
    assert not_red.get("type") == "NegativeControlNotRed"
    assert not_red.get("message", "").startswith("negative control did not go red: ")
    assert find_case(root, "negative-control").find("error") is None
    for name in ("crash-primary", "freeze-primary"):
        case = find_case(root, name)
        assert case.find("failure") is None and case.find("error") is None
    warn_out = find_case(root, "freeze-primary").findtext("system-out", "")
    assert "RTO 2.100 s is over the tier_1_critical target" in warn_out


def test_junit_testcase_properties(report_dir: Path) -> None:
    """RTO, RPO, verdict and target are properties on each testcase, listed first."""
    root = read_junit(report_dir)
    warn = find_case(root, "freeze-primary")
    assert warn[0].tag == "properties"
    props = properties(warn)
    assert props["verdict"] == "warn"
    assert props["rto_seconds"] == "2.1"
    assert props["rpo_lost_writes"] == "0"
    assert props["rpo_window_seconds"] == "0.0"
    assert props["target"] == "tier_1_critical"
    assert props["rto_target_seconds"] == "1.0"
    assert props["rto_max_seconds"] == "5.0"
    assert properties(find_case(root, "async-lag"))["rpo_lost_writes"] == "3"
    inconclusive = properties(find_case(root, "negative-control"))
    assert inconclusive["rto_seconds"] == ""
    assert inconclusive["rpo_lost_writes"] == ""
    assert inconclusive["target"] == ""
    assert inconclusive["negative_control"] == "true"
    assert set(inconclusive) == set(props)


def test_junit_service_and_function_properties(report_dir: Path) -> None:
    """Each service and function adds drdrill.-prefixed properties to the drill's testcase."""
    root = ET.parse(write_junit(report_dir, RUN, [DRILLS[0], TWO_REGIONS])).getroot()
    props = properties(find_case(root, "region-outage"))
    assert {k: v for k, v in props.items() if k.startswith("drdrill.")} == {
        "drdrill.postgres.verdict": "pass",
        "drdrill.postgres.rto_seconds": "",
        "drdrill.postgres.lost_writes": "0",
        "drdrill.redis.verdict": "pass",
        "drdrill.redis.rto_seconds": "0.29",
        "drdrill.redis.lost_writes": "0",
        "drdrill.s3.verdict": "warn",
        "drdrill.s3.rto_seconds": "1.2",
        "drdrill.s3.lost_writes": "2",
        "drdrill.function.user_authentication.verdict": "pass",
        "drdrill.function.user_authentication.rto_seconds": "0.29",
        "drdrill.function.video_upload.verdict": "warn",
        "drdrill.function.video_upload.rto_seconds": "1.2",
    }
    assert props["verdict"] == "warn"
    assert props["rto_seconds"] == ""
    plain = properties(find_case(root, "crash-primary"))
    assert not any(k.startswith("drdrill.") for k in plain)


def test_junit_failure_with_empty_reason_still_fails(report_dir: Path) -> None:
    """A failed drill with no reason text still gets a failure element."""
    silent = drill(Verdict.FAIL, "silent", reason="", started_at=5.0, ended_at=5.0)
    path = write_junit(report_dir, RUN, [silent])
    root = ET.parse(path).getroot()
    case = find_case(root, "silent")
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "drill verdict: fail"
    assert case.get("time") == "0.000000"
    assert root.find("testsuite").get("failures") == "1"  # type: ignore[union-attr]


def test_junit_strips_illegal_xml_characters(report_dir: Path) -> None:
    """Control characters in backend error text do not break the XML."""
    noisy = drill(Verdict.FAIL, "noisy", reason="server said \x00\x1b[31mno\x1b[0m")
    root = ET.parse(write_junit(report_dir, RUN, [noisy])).getroot()
    failure = find_case(root, "noisy").find("failure")
    assert failure is not None
    assert failure.get("message") == "server said [31mno[0m"


# --- terminal summary ------------------------------------------------------------------


class FakeTerminal:
    """Just enough of pytest's TerminalReporter to capture the drill summary."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str, **markup: bool) -> None:
        self.text += text

    def write_line(self, line: str, **markup: bool) -> None:
        self.text += line + "\n"

    def write_sep(self, sep: str, title: str, **markup: bool) -> None:
        self.text += f"{sep * 3} {title} {sep * 3}\n"


def summary(pytestconfig: pytest.Config, drills: list[DrillResult]) -> list[str]:
    reporter = DrillReporter(pytestconfig, get_config(pytestconfig))
    for result in drills:
        reporter.add(result)
    terminal = FakeTerminal()
    reporter.pytest_terminal_summary(terminal)  # type: ignore[arg-type]
    return terminal.text.splitlines()[1:]


def test_summary_lists_hit_services_and_failing_functions(pytestconfig: pytest.Config) -> None:
    """Services with an outage or losses, and functions not passing, get an indented line."""
    lines = summary(pytestconfig, [TWO_REGIONS])
    assert lines[0].startswith("WARN         primary-region-outage  RTO -")
    assert lines[1] == f"             {TWO_REGIONS.reason}"
    assert lines[2:] == [
        "    redis                  RTO 0.29s  lost 0",
        "    s3                     RTO 1.20s  lost 2  WARN",
        "    function video_upload  RTO 1.20s  lost 2  WARN",
    ]


def test_summary_unrecovered_service_and_untouched_drill(pytestconfig: pytest.Config) -> None:
    """An unrecovered service says so; untouched services and passing functions get no line."""
    down = RtoResult(seconds=None, outage_started=1012.0, recovered_at=None, effect_seen=True)
    untouched = ServiceResult("redis", UNAFFECTED, NOTHING_LOST, 380, Verdict.PASS, "unaffected")
    stuck = two_region_drill(
        services=(ServiceResult("postgres", down, None, 10, Verdict.FAIL, "never recovered"),),
        functions=(),
    )
    quiet = two_region_drill(services=(untouched,), functions=TWO_REGIONS.functions[:1])
    lines = summary(pytestconfig, [stuck, quiet])
    details = [line for line in lines if line.startswith("    ") and line[4] != " "]
    assert details == ["    postgres  RTO not recovered  lost -  FAIL"]
    assert lines.index(details[0]) == 2  # under stuck's verdict and reason lines
    assert len(lines) == 5  # quiet: its verdict and reason lines only


# --- atomic writes ---------------------------------------------------------------------


def test_writes_leave_no_temporary_files(report_dir: Path) -> None:
    """After writing both reports twice, only the two report files remain."""
    for _ in range(2):
        write_json(report_dir, RUN, DRILLS)
        write_junit(report_dir, RUN, DRILLS)
    assert sorted(p.name for p in report_dir.iterdir()) == ["drill-junit.xml", "drill.json"]
    assert (report_dir / "drill.json").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("writer", [write_json, write_junit])
def test_failed_write_keeps_old_report(
    report_dir: Path, monkeypatch: pytest.MonkeyPatch, writer: Any
) -> None:
    """If the final rename fails, the previous report is untouched and no temp file stays."""
    old = writer(report_dir, RUN, DRILLS[:1])
    before = old.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        writer(report_dir, RUN, DRILLS)
    assert old.read_bytes() == before
    assert [p.name for p in report_dir.iterdir()] == [old.name]


def test_junit_inconclusive_drill_is_an_error(tmp_path: Path) -> None:
    """An inconclusive drill (not a negative control) is a DrillInconclusive error, not a pass."""
    inconclusive = dataclasses.replace(DRILLS[-1], negative_control=False)
    path = write_junit(tmp_path, RUN, [inconclusive])
    case = find_case(ET.parse(path).getroot(), inconclusive.name)
    error = case.find("error")
    assert error is not None and error.get("type") == "DrillInconclusive"
    assert case.find("failure") is None
