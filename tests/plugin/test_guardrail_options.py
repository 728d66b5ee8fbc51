"""``--drill-guardrails`` and the marker key ``guardrails=``: read, checked, shown in the plan."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

DRILLS = """
import pytest


@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", scenario="default-rails")
def test_default(drdrill):
    drdrill.faults.crash(drdrill.topology.primary)


@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", scenario="own-rails",
                     guardrails={"max_error_rate": 0.25, "window": "5s", "max_outage": None})
def test_own(drdrill):
    drdrill.faults.crash(drdrill.topology.primary)
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    shutil.copy(ROOT / "fixtures" / "targets.yaml", pytester.path / "targets.yaml")
    pytester.makepyfile(test_rails=DRILLS)
    return pytester


def _plan(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest(
        "--drill=monthly", "--drill-dry-run", f"--drill-targets={project.path / 'targets.yaml'}",
        *args,
    )  # fmt: skip


def test_the_default_is_the_tiers_maximum_and_a_marker_keeps_its_own(
    project: pytest.Pytester,
) -> None:
    result = _plan(project)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "default-rails *",
            "  guardrails: abort on outage over 30m00s; the kill switch*",
            "own-rails *",
            "  guardrails: abort on write error rate over 25% for 5*s; the kill switch*",
        ]
    )


def test_the_flag_sets_the_default(project: pytest.Pytester) -> None:
    result = _plan(project, "--drill-guardrails=max_outage=2m,max_error_rate=0.5,window=20s")
    result.stdout.fnmatch_lines(
        [
            "default-rails *",
            "  guardrails: abort on outage over 2m00s, write error rate over 50% for 20*s;*",
            "own-rails *",
            "  guardrails: abort on write error rate over 25% for 5*s; the kill switch*",
        ]
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("max_outage", "*'max_outage' is not key=value*--drill-guardrails / ini drill_guardrails*"),
        ("max_outage=soon", "*--drill-guardrails: guardrails max_outage:*"),
        ("max_error_rate=2", "*max_error_rate=2.0; give a share from 0 to below 1*"),
        ("max_outgae=2m", "*guardrails key(s) [[]'max_outgae'[]]; valid: max_outage*"),
    ],
)
def test_a_bad_flag_value_is_a_usage_error_naming_it(
    project: pytest.Pytester, value: str, message: str
) -> None:
    result = _plan(project, f"--drill-guardrails={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_bad_marker_value_names_the_drill(pytester: pytest.Pytester) -> None:
    shutil.copy(ROOT / "fixtures" / "targets.yaml", pytester.path / "targets.yaml")
    pytester.makepyfile(
        test_bad="""
import pytest

@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical",
                     guardrails={"functions": ["no_such_function"]})
def test_bad(drdrill):
    pass
"""
    )
    result = pytester.runpytest(
        "--drill=monthly", f"--drill-targets={pytester.path / 'targets.yaml'}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*test_bad.py::test_bad: guardrails functions [[]'no_such_function'[]] are not business*"]
    )
