"""Helpers of the real-drill tests: the repository root and what a run left behind.

A module of its own, not the conftest: ``from conftest import`` picks whichever
``conftest`` module was imported first, which depends on the paths given to pytest.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_drdrill.errors import ExecutableMissing
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


#: Set to 1 (CI does) to turn a missing Patroni, etcd or HAProxy into a failure.
REQUIRE_PATRONI_ENV = "DRDRILL_REQUIRE_PATRONI"


def require_patroni() -> None:
    """Skip the test without Patroni, etcd and HAProxy; fail instead under CI's require flag."""
    from pytest_drdrill.topology.etcd import find_etcd
    from pytest_drdrill.topology.haproxy import find_haproxy
    from pytest_drdrill.topology.patroni import find_patroni

    try:
        find_patroni()
        find_etcd()
        find_haproxy()
    except ExecutableMissing as exc:
        message = f"Patroni drills need patroni, etcd and haproxy (run scripts/bootstrap): {exc}"
        if os.environ.get(REQUIRE_PATRONI_ENV) == "1":
            pytest.fail(message)
        pytest.skip(message)
