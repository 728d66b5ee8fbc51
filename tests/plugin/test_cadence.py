"""``--drill-enforce-cadence``: a tier whose drill has not passed recently fails the run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from pytest_drdrill.reporting.history import entry_from_document

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "drill-example.json"
NO_DRILL = "def test_plain(): pass\n"


def _history(path: Path, days_ago: float) -> None:
    """Write a history whose one run (all drills passing, tier_1_critical) is ``days_ago`` old."""
    document = json.loads(EXAMPLE.read_text())
    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    document["run"]["started_at"] = when.isoformat()
    path.mkdir(parents=True, exist_ok=True)
    (path / "history.jsonl").write_text(json.dumps(entry_from_document(document)) + "\n")


def test_stale_tier_fails_the_run(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """The last passing monthly drill 40 days ago: the run fails, saying when and what to run."""
    _history(pytester.path / "reports", days_ago=40)
    pytester.makepyfile(NO_DRILL)
    result = pytester.runpytest("--drill=daily", "--drill-enforce-cadence")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "drdrill: CADENCE: tier 'tier_1_critical' must pass a monthly drill every 31 days; "
            "it last passed one on * (40.0 days ago*Run `pytest --drill=monthly`*"
        ]
    )


def test_recent_pass_satisfies_the_schedule(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """A passing monthly drill 3 days ago meets the monthly schedule."""
    _history(pytester.path / "reports", days_ago=3)
    pytester.makepyfile(NO_DRILL)
    result = pytester.runpytest("--drill=daily", "--drill-enforce-cadence")
    assert result.ret == pytest.ExitCode.OK
    assert "CADENCE" not in result.stdout.str()


def test_without_the_flag_a_stale_tier_passes(
    pytester: pytest.Pytester, targets_yaml: Path
) -> None:
    """Enforcement is opt-in."""
    _history(pytester.path / "reports", days_ago=400)
    pytester.makepyfile(NO_DRILL)
    result = pytester.runpytest("--drill=daily")
    assert result.ret == pytest.ExitCode.OK


def test_no_history_at_all_fails(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """With enforcement on and no history, the tier has never passed: the run fails."""
    pytester.makepyfile(NO_DRILL)
    result = pytester.runpytest("--drill=daily", "--drill-enforce-cadence")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*CADENCE: tier 'tier_1_critical'*never passed one*"])
