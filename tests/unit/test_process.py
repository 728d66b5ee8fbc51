"""Process control of the local backend: tree kills, leftover reaping, run-as checks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_drdrill.errors import TopologyError
from pytest_drdrill.servers import processes

# A parent that starts two children which, like PostgreSQL backends, call setsid().
_TREE = """
import subprocess, sys, time
for _ in range(2):
    subprocess.Popen([sys.executable, "-c", "import os, time; os.setsid(); time.sleep(60)"])
print("ready", flush=True)
time.sleep(60)
"""


def _spawn_tree(
    tmp_path: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], list[int]]:
    log = tmp_path / "tree.log"
    proc = processes.spawn([sys.executable, "-c", _TREE], log=log, run_as=None, env=env)
    deadline = time.monotonic() + 10
    while "ready" not in log.read_text():
        assert time.monotonic() < deadline, "tree did not start"
        time.sleep(0.01)
    kids: list[int] = []
    # Wait until both children exist and have left the parent's session.
    while time.monotonic() < deadline:
        kids = processes.children(proc.pid)
        if len(kids) == 2 and all(_sid(k) not in (None, _sid(proc.pid)) for k in kids):
            break
        time.sleep(0.01)
    return proc, kids


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except ProcessLookupError:
        return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_kill_tree_reaches_children_that_called_setsid(tmp_path):
    """Killpg would miss setsid() children; kill_tree finds them by parent pid."""
    proc, kids = _spawn_tree(tmp_path)
    assert len(kids) == 2 and all(_alive(k) for k in kids)
    for kid in kids:
        assert os.getsid(kid) != os.getsid(proc.pid)
    pids = processes.kill_tree(proc.pid)
    proc.wait(timeout=5)
    assert set(kids) <= set(pids)
    assert processes.wait_gone(pids, timeout=5)
    assert not any(_alive(k) for k in kids)


def test_spawned_processes_carry_the_owner_tag(tmp_path):
    """Every spawned process has DRDRILL_OWNER naming this pytest process."""
    proc, kids = _spawn_tree(tmp_path)
    try:
        for pid in [proc.pid, *kids]:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert f"{processes.OWNER_ENV}={processes.owner_tag()}".encode() in environ
    finally:
        processes.kill_tree(proc.pid)
        proc.wait(timeout=5)


def test_reap_leftovers_kills_processes_of_a_dead_run_only(tmp_path):
    """Processes tagged by a dead owner are reaped with their children; this run's are kept."""
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    dead_tag = f"{finished.pid}:0"  # no process has start time 0: this owner is dead
    survivor, _ = _spawn_tree(tmp_path)
    leftover = subprocess.Popen(
        [sys.executable, "-c", _TREE],
        env={**os.environ, processes.OWNER_ENV: dead_tag},
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert leftover.stdout is not None
        assert leftover.stdout.readline().strip() == b"ready"
        leftover_kids = processes.children(leftover.pid)
        removed = processes.reap_leftovers()
        leftover.wait(timeout=5)
        assert any(f"pid {leftover.pid} " in line for line in removed), removed
        assert processes.wait_gone([leftover.pid, *leftover_kids], timeout=5)
        assert _alive(survivor.pid), "a process of this live run was reaped"
    finally:
        for proc in (survivor, leftover):
            processes.kill_tree(proc.pid)
            proc.wait(timeout=5)


def test_owner_alive_rejects_a_reused_pid():
    """A tag whose start time differs from the live process with that pid is dead."""
    pid, ticks = processes.owner_tag().split(":")
    assert processes.owner_alive(f"{pid}:{ticks}")
    assert not processes.owner_alive(f"{pid}:{int(ticks) + 1}")
    assert not processes.owner_alive("not-a-pid:1")


@pytest.mark.skipif(
    os.geteuid() != 0, reason="the run-as account matters only when pytest runs as root"
)
def test_run_as_names_the_flag_when_the_account_is_missing():
    """A missing account is an error that names --drill-run-as and how to create one."""
    with pytest.raises(TopologyError, match=r"--drill-run-as / drill_run_as") as info:
        processes.RunAs.resolve("drdrill-no-such-user")
    assert "useradd" in str(info.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can be asked to run servers as root")
def test_run_as_refuses_root():
    """Naming root as the server account is refused: PostgreSQL will not run as root."""
    with pytest.raises(TopologyError, match="is root"):
        processes.RunAs.resolve("root")
