"""``--drill-library``: the drills that ship, collected from the installed package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_library_joins_the_collection_and_selection_applies(pytester: pytest.Pytester) -> None:
    """From a project with no drills of its own, the library's drills are collected."""
    result = pytester.runpytest("--drill=monthly", "--drill-library", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*experiment-primary-crash.json::chaos-primary-crash",
            "*test_backups.py::test_dropped_table_restored_to_the_moment_before",
            "*test_postgres_failover.py::test_losing_the_primary_fails_over_to_the_sync_standby[[]crash]",
        ]
    )
    selected = pytester.runpytest(
        "--drill=monthly", "--drill-library", "--collect-only", "-q", "-k", "dropped_table"
    )
    selected.stdout.fnmatch_lines(["*test_dropped_table_restored_to_the_moment_before*"])
    assert "test_losing_the_primary" not in selected.stdout.str()


def test_without_the_flag_nothing_of_the_library_is_collected(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--drill=monthly", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_the_built_wheel_holds_the_library(tmp_path: Path) -> None:
    """What pip installs carries the scenarios and their experiments, not a dangling link."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("pytest_drdrill-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.name for p in (ROOT / "scenarios").glob("test_*.py")}
    assert {f"pytest_drdrill/library/{n}" for n in shipped} <= names, sorted(names)
    experiments = {p.name for p in (ROOT / "scenarios" / "experiments").iterdir()}
    assert {f"pytest_drdrill/library/experiments/{n}" for n in experiments} <= names
