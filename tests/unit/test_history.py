"""Tests for the run history: appending, loading, trends, regressions and cadence."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import multiprocessing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_drdrill.reporting.history import (
    HISTORY_FILENAME,
    History,
    append_run,
    entry_from_document,
    load_history,
)
from pytest_drdrill.reporting.trend import (
    CadenceViolation,
    check_cadence,
    find_regressions,
    percentile,
    trend,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

DATA = Path(__file__).resolve().parents[1] / "data" / "history"
# Four drills of tier_1_critical at monthly cadence, one of them a negative control.
MONTHLY_WITH_CONTROL = "20261122T161038Z-e52525"
# Parametrised drills ([crash], [freeze], [clean-stop]); clean-stop is a weekly drill.
MONTHLY_PARAMETRISED = "20261122T163725Z-6d8544"
# Nine drills of a quarterly run: function targets and a drill with no RTO.
QUARTERLY = "20261122T175348Z-a6d4a8"

DAY = 86_400.0
ORIGIN = dt.datetime(2026, 9, 1, 12, 0, tzinfo=dt.UTC)


def document(run: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{run}.json").read_text("utf-8"))
    return data


def retimed(run: str, *, day: float, run_id: str | None = None) -> dict[str, Any]:
    """A copy of a real document moved to ``day`` days after ORIGIN under a new id."""
    doc = copy.deepcopy(document(run))
    doc["run"]["started_at"] = (ORIGIN + dt.timedelta(days=day)).isoformat()
    doc["run"]["id"] = run_id or f"{run}-day{day:g}"
    return doc


def with_rto(doc: dict[str, Any], scenario: str, rto: float | None) -> dict[str, Any]:
    for drill in doc["drills"]:
        if drill["scenario"] == scenario:
            drill["rto_seconds"] = rto
    return doc


def rto_history(
    rtos: Sequence[float | None], scenario: str = "primary-crash"
) -> list[dict[str, Any]]:
    """Entries of the quarterly run repeated a day apart, ``scenario``'s RTO set per run."""
    return [
        entry_from_document(with_rto(retimed(QUARTERLY, day=i), scenario, rto))
        for i, rto in enumerate(rtos)
    ]


def epoch(day: float) -> float:
    return (ORIGIN + dt.timedelta(days=day)).timestamp()


# -- entries -------------------------------------------------------------------------------


def test_entry_keeps_run_facts_and_each_drill() -> None:
    """An entry carries the run's id, start, sha, cadence, backend and every drill."""
    doc = document(MONTHLY_WITH_CONTROL)
    entry = entry_from_document(doc)
    assert entry["run_id"] == MONTHLY_WITH_CONTROL
    assert entry["started_at"] == doc["run"]["started_at"]
    assert entry["git_sha"] == doc["run"]["git_sha"]
    assert (entry["cadence"], entry["backend"]) == ("monthly", "local")
    assert [d["name"] for d in entry["drills"]] == [d["name"] for d in doc["drills"]]
    lag = entry["drills"][2]
    assert lag["scenario"] == "replication-lag-async-promotion"
    assert lag["lost_writes"] == doc["drills"][2]["rpo"]["lost_writes"] > 0
    assert lag["rto_seconds"] == doc["drills"][2]["rto_seconds"]
    assert (lag["target_kind"], lag["target_name"], lag["tier"]) == (
        "tier",
        "tier_1_critical",
        "tier_1_critical",
    )


def test_entry_marks_negative_control_without_rto() -> None:
    """A negative control keeps its flag, its red verdict and its missing RTO and RPO."""
    control = entry_from_document(document(MONTHLY_WITH_CONTROL))["drills"][3]
    assert control["negative_control"] is True
    assert control["verdict"] == "fail"
    assert control["rto_seconds"] is None
    assert control["lost_writes"] is None


def test_entry_function_target_has_no_tier_unless_given() -> None:
    """A function target leaves tier null, unless the target itself names a tier."""
    doc = document(QUARTERLY)
    storage = entry_from_document(doc)["drills"][7]
    assert (storage["target_kind"], storage["target_name"]) == ("function", "video_upload")
    assert storage["tier"] is None
    doc["drills"][7]["target"]["tier"] = "tier_2_important"
    assert entry_from_document(doc)["drills"][7]["tier"] == "tier_2_important"


def test_entry_keeps_parametrised_name_untouched() -> None:
    """A pytest id with a parameter suffix is kept whole, not parsed."""
    names = [d["name"] for d in entry_from_document(document(MONTHLY_PARAMETRISED))["drills"]]
    assert names[0].endswith("test_losing_the_primary_fails_over_to_the_sync_standby[crash]")


def test_entry_refuses_a_document_without_run() -> None:
    """A dict that is not a drill.json document is refused with a message saying so."""
    with pytest.raises(ValueError, match="not a drill.json document"):
        entry_from_document({"drills": []})
    doc = document(MONTHLY_WITH_CONTROL)
    del doc["run"]["started_at"]
    with pytest.raises(ValueError, match=r"run\.started_at"):
        entry_from_document(doc)


# -- appending and loading -----------------------------------------------------------------


def test_append_and_load_round_trip(tmp_path: Path) -> None:
    """Appended runs load back as their entries, one line each, in file order."""
    path = tmp_path / "reports" / HISTORY_FILENAME
    runs = [MONTHLY_WITH_CONTROL, MONTHLY_PARAMETRISED, QUARTERLY]
    for run in runs:
        append_run(path, document(run))
    history = load_history(path)
    assert history.problems == ()
    assert list(history) == [entry_from_document(document(run)) for run in runs]
    assert len(history) == len(path.read_text("utf-8").splitlines()) == 3


def test_append_leaves_earlier_bytes_alone(tmp_path: Path) -> None:
    """Appending a run only adds bytes at the end of the file."""
    path = tmp_path / HISTORY_FILENAME
    append_run(path, document(MONTHLY_WITH_CONTROL))
    before = path.read_bytes()
    append_run(path, document(QUARTERLY))
    after = path.read_bytes()
    assert after.startswith(before)
    assert after.count(b"\n") == 2


def _append_many(path: str, worker: int, start: Any) -> None:
    start.wait()
    doc = document(QUARTERLY)
    for i in range(50):
        doc["run"]["id"] = f"w{worker}-{i:02d}"
        append_run(Path(path), doc)


def test_concurrent_appends_keep_every_line_whole(tmp_path: Path) -> None:
    """Two processes appending 50 runs each at once leave 100 intact lines."""
    path = tmp_path / HISTORY_FILENAME
    context = multiprocessing.get_context("fork")
    start = context.Event()
    workers = [
        context.Process(target=_append_many, args=(str(path), worker, start)) for worker in (1, 2)
    ]
    for process in workers:
        process.start()
    start.set()
    for process in workers:
        process.join(timeout=60)
    assert [process.exitcode for process in workers] == [0, 0]
    history = load_history(path)
    assert history.problems == ()
    ids = [entry["run_id"] for entry in history]
    assert len(path.read_bytes().splitlines()) == 100
    for worker in (1, 2):
        # Each worker's lines are whole and in the order it wrote them.
        assert [i for i in ids if i.startswith(f"w{worker}-")] == [
            f"w{worker}-{i:02d}" for i in range(50)
        ]
    assert all(len(entry["drills"]) == 9 for entry in history)


def test_truncated_last_line_is_skipped_and_reported(tmp_path: Path) -> None:
    """A half-written last line is reported by file and line, and the rest still loads."""
    path = tmp_path / HISTORY_FILENAME
    append_run(path, document(MONTHLY_WITH_CONTROL))
    append_run(path, document(MONTHLY_PARAMETRISED))
    whole = json.dumps(entry_from_document(document(QUARTERLY)))
    with path.open("a", encoding="utf-8") as handle:
        handle.write(whole[: len(whole) // 2])
    history = load_history(path)
    assert [e["run_id"] for e in history] == [MONTHLY_WITH_CONTROL, MONTHLY_PARAMETRISED]
    assert len(history.problems) == 1
    assert history.problems[0].startswith(f"{path}:3: truncated line")


def test_append_after_truncated_line_starts_a_new_line(tmp_path: Path) -> None:
    """A run appended after a truncated line is not glued to it and loads intact."""
    path = tmp_path / HISTORY_FILENAME
    append_run(path, document(MONTHLY_WITH_CONTROL))
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"history_version":1,"run_id":"kill')
    append_run(path, document(QUARTERLY))
    history = load_history(path)
    assert [e["run_id"] for e in history] == [MONTHLY_WITH_CONTROL, QUARTERLY]
    assert len(history.problems) == 1
    assert history.problems[0].startswith(f"{path}:2: not valid JSON")


def test_corrupt_and_foreign_lines_are_skipped(tmp_path: Path) -> None:
    """Garbage, non-objects and lines of an unknown version are skipped with their line."""
    path = tmp_path / HISTORY_FILENAME
    append_run(path, document(MONTHLY_WITH_CONTROL))
    newer = {**entry_from_document(document(QUARTERLY)), "history_version": 99}
    no_time = {**entry_from_document(document(QUARTERLY)), "started_at": "yesterday"}
    with path.open("ab") as handle:
        handle.write(b"\xff\xfe not utf-8\n[1, 2]\n\n")
        handle.write(json.dumps(newer).encode() + b"\n" + json.dumps(no_time).encode() + b"\n")
    append_run(path, document(MONTHLY_PARAMETRISED))
    history = load_history(path)
    assert [e["run_id"] for e in history] == [MONTHLY_WITH_CONTROL, MONTHLY_PARAMETRISED]
    assert [problem.split(": ")[0] for problem in history.problems] == [
        f"{path}:2",
        f"{path}:3",
        f"{path}:5",
        f"{path}:6",
    ]
    assert "not a JSON object" in history.problems[1]
    assert "history_version 99" in history.problems[2]
    assert "'yesterday'" in history.problems[3]


def test_missing_history_is_empty(tmp_path: Path) -> None:
    """A history file that does not exist yet is an empty history with no problems."""
    assert load_history(tmp_path / HISTORY_FILENAME) == History()


# -- trend ---------------------------------------------------------------------------------


@given(
    st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=40),
    st.floats(0, 1),
)
def test_percentile_matches_numpy_linear(values: list[float], q: float) -> None:
    """The percentile is numpy's default (linear) interpolation."""
    assert percentile(values, q) == pytest.approx(np.percentile(values, q * 100), abs=1e-9)


def test_trend_of_real_runs_oldest_first_without_negative_controls() -> None:
    """The trend holds each scenario's runs oldest first and leaves negative controls out."""
    runs = [QUARTERLY, MONTHLY_PARAMETRISED, MONTHLY_WITH_CONTROL]
    result = trend(entry_from_document(document(run)) for run in runs)
    series = result["scenarios"]
    assert "negative-control-no-promotion" not in series
    assert [p["run_id"] for p in series["primary-crash"]] == sorted(runs)
    first = series["primary-crash"][0]
    crash = document(MONTHLY_WITH_CONTROL)["drills"][0]
    assert first == {
        "run_id": MONTHLY_WITH_CONTROL,
        "started_at": document(MONTHLY_WITH_CONTROL)["run"]["started_at"],
        "n": 1,
        "rto_p50": crash["rto_seconds"],
        "rto_p95": crash["rto_seconds"],
        "passed": 1,
        "failed": 0,
    }
    assert set(series["primary-clean-stop"][0]) == set(first)
    assert [p["run_id"] for p in series["primary-region-outage"]] == [QUARTERLY]
    assert result["regressions"] == []
    json.dumps(result, allow_nan=False)


def test_trend_point_counts_repeats_and_skips_missing_rto() -> None:
    """Repeated drills of a scenario form one point; null RTOs are out of the percentiles."""
    doc = document(MONTHLY_PARAMETRISED)
    crash = doc["drills"][0]
    repeats = []
    for index, (rto, verdict) in enumerate([(0.3, "pass"), (0.5, "warn"), (0.4, "pass")]):
        repeats.append({**crash, "name": f"{crash['name']}-r{index}", "rto_seconds": rto})
        repeats[-1]["verdict"] = verdict
    repeats.append({**crash, "name": f"{crash['name']}-r3", "rto_seconds": None, "verdict": "fail"})
    doc["drills"] = repeats
    (point,) = trend([entry_from_document(doc)])["scenarios"]["primary-crash"]
    assert (point["n"], point["passed"], point["failed"]) == (4, 3, 1)
    assert point["rto_p50"] == pytest.approx(0.4)
    # Linear interpolation: 0.95 of the way from rank 1 (0.4) to rank 2 (0.5).
    assert point["rto_p95"] == pytest.approx(0.49)


def test_trend_passing_drill_without_rto_has_null_percentiles() -> None:
    """A scenario whose passing drill has no RTO gets null percentiles and counts as passed."""
    series = trend([entry_from_document(document(QUARTERLY))])["scenarios"]
    (point,) = series["latency-200ms-no-false-failover"]
    assert (point["rto_p50"], point["rto_p95"], point["passed"], point["failed"]) == (
        None,
        None,
        1,
        0,
    )


def test_trend_filters_scenarios() -> None:
    """Only the scenarios asked for appear."""
    entries = [entry_from_document(document(run)) for run in (QUARTERLY, MONTHLY_PARAMETRISED)]
    result = trend(entries, scenarios={"primary-freeze", "no-such-scenario"})
    assert list(result["scenarios"]) == ["primary-freeze"]
    assert len(result["scenarios"]["primary-freeze"]) == 2


# -- regressions ---------------------------------------------------------------------------


def test_stable_history_small_rise_is_not_a_regression() -> None:
    """A rise of a few milliseconds over a perfectly stable history is not flagged."""
    assert find_regressions(rto_history([0.40, 0.40, 0.40, 0.40, 0.40, 0.402])) == []
    assert find_regressions(rto_history([0.40, 0.41, 0.40, 0.42, 0.41, 0.45])) == []


def test_clear_jump_is_a_regression() -> None:
    """A latest p50 far above a steady history is flagged with numbers and detail."""
    entries = rto_history([0.40, 0.41, 0.42, 0.41, 0.43, 1.9])
    (regression,) = find_regressions(entries)
    assert regression["scenario"] == "primary-crash"
    assert regression["run_id"] == entries[-1]["run_id"]
    assert regression["rto_p50"] == pytest.approx(1.9)
    assert regression["baseline_p50"] == pytest.approx(0.41)
    # MAD 0.01 gives 0.044 s of noise, below the 0.1 s floor.
    assert regression["noise_seconds"] == pytest.approx(0.1)
    assert regression["detail"] == (
        "RTO p50 1.90s is 1.49s above the median of the previous 5 runs (0.41s), "
        "beyond their noise of 0.10s"
    )
    assert trend(entries)["regressions"] == [regression]


def test_each_backend_has_its_own_series() -> None:
    """A slower Docker run after local ones is its own series, not a local regression."""
    entries = rto_history([0.40, 0.41, 0.42, 0.41, 0.43, 2.2])
    entries[-1]["backend"] = "docker"
    assert find_regressions(entries) == []
    series = trend(entries)["scenarios"]
    assert [p["rto_p50"] for p in series["primary-crash (docker)"]] == [pytest.approx(2.2)]
    assert len(series["primary-crash"]) == 5


def test_each_ha_stack_and_backup_tool_has_its_own_series() -> None:
    """pg_auto_failover waits out its health checks: that is not the reference regressing."""
    entries = rto_history([0.56, 0.55, 0.57, 0.56, 0.58, 5.94, 0.9])
    entries[-2]["postgres_failover"] = "pg_auto_failover"
    entries[-1].update(postgres_failover="reference", backup_tool="pgbackrest", backend="docker")
    assert find_regressions(entries) == []
    series = trend(entries)["scenarios"]
    assert [p["rto_p50"] for p in series["primary-crash (pg_auto_failover)"]] == [
        pytest.approx(5.94)
    ]
    assert len(series["primary-crash (docker) (pgbackrest)"]) == 1
    assert len(series["primary-crash"]) == 5


def test_rise_inside_noise_of_a_noisy_history_is_not_a_regression() -> None:
    """The same rise is flagged after a steady history but not after a noisy one."""
    noisy = [0.3, 1.2, 0.5, 1.4, 0.4]
    steady = [0.5, 0.5, 0.5, 0.5, 0.5]
    # Noisy: median 0.5, MAD 0.2, noise 3 * 1.4826 * 0.2 = 0.89 s; a rise of 0.7 s is inside.
    assert find_regressions(rto_history([*noisy, 1.2])) == []
    assert len(find_regressions(rto_history([*steady, 1.2]))) == 1
    assert len(find_regressions(rto_history([*noisy, 1.5]))) == 1


def test_too_few_earlier_runs_flag_nothing() -> None:
    """Fewer than min_runs earlier runs never flag; exactly min_runs do."""
    assert find_regressions(rto_history([0.4, 0.4, 5.0])) == []
    assert len(find_regressions(rto_history([0.4, 0.4, 0.4, 5.0]))) == 1
    assert find_regressions(rto_history([0.4, 0.4, 0.4, 5.0]), min_runs=4, window=5) == []


def test_baseline_is_the_window_before_the_latest_run() -> None:
    """Only the previous ``window`` runs form the baseline."""
    entries = rto_history([2.0] * 6 + [0.4, 0.4, 0.4, 1.9])
    assert len(find_regressions(entries, window=3)) == 1
    assert find_regressions(entries, window=9) == []


def test_latest_is_by_start_time_not_file_order() -> None:
    """The run compared is the latest to start, wherever its line is."""
    entries = rto_history([0.4, 0.4, 0.4, 0.4, 1.9])
    assert len(find_regressions(reversed(entries))) == 1
    # The slow run is the oldest here, so nothing is flagged.
    early_slow = rto_history([1.9, 0.4, 0.4, 0.4, 0.4])
    assert find_regressions(list(reversed(early_slow))) == []


def test_negative_controls_and_missing_rtos_never_regress() -> None:
    """A slow negative control or a latest run without an RTO is not a regression."""
    scenario = "negative-control-no-promotion"
    docs = [with_rto(retimed(MONTHLY_WITH_CONTROL, day=i), scenario, 0.4) for i in range(5)]
    with_rto(docs[-1], scenario, 30.0)
    assert find_regressions(entry_from_document(doc) for doc in docs) == []
    # primary-crash's latest run lacks an RTO; the run before it (0.4) is compared instead.
    assert find_regressions(rto_history([0.4, 0.4, 0.4, 0.4, 0.4, None])) == []
    assert len(find_regressions(rto_history([0.4, 0.4, 0.4, 0.4, 1.9, None]))) == 1


def test_find_regressions_refuses_impossible_window() -> None:
    """A min_runs above the window could never flag and is refused."""
    with pytest.raises(ValueError, match="min_runs at most window"):
        find_regressions([], window=2, min_runs=3)


# -- cadence -------------------------------------------------------------------------------


def test_recent_monthly_pass_meets_monthly_and_quarterly() -> None:
    """A monthly drill that passed 10 days ago meets a monthly and a quarterly need."""
    entries = [entry_from_document(retimed(MONTHLY_WITH_CONTROL, day=0))]
    schedule = {"tier_1_critical": "monthly"}
    assert check_cadence(entries, schedule, now=epoch(10)) == []
    assert check_cadence(entries, {"tier_1_critical": "quarterly"}, now=epoch(91)) == []


def test_overdue_monthly_names_date_age_and_fix() -> None:
    """A monthly need last met 32 days ago is a violation saying when and how to fix."""
    entries = [
        entry_from_document(retimed(MONTHLY_WITH_CONTROL, day=0, run_id="old")),
        entry_from_document(retimed(MONTHLY_WITH_CONTROL, day=1, run_id="last")),
    ]
    (violation,) = check_cadence(entries, {"tier_1_critical": "monthly"}, now=epoch(33))
    assert (violation.tier, violation.cadence, violation.window_days) == (
        "tier_1_critical",
        "monthly",
        31,
    )
    assert violation.last_run_id == "last"
    assert violation.last_passed == epoch(1)
    assert violation.message == (
        "tier 'tier_1_critical' must pass a monthly drill every 31 days; it last passed one "
        "on 2026-09-02 (32.0 days ago, run last). Run `pytest --drill=monthly` and make the "
        "tier's drills pass; each run is recorded in history.jsonl in the report directory "
        "(--drill-report-dir)."
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        violation.tier = "other"  # type: ignore[misc]


def test_less_frequent_drill_does_not_meet_a_more_frequent_need() -> None:
    """A monthly drill does not meet a weekly need; the weekly clean-stop drill does."""
    monthly_only = [entry_from_document(retimed(MONTHLY_WITH_CONTROL, day=0))]
    (violation,) = check_cadence(monthly_only, {"tier_1_critical": "weekly"}, now=epoch(1))
    assert violation.last_passed is None
    assert "it has never passed one in the history" in violation.message
    assert "--drill=weekly" in violation.message
    with_weekly = [entry_from_document(retimed(MONTHLY_PARAMETRISED, day=0))]
    assert check_cadence(with_weekly, {"tier_1_critical": "weekly"}, now=epoch(1)) == []
    assert len(check_cadence(with_weekly, {"tier_1_critical": "daily"}, now=epoch(0.5))) == 1


def test_failed_drills_and_negative_controls_do_not_count() -> None:
    """Only pass or warn verdicts of real drills meet a cadence; warn does."""
    doc = retimed(MONTHLY_WITH_CONTROL, day=0)
    for drill in doc["drills"]:
        drill["verdict"] = "pass" if drill["negative_control"] else "fail"
    schedule = {"tier_1_critical": "monthly"}
    assert len(check_cadence([entry_from_document(doc)], schedule, now=epoch(1))) == 1
    doc["drills"][0]["verdict"] = "warn"
    assert check_cadence([entry_from_document(doc)], schedule, now=epoch(1)) == []


def test_function_drills_count_for_no_tier() -> None:
    """Drills judged against a business function do not meet any tier's cadence."""
    doc = retimed(QUARTERLY, day=0)
    doc["drills"] = [d for d in doc["drills"] if d["target"]["kind"] == "function"]
    entries = [entry_from_document(doc)]
    schedule = {"tier_1_critical": "quarterly"}
    assert len(check_cadence(entries, schedule, now=epoch(1))) == 1
    for drill in doc["drills"]:
        drill["target"]["tier"] = "tier_1_critical"
    assert check_cadence([entry_from_document(doc)], schedule, now=epoch(1)) == []


def test_each_tier_is_checked_in_schedule_order() -> None:
    """Every tier of the schedule gets its own verdict, in the schedule's order."""
    entries = [entry_from_document(retimed(MONTHLY_WITH_CONTROL, day=0))]
    schedule = {"tier_3_standard": "quarterly", "tier_1_critical": "monthly", "t2": "daily"}
    violations = check_cadence(entries, schedule, now=epoch(2))
    assert [(v.tier, v.cadence) for v in violations] == [
        ("tier_3_standard", "quarterly"),
        ("t2", "daily"),
    ]
    assert all(isinstance(v, CadenceViolation) for v in violations)


def test_unknown_cadence_is_refused() -> None:
    """A schedule with an unknown cadence is refused, naming the tier and the choices."""
    with pytest.raises(ValueError, match=r"tier 'tier_1_critical' requires cadence 'hourly'"):
        check_cadence([], {"tier_1_critical": "hourly"}, now=0.0)
