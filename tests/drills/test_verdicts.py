"""Verdicts of real drills that are not a plain pass."""

from __future__ import annotations

import json

NO_EFFECT = """
import pytest

@pytest.mark.drdrill(cadence="daily", tier="tier_1_critical", scenario="harmless-fault")
def test_harmless(drdrill):
    with drdrill.running():
        # The DR standby is not on the client's path: its loss is invisible to clients.
        drdrill.faults.crash(drdrill.topology.pg_nodes["pg-dr"])
        drdrill.await_recovery()
    drdrill.conclude()
"""


def test_fault_without_effect_is_inconclusive_never_passed(pytester, drill_args):
    """A fault the client never notices makes the drill inconclusive, and the test fails."""
    pytester.makepyfile(test_drill=NO_EFFECT)
    result = pytester.runpytest(*drill_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*DrillInconclusive: drill harmless-fault INCONCLUSIVE: the client saw no outage*",
            "INCONCLUSIVE*harmless-fault*",
        ]
    )
    (report,) = (pytester.path / "reports").glob("*/drill.json")
    (drill,) = json.loads(report.read_text())["drills"]
    assert drill["verdict"] == "inconclusive"
    assert drill["fault"]["target"] == "pg-dr"


def test_over_target_within_maximum_warns_and_passes(pytester, drill_args):
    """RTO over a tier's target but under its maximum passes with a warning shown."""
    targets = pytester.path / "targets.yaml"
    # A tier whose target (0.01 s) any real failover misses but whose maximum it meets.
    text = targets.read_text()
    pytester.path.joinpath("targets.yaml").write_text(
        text.replace(
            "tiers:\n",
            "tiers:\n  tier_0_test:\n    services: [database_primary]\n"
            "    target: 10ms\n    maximum_acceptable: 10m\n"
            "    recovery_strategy: hot_standby_immediate_failover\n",
            1,
        )
    )
    pytester.makepyfile(
        test_drill="""
        import pytest

        @pytest.mark.drdrill(cadence="daily", tier="tier_0_test", scenario="slowish")
        def test_slowish(drdrill):
            with drdrill.running():
                drdrill.faults.crash(drdrill.topology.primary)
                drdrill.await_recovery()
            drdrill.conclude()
        """
    )
    result = pytester.runpytest(*drill_args)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*TargetWarning*RTO * exceeds tier_0_test target 0.01s*", "WARN*slowish*"]
    )
    (report,) = (pytester.path / "reports").glob("*/drill.json")
    assert json.loads(report.read_text())["drills"][0]["verdict"] == "warn"
