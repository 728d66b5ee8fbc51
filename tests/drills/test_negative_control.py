"""The shipped negative control must go red: proof that the drills can fail."""

from __future__ import annotations

import json

from drill_helpers import ROOT


def _report(result):
    path = result.stdout.str().split("generated drdrill json: ")[1].split()[0]
    return json.loads(open(path).read())


def test_shipped_negative_control_goes_red_and_the_test_passes(pytester, drill_args):
    """The broken-recovery drill fails its target, so its test passes; the report says so."""
    scenario = ROOT / "scenarios" / "test_postgres_failover.py"
    result = pytester.runpytest(
        f"{scenario}::test_negative_control_broken_failover_goes_red",
        f"--rootdir={ROOT}",
        *drill_args,
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["RED (ok)*negative-control-no-promotion*[[]negative control: must go red[]]*"]
    )
    report = _report(result)
    drill = report["drills"][0]
    assert drill["verdict"] == "fail"
    assert drill["expected_verdict"] == "fail"
    assert drill["negative_control"] is True
    assert drill["rto_seconds"] is None
    assert "service did not recover" in drill["reason"]
    assert report["summary"]["negative_controls_red"] == 1
    assert report["summary"]["unexpected"] == 0


GREEN_NEGATIVE_CONTROL = """
import pytest

@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", scenario="not-really-broken",
                     negative_control=True, observe=5)
def test_negative_control_whose_recovery_works(drdrill):
    with drdrill.running():
        drdrill.faults.crash(drdrill.topology.primary)
        drdrill.await_recovery()
    drdrill.conclude()
"""


def test_negative_control_that_stays_green_fails(pytester, drill_args):
    """A negative control whose recovery actually works fails: it proves nothing."""
    pytester.makepyfile(test_green=GREEN_NEGATIVE_CONTROL)
    result = pytester.runpytest(*drill_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*negative control not-really-broken did NOT go red (verdict pass*",
            "NOT RED*not-really-broken*",
        ]
    )
    report = _report(result)
    assert report["summary"]["unexpected"] == 1
    junit = (pytester.path / "reports").glob("*/drill-junit.xml")
    assert 'type="NegativeControlNotRed"' in next(junit).read_text()


def test_negative_controls_can_be_skipped(pytester, drill_args):
    """--drill-skip-negative-controls skips the negative control, naming the flag."""
    scenario = ROOT / "scenarios" / "test_postgres_failover.py"
    result = pytester.runpytest(
        f"{scenario}::test_negative_control_broken_failover_goes_red",
        f"--rootdir={ROOT}",
        "--drill-skip-negative-controls",
        *drill_args,
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*negative control*--drill-skip-negative-controls*"])
