"""Shared helpers for tests that run real drills (PostgreSQL on the local backend)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from drill_helpers import ROOT
from pytest_drdrill.topology.local import LocalBackend, LocalTopology
from pytest_drdrill.topology.postgres import PostgresInstall


def _postgres_missing() -> str | None:
    try:
        PostgresInstall.discover(os.environ.get("DRDRILL_PG_BIN"))
    except Exception as exc:
        return str(exc)
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = _postgres_missing()
    if missing is None:
        return
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.skip(reason=f"real drills need PostgreSQL: {missing}"))


@pytest.fixture
def drill_args(pytester: pytest.Pytester) -> list[str]:
    """Arguments for an inner pytest run that executes monthly drills in isolation."""
    shutil.copy(ROOT / "fixtures" / "targets.yaml", pytester.path / "targets.yaml")
    return [
        "--drill=monthly",
        "--drill-backend=local",
        f"--drill-targets={pytester.path / 'targets.yaml'}",
        f"--drill-report-dir={pytester.path / 'reports'}",
        "-p",
        "no:cacheprovider",
        "-rA",
    ]


@pytest.fixture(scope="module")
def topology(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalBackend, LocalTopology]]:
    """A local backend and one two-region topology, shared by a module's tests."""
    backend = LocalBackend(tmp_path_factory.mktemp("backend")).start()
    try:
        topo = backend.topology(tmp_path_factory.mktemp("topology"))
        try:
            yield backend, topo
        finally:
            topo.close()
    finally:
        backend.close()
