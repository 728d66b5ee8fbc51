"""The host directory that holds a session's server data directories, and its reaping.

It lies outside pytest's ``/tmp/pytest-of-<user>``, which pytest keeps at mode 0700 and
resets at every start, so servers running as another account could lose access mid-run
when another pytest starts. The local and Docker backends keep data directories there
(Docker mounts them at the same paths, so backups and forensic reads work alike).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from pytest_drdrill.servers import processes

DATAROOT_PREFIX = "drdrill-"


def make_dataroot() -> Path:
    """Create the directory that holds server data directories for one session.

    It lies outside pytest's ``/tmp/pytest-of-<user>``, which pytest keeps at mode 0700
    and resets at every start, so servers running as another account could lose access
    mid-run when another pytest starts. An ``owner`` file lets a later run remove it if
    this one is killed.
    """
    root = Path(tempfile.mkdtemp(prefix=DATAROOT_PREFIX))
    root.chmod(0o711)
    (root / "owner").write_text(processes.owner_tag())
    return root


def reap_dataroots() -> list[str]:
    """Remove data roots whose owning pytest process is gone."""
    removed = []
    for root in Path(tempfile.gettempdir()).glob(f"{DATAROOT_PREFIX}*"):
        try:
            owner = (root / "owner").read_text().strip()
        except OSError:
            continue
        if not processes.owner_alive(owner):
            shutil.rmtree(root, ignore_errors=True)
            removed.append(f"data directory {root} left by dead run {owner}")
    return removed
