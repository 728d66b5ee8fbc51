"""Shared helpers for the Chaos Toolkit tests: real drills, the `chaos` CLI, leftovers."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

# Kept imported across pytester's in-process runs (see tests/conftest.py): chaoslib and
# the extension would otherwise be imported again by every inner run.
import pytest_drdrill.chaostoolkit.collect  # noqa: F401
import pytest_drdrill.chaostoolkit.experiment  # noqa: F401
import pytest_drdrill.chaostoolkit.journals  # noqa: F401
from pytest_drdrill.servers import processes

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "scenarios" / "experiments"
CHAOS = Path(sys.executable).parent / "chaos"


@pytest.fixture
def needs_postgres() -> None:
    """Skip when the PostgreSQL server binaries are missing (as tests/drills does)."""
    from pytest_drdrill.topology.postgres import PostgresInstall

    try:
        PostgresInstall.discover(os.environ.get("DRDRILL_PG_BIN"))
    except Exception as exc:
        pytest.skip(f"real drills need PostgreSQL: {exc}")


@pytest.fixture
def drill_args(pytester: pytest.Pytester) -> list[str]:
    """Arguments for an inner pytest run that executes monthly drills in isolation."""
    shutil.copy(ROOT / "fixtures" / "targets.yaml", pytester.path / "targets.yaml")
    return [
        "--drill=monthly",
        f"--drill-targets={pytester.path / 'targets.yaml'}",
        f"--drill-report-dir={pytester.path / 'reports'}",
        "-p",
        "no:cacheprovider",
        "-rA",
    ]


@pytest.fixture
def chaos_command(tmp_path: Path) -> Callable[..., list[str]]:
    """Build a `chaos` command line: no network look-up, its log file in ``tmp_path``."""

    def command(*args: str) -> list[str]:
        return [str(CHAOS), "--no-version-check", "--log-file", str(tmp_path / "chaos.log"), *args]

    return command


@pytest.fixture
def leftovers() -> Callable[[int], list[str]]:
    """Find what a finished process left behind (see :func:`leftovers_of`)."""
    return leftovers_of


def leftovers_of(pid: int) -> list[str]:
    """Processes and data roots that the process ``pid`` started and left behind."""
    found = [
        f"process {child}"
        for child, owner in processes.tagged_processes()
        if owner.startswith(f"{pid}:")
    ]
    for root in Path(tempfile.gettempdir()).glob("drdrill-*"):
        try:
            if (root / "owner").read_text().startswith(f"{pid}:"):
                found.append(f"data root {root}")
        except OSError:
            continue
    return found
