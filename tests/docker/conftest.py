"""Tests of the Docker backend: they need a Docker daemon with the images built.

Without one they are skipped, unless ``DRDRILL_REQUIRE_DOCKER`` is set (CI sets it): then
they fail, so a CI machine whose engine did not start cannot pass them silently.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_helpers import ROOT

from pytest_drdrill.errors import TopologyError
from pytest_drdrill.topology.docker import DockerBackend, DockerTopology
from pytest_drdrill.topology.docker_engine import Images, connect, require_images

REQUIRE_ENV = "DRDRILL_REQUIRE_DOCKER"


@functools.cache
def docker_problem() -> str | None:
    """Why the Docker tests cannot run here, or ``None``."""
    try:
        client = connect(timeout=5)
    except TopologyError as exc:
        return str(exc)
    try:
        require_images(client, Images())
    except TopologyError as exc:
        return str(exc)
    finally:
        client.close()
    return None


@pytest.fixture(scope="module", autouse=True)
def _docker_available() -> None:
    # Module scope: it must run before the module fixtures that talk to the daemon (the
    # compose stack, the shared backend), which a function fixture would come after.
    problem = docker_problem()
    if problem is None:
        return
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"{REQUIRE_ENV} is set but the Docker backend cannot run: {problem}")
    pytest.skip(f"Docker backend unavailable (set {REQUIRE_ENV}=1 to fail instead): {problem}")


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerBackend]:
    """A started Docker backend shared by a module's tests."""
    if docker_problem() is not None:
        pytest.skip("no Docker")
    started = DockerBackend(tmp_path_factory.mktemp("docker-backend")).start()
    try:
        yield started
    finally:
        started.close()


@pytest.fixture(scope="module")
def topology(
    backend: DockerBackend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DockerTopology]:
    """One two-region topology in containers, shared by a module's tests."""
    topo = backend.topology(tmp_path_factory.mktemp("docker-topology"))
    try:
        yield topo
    finally:
        topo.close()


@pytest.fixture
def fresh_topology(backend: DockerBackend, tmp_path: Path) -> Iterator[DockerTopology]:
    """A topology of its own, for tests that break it."""
    topo = backend.topology(tmp_path / "topology")
    try:
        yield topo
    finally:
        topo.close()


@pytest.fixture
def drill_args(pytester: pytest.Pytester) -> list[str]:
    """Arguments for an inner pytest run of drills on the Docker backend."""
    shutil.copy(ROOT / "fixtures" / "targets.yaml", pytester.path / "targets.yaml")
    return [
        "--drill=monthly",
        "--drill-backend=docker",
        # The drills' own containers on this machine's daemon.
        "--drill-allow-destructive",
        f"--drill-targets={pytester.path / 'targets.yaml'}",
        f"--drill-report-dir={pytester.path / 'reports'}",
        "-p",
        "no:cacheprovider",
        "-rA",
    ]
