"""The Prometheus figures: drdrill.prom parsed back, the tiers' last passes, a refused push."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pytest_drdrill import timing
from pytest_drdrill.reporting.drill_json import run_to_dict
from pytest_drdrill.reporting.history import append_run
from pytest_drdrill.reporting.prometheus import (
    FILENAME,
    METRICS,
    PrometheusWriter,
    phase_label,
)
from pytest_drdrill.reporting.trend import last_passed
from pytest_drdrill.reporting.writer import RunResults
from pytest_drdrill.results import (
    DrillResult,
    FaultRecord,
    FunctionResult,
    Phase,
    RpoResult,
    RtoResult,
    RunInfo,
    ServiceResult,
    Target,
    Verdict,
)
from pytest_drdrill.targets import load_targets
from pytest_drdrill.timing import Anchor

ROOT = Path(__file__).resolve().parents[2]
ANCHOR = Anchor(mono=1000.0, wall=1_800_000_000.0)
RUN = RunInfo(
    run_id="20270115T080000Z-abc123",
    anchor=ANCHOR,
    git_sha="0123456789abcdef0123456789abcdef01234567",
    versions={"pytest-drdrill": "0.6.0"},
    backend="local",
    cadence="monthly",
)
TIER1 = Target("tier", "tier_1_critical", rto_target=900.0, rto_max=1800.0)
UPLOAD = Target("function", "video_upload", rto_target=1800.0, rto_max=3600.0)


def _drill(name: str, verdict: Verdict, **changes: object) -> DrillResult:
    fault = FaultRecord("crash", "pg-primary", injected_at=1012.0, healed_at=1020.0)
    fields: dict[str, object] = {
        "name": name,
        "scenario": "primary-crash",
        "backend": "local",
        "cadence": "monthly",
        "fault": fault,
        "faults": (fault,),
        "phases": (
            Phase("detection", 1012.0, 1012.25),
            Phase("promotion", 1012.25, 1012.30),
        ),
        "verdict": verdict,
        "reason": "measured",
        "rto": RtoResult(0.75, 1012.0, 1012.75, effect_seen=True),
        "rpo": RpoResult(2, (7, 8), 0.125, 0),
        "target": TIER1,
        "started_at": 1010.0,
        "ended_at": 1021.5,
    }
    fields.update(changes)
    return DrillResult(**fields)  # type: ignore[arg-type]


DRILLS = (
    _drill(
        'scenarios/test_x.py::test_crash[a"b]',
        Verdict.PASS,
        services=(
            ServiceResult(
                "postgres",
                RtoResult(0.75, 1012.0, 1012.75, effect_seen=True),
                RpoResult(2, (7, 8), 0.125, 0),
                100,
                Verdict.PASS,
                "ok",
            ),
            ServiceResult("redis", None, None, 50, Verdict.PASS, "untouched"),
        ),
        functions=(
            FunctionResult(
                "video_upload",
                ("postgres", "s3"),
                (),
                RtoResult(0.8, 1012.0, 1012.8, effect_seen=True),
                RpoResult(2, (7, 8), 0.125, 0),
                Verdict.PASS,
                "ok",
                UPLOAD,
            ),
        ),
    ),
    _drill(
        "scenarios/test_x.py::test_never_back",
        Verdict.FAIL,
        scenario="never-back",
        rto=RtoResult(None, 1012.0, None, effect_seen=True),
        target=UPLOAD,
        phases=(
            Phase("schedule 1", 1011.0, 1011.5),
            Phase("schedule 2", 1011.5, 1012.5),
            Phase("detection", 1012.0, 1012.25),
        ),
    ),
    _drill(
        "scenarios/test_x.py::test_negative_control",
        Verdict.FAIL,
        scenario="broken-failover",
        negative_control=True,
    ),
)


def _results(tmp_path: Path, drills: tuple[DrillResult, ...] = DRILLS) -> RunResults:
    report_dir = tmp_path / "reports"
    directory = report_dir / RUN.run_id
    directory.mkdir(parents=True)
    return RunResults(
        directory=directory,
        run=RUN,
        drills=drills,
        document=run_to_dict(RUN, drills),
        history_file=report_dir / "history.jsonl",
        targets=load_targets(ROOT / "fixtures" / "targets.yaml"),
    )


def _samples(path: Path) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a text exposition file, keyed by name and label set."""
    samples = {}
    for family in text_string_to_metric_families(path.read_text("utf-8")):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = sample.value
    return samples


def _key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> timing.MockClock:
    """A clock whose wall time is one hour after the run's start."""
    mock = timing.MockClock(now=ANCHOR.mono + 3600.0, epoch=ANCHOR.wall - ANCHOR.mono)
    return mock.install(monkeypatch)


def test_textfile_parses_back_to_every_figure(tmp_path: Path, clock: timing.MockClock) -> None:
    """drdrill.prom parses with prometheus_client and holds each drill's measured figures."""
    results = _results(tmp_path)
    written = PrometheusWriter().write(results)
    path = results.directory / FILENAME
    assert written == [
        ("prometheus", path),
        ("prometheus latest", results.directory.parent / FILENAME),
    ]
    samples = _samples(path)
    crash = {"drill": 'scenarios/test_x.py::test_crash[a"b]', "scenario": "primary-crash"}
    drill = {**crash, "tier": "tier_1_critical"}
    assert samples[_key("drdrill_drill_rto_seconds", **drill)] == 0.75
    assert samples[_key("drdrill_drill_rpo_seconds", **drill)] == 0.125
    assert samples[_key("drdrill_drill_lost_writes", **drill)] == 2
    assert samples[_key("drdrill_drill_duration_seconds", **drill)] == 11.5
    assert samples[_key("drdrill_drill_rto_max_seconds", **drill)] == 1800.0
    assert samples[_key("drdrill_drill_verdict", **drill, verdict="pass")] == 1
    assert samples[_key("drdrill_drill_verdict", **drill, verdict="fail")] == 0
    assert samples[_key("drdrill_drill_as_expected", **drill)] == 1
    assert samples[_key("drdrill_service_rto_seconds", **crash, service="postgres")] == 0.75
    assert samples[_key("drdrill_service_verdict", **crash, service="redis", verdict="pass")] == 1
    # A service the fault left alone has a verdict but no RTO.
    assert _key("drdrill_service_rto_seconds", **crash, service="redis") not in samples
    # The function's tier comes from the targets file: video_upload is tier_2_high.
    upload = {**crash, "function": "video_upload", "tier": "tier_2_high"}
    assert samples[_key("drdrill_function_rto_seconds", **upload)] == 0.8
    assert samples[_key("drdrill_function_lost_writes", **upload)] == 2
    detection = _key("drdrill_phase_duration_seconds", **crash, phase="detection")
    assert samples[detection] == pytest.approx(0.25)
    assert samples[_key("drdrill_run_drills", verdict="fail")] == 2
    assert samples[_key("drdrill_run_start_timestamp_seconds")] == ANCHOR.wall
    info = _key(
        "drdrill_run_info", run_id=RUN.run_id, git_sha=RUN.git_sha or "", backend="local",
        cadence="monthly",
    )  # fmt: skip
    assert samples[info] == 1
    assert (results.directory.parent / FILENAME).read_text() == path.read_text()


def test_unrecovered_drill_has_no_rto_and_negative_control_red_is_expected(
    tmp_path: Path, clock: timing.MockClock
) -> None:
    """No RTO sample where nothing recovered; a red negative control counts as expected."""
    results = _results(tmp_path)
    PrometheusWriter().write(results)
    samples = _samples(results.directory / FILENAME)
    never = {
        "drill": "scenarios/test_x.py::test_never_back",
        "scenario": "never-back",
        "tier": "tier_2_high",
    }
    assert _key("drdrill_drill_rto_seconds", **never) not in samples
    assert samples[_key("drdrill_drill_as_expected", **never)] == 0
    control = {
        "drill": "scenarios/test_x.py::test_negative_control",
        "scenario": "broken-failover",
        "tier": "tier_1_critical",
    }
    assert samples[_key("drdrill_drill_verdict", **control, verdict="fail")] == 1
    assert samples[_key("drdrill_drill_as_expected", **control)] == 1
    # Numbered phases are one series: their durations summed, their count kept.
    schedule = {**{k: never[k] for k in ("drill", "scenario")}, "phase": "schedule"}
    assert samples[_key("drdrill_phase_duration_seconds", **schedule)] == pytest.approx(1.5)
    assert samples[_key("drdrill_phase_occurrences", **schedule)] == 2


def test_tier_ages_come_from_the_history(tmp_path: Path, clock: timing.MockClock) -> None:
    """The time since a tier last passed counts earlier runs, and this run's own passes."""
    earlier = RunInfo(
        run_id="20270110T080000Z-old000",
        anchor=Anchor(mono=0.0, wall=ANCHOR.wall - 5 * 86_400.0),
        git_sha=None,
        versions={},
        backend="local",
        cadence="weekly",
    )
    # Five days ago tier_2_high passed (a tier target); this run fails it.
    old = _drill("old", Verdict.PASS, target=Target("tier", "tier_2_high", 1.0, 2.0))
    results = _results(tmp_path)
    append_run(results.history_file, run_to_dict(earlier, [old]))
    PrometheusWriter().write(results)
    samples = _samples(results.directory / FILENAME)
    tier2 = _key("drdrill_tier_since_last_pass_seconds", tier="tier_2_high")
    assert samples[tier2] == pytest.approx(5 * 86_400.0 + 3600.0)
    # This run passed tier_1_critical an hour ago (the run's start).
    assert samples[_key("drdrill_tier_since_last_pass_seconds", tier="tier_1_critical")] == 3600.0
    assert samples[_key("drdrill_tier_last_pass_timestamp_seconds", tier="tier_1_critical")] == (
        ANCHOR.wall
    )
    interval = _key("drdrill_tier_pass_interval_seconds", tier="tier_1_critical", cadence="monthly")
    assert samples[interval] == 31 * 86_400.0


def test_last_passed_skips_failures_and_negative_controls() -> None:
    """Only passing or warning drills that are not negative controls count for a tier."""
    drill = {"tier": "t1", "verdict": "pass", "negative_control": False}
    entries = [
        {"run_id": "a", "started_at": "2027-01-01T00:00:00+00:00", "drills": [drill]},
        {
            "run_id": "b",
            "started_at": "2027-01-02T00:00:00+00:00",
            "drills": [
                {**drill, "verdict": "fail"},
                {**drill, "negative_control": True},
                {**drill, "tier": "t2", "verdict": "warn"},
            ],
        },
    ]
    found = last_passed(entries)
    assert found["t1"][1] == "a"
    assert found["t2"][1] == "b"


def test_phase_label_drops_a_trailing_counter_only() -> None:
    """'schedule 12' is the schedule phase; names without a counter stay whole."""
    assert phase_label("schedule 12") == "schedule"
    assert phase_label("storage-switch") == "storage-switch"
    assert phase_label("region 2 failover") == "region 2 failover"


def test_unreachable_pushgateway_is_a_problem_and_the_file_is_written(
    tmp_path: Path, clock: timing.MockClock
) -> None:
    """A refused push names the URL and the option; drdrill.prom is still written."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port now: the connection is refused.
    url = f"http://127.0.0.1:{port}"
    writer = PrometheusWriter(url)
    results = _results(tmp_path)
    written = writer.write(results)
    assert (results.directory / FILENAME).is_file()
    assert len(written) == 2
    (problem,) = writer.problems
    assert f"Pushgateway at {url} (--drill-pushgateway / ini drill_pushgateway)" in problem
    assert "refused" in problem.lower()
    assert str(results.directory / FILENAME) in problem


def test_readme_documents_every_metric() -> None:
    """The README (or the docs it moves to) names each metric the writer emits."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    readme = "\n".join(page.read_text("utf-8") for page in pages)
    missing = [name for name in METRICS if f"`{name}`" not in readme]
    assert not missing, f"README.md does not document {missing}"


def test_written_figures_agree_with_drill_json(tmp_path: Path, clock: timing.MockClock) -> None:
    """Every RTO in drill.json is the RTO sample of the same drill."""
    results = _results(tmp_path)
    PrometheusWriter().write(results)
    samples = _samples(results.directory / FILENAME)
    document = json.loads(json.dumps(results.document))
    rtos = {
        dict(labels)["drill"]: value
        for (name, labels), value in samples.items()
        if name == "drdrill_drill_rto_seconds"
    }
    expected = {d["name"]: d["rto_seconds"] for d in document["drills"] if d["rto_seconds"]}
    assert rtos == expected
