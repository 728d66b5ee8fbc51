"""Shared fixtures of pytest-drdrill's own tests."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest

# pytester's in-process runs drop every module first imported during a run, so modules that
# the plugin (and hypothesis's plugin, at terminal summary) import lazily would be imported
# again, at about a second each, by every run. Importing them once here keeps them cached.
import pytest_drdrill.recovery.failover  # noqa: F401
import pytest_drdrill.reporting.collector  # noqa: F401

with contextlib.suppress(ImportError):
    import hypothesis.internal.observability  # noqa: F401

SHIPPED_TARGETS = Path(__file__).resolve().parents[1] / "fixtures" / "targets.yaml"


@pytest.fixture
def targets_yaml(pytester: pytest.Pytester) -> Path:
    """The repository's ``fixtures/targets.yaml``, copied to the default place under pytester."""
    destination = pytester.path / "fixtures" / "targets.yaml"
    destination.parent.mkdir()
    shutil.copyfile(SHIPPED_TARGETS, destination)
    return destination
