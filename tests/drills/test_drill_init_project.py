"""The project ``pytest --drill-init`` writes runs its example drill, with no other setup."""

from __future__ import annotations

import json

import pytest

from pytest_drdrill._version import __version__


def test_the_written_project_runs_its_example_drill(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--drill-init, then --drill=monthly: the example drill passes, judged and reported."""
    monkeypatch.delenv("DRDRILL_TOXIPROXY_URL", raising=False)
    assert pytester.runpytest("--drill-init").ret == 0
    result = pytester.runpytest("--drill=monthly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            f"drdrill: targets: {pytester.path / 'fixtures' / 'targets.yaml'}",
            "PASS*example-primary-crash*lost 0*target tier_1_critical*",
        ]
    )
    (report,) = (pytester.path / "reports").glob("*/drill.json")
    document = json.loads(report.read_text())
    (drill,) = document["drills"]
    assert drill["scenario"] == "example-primary-crash"
    assert document["run"]["versions"]["fault proxy"] == f"drdrill-proxy {__version__}"
