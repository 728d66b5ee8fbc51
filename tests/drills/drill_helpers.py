"""Helpers of the real-drill tests: the repository root and what a run left behind.

A module of its own, not the conftest: ``from conftest import`` picks whichever
``conftest`` module was imported first, which depends on the paths given to pytest.
"""

from __future__ import annotations

from pathlib import Path

from pytest_drdrill.servers import processes

ROOT = Path(__file__).resolve().parents[2]


def tagged_processes(tag: str) -> list[str]:
    """Processes whose DRDRILL_OWNER equals ``tag`` (what a run started and did not stop)."""
    return [
        f"{pid} {(processes.command_line(pid) or '')[:100]}"
        for pid, owner in processes.tagged_processes()
        if owner == tag
    ]


def own_dataroots() -> list[Path]:
    """Data roots this process created and did not remove."""
    import tempfile

    tag = processes.owner_tag()
    roots = []
    for root in Path(tempfile.gettempdir()).glob("drdrill-*"):
        try:
            if (root / "owner").read_text().strip() == tag:
                roots.append(root)
        except OSError:
            continue
    return roots
