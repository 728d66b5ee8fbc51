"""Nothing a drill starts survives it: not on failure, not on Ctrl-C, not after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from drill_helpers import own_dataroots, tagged_processes
from pytest_drdrill.servers import processes

FAILING = """
import pytest

@pytest.mark.drdrill(cadence="daily", tier="tier_1_critical", scenario="dies-mid-drill")
def test_dies(drdrill):
    with drdrill.running():
        drdrill.faults.freeze(drdrill.topology.primary)
        drdrill.faults.cut(drdrill.topology.replication_links["pg-dr"])
        {action}
"""


def test_failing_drill_leaves_no_process_fault_or_directory(pytester, drill_args):
    """A drill that fails with a frozen node and a cut link still cleans everything up."""
    # Compare with what this process already runs (an outer drill session may have a proxy).
    before = (tagged_processes(processes.owner_tag()), own_dataroots())
    pytester.makepyfile(test_drill=FAILING.format(action="assert False, 'boom'"))
    result = pytester.runpytest(*drill_args)
    result.assert_outcomes(failed=1)
    assert (tagged_processes(processes.owner_tag()), own_dataroots()) == before


def _owner(root: Path) -> str:
    try:
        return (root / "owner").read_text()
    except OSError:
        return ""


SLEEPER = """
import pathlib, time, pytest

@pytest.mark.drdrill(cadence="daily", tier="tier_1_critical", scenario="killed")
def test_killed(drdrill):
    pathlib.Path("UP").write_text("up")
    time.sleep(120)
"""


def _interruptible() -> None:
    # A shell without job control starts background jobs with SIGINT ignored, and Python
    # keeps an inherited SIG_IGN: the child would sleep through the test's Ctrl-C. A
    # terminal's pytest never starts that way, so the child gets the default back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_sleeping_drill(pytester, drill_args) -> tuple[subprocess.Popen[bytes], str]:
    pytester.makepyfile(test_sleeper=SLEEPER)
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "test_sleeper.py", *drill_args],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_interruptible,
    )
    deadline = time.monotonic() + 60
    while not (pytester.path / "UP").exists():
        assert run.poll() is None, "the drill run ended before its topology came up"
        assert time.monotonic() < deadline, "the topology did not come up within 60s"
        time.sleep(0.05)
    return run, f"{run.pid}:{processes._start_ticks(run.pid)}"


def test_ctrl_c_in_a_drill_stops_every_server_it_started(pytester, drill_args):
    """SIGINT (Ctrl-C) mid-drill: pytest is interrupted and teardown still removes everything."""
    run, tag = _start_sleeping_drill(pytester, drill_args)
    assert any("postgres" in p for p in tagged_processes(tag))
    run.send_signal(signal.SIGINT)
    out, _ = run.communicate(timeout=60)
    assert run.returncode == 2, out.decode()  # pytest.ExitCode.INTERRUPTED
    assert b"KeyboardInterrupt" in out
    assert tagged_processes(tag) == []


def test_leftovers_of_a_killed_run_are_removed_at_the_next_start(pytester, drill_args):
    """SIGKILL the pytest process mid-drill; the next drill run finds and removes its servers.

    Every drill session's start reaps dead runs' servers machine-wide, so the suite's other
    worker may start first and take them away before this test's own next run; then the
    kill is tried again (the property held, but this run could not show it reported).
    """
    for _attempt in range(3):
        (pytester.path / "UP").unlink(missing_ok=True)
        killed, tag = _start_sleeping_drill(pytester, drill_args)
        os.kill(killed.pid, signal.SIGKILL)
        killed.communicate()
        data = [r for r in Path(tempfile.gettempdir()).glob("drdrill-*") if _owner(r) == tag]
        left = [p for p in tagged_processes(tag) if "postgres" in p]
        if len(left) < 3:
            assert not left and not data, f"half reaped by another start: {left}, {data}"
            continue
        assert len(data) == 1, "the killed run's data directory should still exist"
        pytester.makepyfile(test_drill=FAILING.format(action="pass"))
        result = pytester.runpytest(*drill_args, "test_drill.py")
        assert tagged_processes(tag) == [], "a dead run's servers survived the next start"
        assert not data[0].exists()
        if f"left by dead run {tag}" in result.stdout.str():
            result.stdout.fnmatch_lines(
                [f"*removed leftover of a killed run: * left by dead run {tag}*"]
            )
            return
    pytest.fail("another drill session reaped the killed run first, three times in a row")
