"""Stop conditions and the kill switch on real drills: aborted, healed, and the run goes on.

One inner run holds three drills: the first cuts the clients off PostgreSQL with
failover off and a 2-second outage guardrail, which trips; the second is stopped by
``python -m pytest_drdrill heal`` run from another process while its cut is on; the third
runs after both and passes. Both stopped drills are ``aborted`` in drill.json, JUnit and
the HTML report (never passed), their faults healed within the second the guardrail
tripped, and the reason names what stopped them.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

DRILLS = """
import os
import subprocess
import sys
import threading

import pytest

from pytest_drdrill import timing


@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", scenario="guardrail-outage",
                     guardrails={"max_outage": "2s"})
def test_a_long_outage_trips_the_guardrail(drdrill):
    with drdrill.running(failover=False):
        drdrill.faults.cut(drdrill.topology.pg_endpoint)
        assert not drdrill.await_recovery(timeout=60)
        assert drdrill.guard.tripped.is_set()
    drdrill.conclude()


def _heal_after(seconds):
    timing.sleep(seconds)
    subprocess.run([sys.executable, "-m", "pytest_drdrill", "heal", "--reason", "game day over"],
                   check=True, timeout=60)


@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", scenario="kill-switch",
                     guardrails={"max_outage": None})
def test_the_kill_switch_stops_the_drill(drdrill):
    with drdrill.running(failover=False):
        threading.Thread(target=_heal_after, args=(1.0,), daemon=True).start()
        drdrill.faults.cut(drdrill.topology.pg_endpoint)
        assert not drdrill.await_recovery(timeout=60)
    drdrill.conclude()


@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", scenario="after-the-aborts")
def test_the_run_goes_on(drdrill):
    with drdrill.running(failover=False):
        drdrill.faults.latency(drdrill.topology.pg_endpoint, 150)
        drdrill.workload.wait_for_acks(10, timeout=10)
        drdrill.faults.heal()
    drdrill.conclude_no_failover(min_added_ms=100)
"""


def test_guardrail_and_kill_switch_abort_heal_and_the_run_goes_on(
    pytester: pytest.Pytester, drill_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRDRILL_KILL_SWITCH_DIR", str(pytester.path / "kill-switch"))
    pytester.makepyfile(test_stops=DRILLS)
    result = pytester.runpytest_subprocess(*drill_args, "-p", "no:randomly")
    result.assert_outcomes(failed=2, passed=1)
    result.stdout.fnmatch_lines(["*DrillAborted: drill guardrail-outage ABORTED*"])
    (report,) = (pytester.path / "reports").glob("*/drill.json")
    data = json.loads(report.read_text())
    drills = {d["scenario"]: d for d in data["drills"]}
    assert data["summary"]["aborted"] == 2
    outage, switch = drills["guardrail-outage"], drills["kill-switch"]
    assert outage["verdict"] == "aborted"
    assert "guardrail max_outage: postgres has had no acknowledged write for" in outage["reason"]
    assert switch["verdict"] == "aborted"
    assert "kill switch thrown (game day over)" in switch["reason"]
    assert drills["after-the-aborts"]["verdict"] == "pass"
    for drill in (outage, switch):
        assert all(f["healed_at"] for f in drill["faults"]), drill["faults"]
        healed = float(drill["reason"].split("every fault healed ")[1].split("s later")[0])
        assert healed < 1.0, drill["reason"]  # the local backend's target (bench/ measures it)
    junit = ET.parse(report.with_name("drill-junit.xml"))
    errors = {c.get("classname"): c.find("error") for c in junit.iter("testcase")}
    assert errors["guardrail-outage"] is not None
    assert errors["guardrail-outage"].get("type") == "DrillAborted"
    html = report.with_name("report.html").read_text()
    assert "ABORTED" in html
