"""Shared fixtures of pytest-drdrill's own tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
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

#: Where the suite keeps its files when the machine has room in memory for them.
RAM_DIR = Path("/dev/shm")
#: Free space and memory the suite needs there (a run leaves about 0.4 GiB, pytest keeps 3).
RAM_NEEDED = 4 << 30


def _ram_dir() -> Path | None:
    """``/dev/shm`` when it is a writable tmpfs and memory has room for the suite, else ``None``."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        stat = os.statvfs(RAM_DIR)
    except OSError:
        return None
    tmpfs = any(line.split()[1:3] == [str(RAM_DIR), "tmpfs"] for line in mounts)
    available = next(
        (int(line.split()[1]) << 10 for line in meminfo if line.startswith("MemAvailable:")), 0
    )
    roomy = min(stat.f_bavail * stat.f_frsize, available) >= RAM_NEEDED
    return RAM_DIR if tmpfs and roomy and os.access(RAM_DIR, os.W_OK) else None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """The suite's temporary files (pytest's, and the servers' data directories) in memory.

    Copying a template cluster and deleting it again costs the kernel 0.3-0.6 s per node on
    this machine's disk, most of the system time of a drill; in memory the whole suite takes
    a quarter less CPU (docs/development.md). Only the suite does this: the drills that CI
    and game days run keep their data on disk. Set ``TMPDIR`` to choose another place; xdist
    workers and subprocesses inherit it from here.
    """
    if "TMPDIR" in os.environ:
        return
    ram = _ram_dir()
    if ram is not None:
        os.environ["TMPDIR"] = str(ram)
        tempfile.tempdir = None  # read TMPDIR again


@pytest.fixture
def targets_yaml(pytester: pytest.Pytester) -> Path:
    """Copy the repository's ``fixtures/targets.yaml`` to its default place under pytester."""
    destination = pytester.path / "fixtures" / "targets.yaml"
    destination.parent.mkdir()
    shutil.copyfile(SHIPPED_TARGETS, destination)
    return destination
