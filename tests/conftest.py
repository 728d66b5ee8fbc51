"""Shared fixtures of pytest-drdrill's own tests."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest

import pytest_drdrill.backup.pitr  # noqa: F401
import pytest_drdrill.backup.site  # noqa: F401
import pytest_drdrill.notify  # noqa: F401

# pytester's in-process runs drop every module first imported during a run, so the modules
# that the plugin (and hypothesis's plugin, at terminal summary) import lazily would be
# imported again by every run: about a second each time, and for cryptography's hash
# classes a second copy that its compiled core rejects. Importing them here keeps them.
import pytest_drdrill.recovery.reference  # noqa: F401
import pytest_drdrill.reporting.collector  # noqa: F401
import pytest_drdrill.reporting.html  # noqa: F401
import pytest_drdrill.reporting.mtd  # noqa: F401

with contextlib.suppress(ImportError):
    import hypothesis.internal.observability  # noqa: F401

SHIPPED_TARGETS = Path(__file__).resolve().parents[1] / "fixtures" / "targets.yaml"


@pytest.fixture
def targets_yaml(pytester: pytest.Pytester) -> Path:
    """Copy the repository's ``fixtures/targets.yaml`` to its default place under pytester."""
    destination = pytester.path / "fixtures" / "targets.yaml"
    destination.parent.mkdir()
    shutil.copyfile(SHIPPED_TARGETS, destination)
    return destination
