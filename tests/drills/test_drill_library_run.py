"""A project with nothing of its own runs the library's daily drills, judged and reported."""

from __future__ import annotations

import json

import pytest


def test_the_library_daily_drills_run_in_an_empty_project(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRDRILL_TOXIPROXY_URL", raising=False)
    result = pytester.runpytest_subprocess(
        "--drill=daily", "--drill-library", "-p", "no:cacheprovider"
    )
    (line,) = [x for x in result.stdout.lines if x.startswith("collected ")]
    collected = int(line.split()[1])
    # Every library drill is collected and only the daily one runs; the count grows with
    # the library, so it is read from the run rather than written here.
    assert collected > 20, line
    result.assert_outcomes(passed=1, skipped=collected - 1)
    result.stdout.fnmatch_lines(
        ["drdrill: targets: packaged defaults*", "PASS*backup-verification-daily*"]
    )
    (report,) = (pytester.path / "reports").glob("*/drill.json")
    (drill,) = json.loads(report.read_text())["drills"]
    assert drill["scenario"] == "backup-verification-daily"
    assert drill["verdict"] == "pass"
