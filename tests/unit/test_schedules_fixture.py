"""The ``drdrill_schedules`` fixture in a pytest run, before any server starts."""

from __future__ import annotations

SCHEDULE_DRILL = """
import pytest


@pytest.mark.drdrill(cadence="quarterly", tier="tier_1_critical", scenario="fault-schedules")
def test_schedules(drdrill_schedules):
    drdrill_schedules.run(max_examples=1)
"""

UNMARKED = """
def test_schedules(drdrill_schedules):
    drdrill_schedules.run(max_examples=1)
"""


def test_a_schedule_drill_is_skipped_outside_its_cadence(pytester, targets_yaml):
    """Without --drill, and with a more frequent cadence, the quarterly drill is skipped."""
    pytester.makepyfile(test_drill=SCHEDULE_DRILL)
    plain = pytester.runpytest("-rs")
    plain.assert_outcomes(skipped=1)
    plain.stdout.fnmatch_lines(["*quarterly disaster-recovery drill: run with --drill=quarterly*"])
    monthly = pytester.runpytest("-rs", "--drill=monthly")
    monthly.assert_outcomes(skipped=1)
    monthly.stdout.fnmatch_lines(["*quarterly drill not selected by --drill=monthly*"])


def test_the_fixture_without_the_marker_is_refused_before_any_server_starts(pytester, targets_yaml):
    """An unmarked test gets the marker's usage message; the backend is never set up."""
    pytester.makepyfile(test_drill=UNMARKED)
    result = pytester.runpytest("--drill=quarterly", "--setup-show")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*has no @pytest.mark.drdrill(...) marker; add one*"])
    assert "drdrill_backend" not in result.stdout.str()
