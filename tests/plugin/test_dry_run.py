"""``--drill-dry-run``: each selected drill's plan is printed and nothing runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    shutil.copy(ROOT / "fixtures" / "targets.yaml", pytester.path / "targets.yaml")
    shutil.copy(ROOT / "scenarios" / "test_postgres_failover.py", pytester.path)
    return pytester


def test_the_plan_names_faults_in_order_and_targets_and_nothing_runs(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest(
        "--drill=monthly", "--drill-dry-run", f"--drill-targets={project.path / 'targets.yaml'}",
        f"--drill-report-dir={project.path / 'reports'}",
    )  # fmt: skip
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "drdrill dry run: 8 drill(s) would run; nothing is started or injected",
            "primary-crash (monthly) *[[]crash[]]",
            "  judged against: tier tier_1_critical: RTO target 15m00s, maximum 30m00s; *"
            "at most 0 lost acknowledged writes",
            "    2. fault: drdrill.faults.crash(drdrill.topology.primary)",
            "replication-lag-async-promotion (monthly) *",
            "    2. fault: drdrill.faults.cut(topology.replication_links['pg-dr'])",
            "    3. fault: drdrill.faults.crash(node)",
            "    4. fault: drdrill.faults.crash(topology.primary)",
            "negative-control-no-promotion (monthly) *",
            "*negative control: recovery is broken on purpose, it must go red",
        ]
    )
    assert result.parseoutcomes() == {"deselected": 8}
    assert not (project.path / "reports").exists(), "a dry run wrote a report"


def test_the_ini_key_does_the_same(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\ndrill_dry_run = true\n")
    result = project.runpytest(
        "--drill=daily", f"--drill-targets={project.path / 'targets.yaml'}",
        f"--drill-report-dir={project.path / 'reports'}",
    )  # fmt: skip
    assert result.ret == 0
    result.stdout.fnmatch_lines(["drdrill dry run: 0 drill(s) would run*"])


def test_without_the_flag_drills_are_not_planned(project: pytest.Pytester) -> None:
    result = project.runpytest(
        "--drill-targets=" + str(project.path / "targets.yaml"), "--co", "-q"
    )
    assert "dry run" not in result.stdout.str()
