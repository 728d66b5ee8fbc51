"""The shipped negative control must go red: proof that the drills can fail."""

from __future__ import annotations

import json

from conftest import ROOT


def test_shipped_negative_control_fails_with_a_clear_message(pytester, drill_args):
    """The broken-recovery drill in scenarios/ fails, names the cause, and is reported as failed."""
    scenario = ROOT / "scenarios" / "test_postgres_failover.py"
    result = pytester.runpytest(
        f"{scenario}::test_negative_control_broken_failover_goes_red",
        "--drill-negative-controls",
        f"--rootdir={ROOT}",
        *drill_args,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*drill negative-control-no-promotion FAILED: service did not recover*",
            "*FAIL*negative-control-no-promotion*[[]negative control[]]*",
        ]
    )
    (report,) = (result.stdout.str().split("generated drdrill json: ")[1].split()[0],)
    drill = json.loads(open(report).read())["drills"][0]
    assert drill["verdict"] == "fail"
    assert drill["negative_control"] is True
    assert drill["rto_seconds"] is None


def test_negative_control_is_excluded_by_default(pytester, drill_args):
    """Without --drill-negative-controls the negative control is skipped, saying how to run it."""
    scenario = ROOT / "scenarios" / "test_postgres_failover.py"
    result = pytester.runpytest(
        f"{scenario}::test_negative_control_broken_failover_goes_red",
        f"--rootdir={ROOT}",
        *drill_args,
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*negative control*--drill-negative-controls*"])
