"""The fault proxy dies mid-drill: noticed at once, faults healed, the drill fails naming it.

The inner drill slows the PostgreSQL endpoint, then SIGKILLs the fault proxy (the built-in
one, a child of the inner pytest). Without the watch the drill would wait out
``--drill-observe`` (set to two minutes) and then report the proxy's outage as the
system's RTO; with it the wait ends, every fault is healed and the verdict is fail, its
reason naming the proxy.
"""

from __future__ import annotations

import json

import pytest

DRILL = """
import os
import signal

import psutil
import pytest

from pytest_drdrill import timing


@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", scenario="proxy-dies")
def test_the_fault_proxy_dies(drdrill):
    with drdrill.running(failover=False):
        drdrill.faults.latency(drdrill.topology.pg_endpoint, 50)
        (proxy,) = [
            p for p in psutil.Process().children(recursive=True)
            if "pytest_drdrill.proxy" in " ".join(p.cmdline())
        ]
        os.kill(proxy.pid, signal.SIGKILL)
        assert not drdrill.await_recovery()
        assert drdrill.proxy_watch.dead.is_set()
    drdrill.conclude()
"""


def test_a_dead_fault_proxy_fails_the_drill_naming_it(
    pytester: pytest.Pytester, drill_args: list[str]
) -> None:
    pytester.makepyfile(test_proxy_dies=DRILL)
    result = pytester.runpytest_subprocess(*drill_args, "--drill-observe=120s")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the fault proxy at http://127.0.0.1:* stopped answering*"])
    (report,) = (pytester.path / "reports").glob("*/drill.json")
    (drill,) = json.loads(report.read_text())["drills"]
    assert drill["verdict"] == "fail"
    assert "every path through it was cut" in drill["reason"]
    assert all(f["healed_at"] for f in drill["faults"]), drill["faults"]
    # Noticed at once: far inside the two minutes the drill would otherwise have waited.
    assert drill["duration_seconds"] < 60, drill["duration_seconds"]
