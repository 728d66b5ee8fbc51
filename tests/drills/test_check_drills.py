"""Verification drills: a failed check turns the drill red, naming the check and its detail."""

from __future__ import annotations

import json

FAILING_CHECK = """
import pytest
from pytest_drdrill.backup.verification import CheckResult

@pytest.mark.drdrill(cadence="daily", tier="tier_1_critical", scenario="checks")
def test_checks(drdrill):
    with drdrill.running():
        drdrill.check("fine", lambda: CheckResult("fine", True, 0.0, "all good"))
        drdrill.check("stale", lambda: CheckResult("stale", False, 0.0, "backup 7m12s old"))
    drdrill.conclude_checks()
"""


def test_a_failed_check_fails_the_drill(pytester, drill_args):
    """One failing check among passing ones makes the drill FAIL with that check's detail."""
    pytester.makepyfile(test_checks=FAILING_CHECK)
    result = pytester.runpytest(*drill_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*drill checks FAILED: stale failed: backup 7m12s old*"])
    path = result.stdout.str().split("generated drdrill json: ")[1].split()[0]
    drill = json.loads(open(path).read())["drills"][0]
    assert drill["verdict"] == "fail"
    assert [(p["name"], p["ok"]) for p in drill["phases"]] == [("fine", True), ("stale", False)]
