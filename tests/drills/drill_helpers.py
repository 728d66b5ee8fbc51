"""Helpers of the real-drill tests: the repository root and what a run left behind.

A module of its own, not the conftest: ``from conftest import`` picks whichever
``conftest`` module was imported first, which depends on the paths given to pytest.
"""

from __future__ import annotations

import os
from pathlib import Path

from pytest_drdrill.topology import _process

ROOT = Path(__file__).resolve().parents[2]


def tagged_processes(tag: str) -> list[str]:
    """Processes whose DRDRILL_OWNER equals ``tag`` (what a run started and did not stop)."""
    found = []
    marker = f"{_process.OWNER_ENV}={tag}".encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes().split(b"\0")
            cmd = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in environ:
            found.append(f"{entry.name} {cmd[:100]}")
    return found


def own_dataroots() -> list[Path]:
    """Data roots this process created and did not remove."""
    import tempfile

    tag = _process.owner_tag()
    roots = []
    for root in Path(tempfile.gettempdir()).glob("drdrill-*"):
        try:
            if (root / "owner").read_text().strip() == tag:
                roots.append(root)
        except OSError:
            continue
    return roots
