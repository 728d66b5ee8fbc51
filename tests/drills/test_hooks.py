"""The plugin's hooks, exercised by real drills: a user's failover and the observers."""

from __future__ import annotations

import json

import pytest

DRILL = """
import pytest

@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", data="critical_user_data",
                     scenario="user-failover", max_lost_writes=0)
def test_user_failover(drdrill):
    with drdrill.running():
        drdrill.faults.crash(drdrill.topology.primary)
        drdrill.await_recovery()
    drdrill.conclude()
"""

USER_FAILOVER = """
import psycopg
import pytest

@pytest.hookimpl
def pytest_drdrill_failover(service, topology, record, detection):
    print(f"HOOK: failover {service} detected-down={detection.node}")
    old = topology.primary
    with record.phase("team-fence"):
        old.fence()
    standby = next(n for n in topology.standbys() if n.name == "pg-sync")
    with record.phase("team-promote"):
        with psycopg.connect(standby.dsn(), autocommit=True) as conn:
            conn.execute("SELECT pg_promote(true)")
    with record.phase("team-repoint"):
        topology.pg_endpoint.repoint(standby)
    return "team-runbook"
"""


def _drill_json(pytester: pytest.Pytester) -> dict:
    (report,) = (pytester.path / "reports").glob("*/drill.json")
    return json.loads(report.read_text())


def test_user_conftest_failover_replaces_the_reference_and_is_measured(pytester, drill_args):
    """A conftest failover hook replaces the reference one; RTO/RPO still come from the client."""
    pytester.makeconftest(USER_FAILOVER)
    pytester.makepyfile(test_drill=DRILL)
    result = pytester.runpytest("-s", *drill_args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*HOOK: failover postgres detected-down=pg-primary*"])
    (drill,) = _drill_json(pytester)["drills"]
    names = [p["name"] for p in drill["phases"]]
    assert names == ["detection", "team-fence", "team-promote", "team-repoint"]
    assert drill["verdict"] == "pass"
    assert drill["rto_seconds"] > 0
    assert drill["rpo"]["lost_writes"] == 0


def test_user_failover_that_does_nothing_is_caught_by_measurement(pytester, drill_args):
    """A failover hook that claims success without recovering makes the drill fail."""
    pytester.makeconftest(
        """
        def pytest_drdrill_failover(service, topology, record, detection):
            return "all good, trust me"
        """
    )
    pytester.makepyfile(
        test_drill=DRILL.replace('scenario="user-failover"', 'scenario="liar", observe=3')
    )
    result = pytester.runpytest(*drill_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*drill liar FAILED: service did not recover*3.00s observation window*"]
    )


def test_observer_hooks_see_faults_and_results(pytester, drill_args):
    """fault_injected, fault_healed and measured are called with the recorded values."""
    pytester.makeconftest(
        """
        def pytest_drdrill_fault_injected(record, fault):
            print(f"HOOK: injected {fault.kind} {fault.target} healed={fault.healed_at}")

        def pytest_drdrill_fault_healed(record, fault):
            later = fault.healed_at > fault.injected_at
            print(f"HOOK: healed {fault.kind} {fault.target} after={later}")

        def pytest_drdrill_measured(result):
            lost = result.rpo.lost_writes
            print(f"HOOK: measured {result.scenario} {result.verdict.value} lost={lost}")
        """
    )
    pytester.makepyfile(test_drill=DRILL)
    result = pytester.runpytest("-s", *drill_args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*HOOK: injected crash pg-primary healed=None*",
            "*HOOK: healed crash pg-primary after=True*",
            "*HOOK: measured user-failover pass lost=0*",
        ]
    )


def test_failed_validation_rolls_the_endpoint_back_and_fails_the_drill(pytester, drill_args):
    """When validation through the endpoint fails, the reference failover rolls back and reports."""
    pytester.makeconftest(
        """
        import pytest
        from pytest_drdrill import FailoverFailed
        from pytest_drdrill.recovery.reference import ReferenceFailover

        class ValidationFails(ReferenceFailover):
            def validate(self, topology):
                raise FailoverFailed("validation sabotaged by the test")

        @pytest.hookimpl(tryfirst=True)
        def pytest_drdrill_failover(service, topology, record, detection):
            return ValidationFails().pytest_drdrill_failover(service, topology, record, detection)
        """
    )
    pytester.makepyfile(
        test_drill=DRILL.replace('scenario="user-failover"', 'scenario="rollback", observe=3')
    )
    result = pytester.runpytest(*drill_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*recovery reported: postgres failover failed: validation through the service endpoint*"]
    )
    (drill,) = _drill_json(pytester)["drills"]
    phases = {p["name"]: p for p in drill["phases"]}
    assert phases["validation"]["ok"] is False
    assert phases["rollback"]["detail"] == "endpoint restored to pg-primary; service left down"
    assert drill["verdict"] == "fail"
    assert drill["fault"]["healed_at"] is not None
