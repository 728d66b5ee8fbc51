"""A pytest run killed with SIGKILL mid-drill leaves nothing behind, without another run.

The run's sentry (``topology/sentry.py``) wakes when pytest dies and removes every
server, proxy and data directory it started. Heavy (one topology): run under
``flock /tmp/drdrill-heavy.lock``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from drill_helpers import ROOT
from pytest_drdrill import timing
from pytest_drdrill.servers import processes
from pytest_drdrill.topology.dataroot import DATAROOT_PREFIX

# A drill that says when its topology is up, then hangs until it is killed.
HANGING_DRILL = """
import time
from pathlib import Path

import pytest


@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", scenario="killed-mid-drill")
def test_hangs(drdrill):
    with drdrill.running():
        drdrill.faults.freeze(drdrill.topology.pg_nodes["pg-dr"])
        Path("{ready}").write_text("up")
        time.sleep(600)
"""

#: The issue's bound: everything gone within this many seconds of the SIGKILL.
BOUND = 10.0


def _left(owner: str) -> list[str]:
    found = [
        f"pid {pid}: {(processes.command_line(pid) or '')[:80]}"
        for pid, tag in processes.tagged_processes()
        if tag == owner
    ]
    for root in Path(tempfile.gettempdir()).glob(f"{DATAROOT_PREFIX}*"):
        try:
            if (root / "owner").read_text().strip() == owner:
                found.append(f"data root {root}")
        except OSError:
            continue
    return found


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param([], id="orchestrator"),
        pytest.param(["--drill-redis-failover=sentinel"], id="sentinels"),
    ],
)
def test_sigkilled_run_leaves_nothing_behind(
    tmp_path: Path, drill_args: list[str], extra: list[str]
) -> None:
    """SIGKILL pytest while a drill runs (a server frozen): all is gone within 10 s.

    With the Sentinel group, its three Sentinels are among what must go.
    """
    ready = tmp_path / "ready"
    test_file = tmp_path / "test_hanging.py"
    test_file.write_text(HANGING_DRILL.replace("{ready}", str(ready)))
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            str(test_file),
            *drill_args[:3],
            *extra,
            "-p",
            "no:cacheprovider",
        ],  # fmt: skip
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    try:
        deadline = timing.monotonic() + 120
        while not ready.exists():
            assert run.poll() is None, "the inner run ended before its drill started"
            assert timing.monotonic() < deadline, "the drill's topology never came up"
            timing.sleep(0.2)
        owner = processes.owner_tag(run.pid)
        started = _left(owner)
        assert started, "the drill started nothing this test could see"
        if extra:
            assert sum("sentinel" in p for p in started) == 3, started
        run.send_signal(signal.SIGKILL)
        run.wait()
        killed = timing.monotonic()
        left = _left(owner)
        while left and timing.monotonic() - killed < BOUND + 20:
            timing.sleep(0.1)
            left = _left(owner)
        took = timing.monotonic() - killed
    finally:
        if run.poll() is None:
            run.kill()
    print(f"everything gone {took:.2f}s after SIGKILL")
    assert not left, f"still there {took:.0f}s after SIGKILL: {left}"
    assert took <= BOUND, f"cleanup took {took:.1f}s, over the {BOUND:.0f}s bound"
