"""Two-region hooks and settings, exercised by real drills through pytester."""

from __future__ import annotations

import json

import pytest

from drill_helpers import ROOT

SCENARIOS = ROOT / "scenarios" / "test_two_regions.py"

REGION_DRILL = """
import pytest

@pytest.mark.drdrill(cadence="monthly", function="user_authentication", scenario="region",
                     observe=10)
def test_region(drdrill):
    with drdrill.running():
        drdrill.faults.region_outage("primary")
        drdrill.await_recovery()
    drdrill.conclude()
"""

TEAM_REGION_RUNBOOK = """
import psycopg
import pytest
import redis

@pytest.hookimpl
def pytest_drdrill_region_failover(topology, record, detection):
    print(f"HOOK: region failover score={detection.score} unhealthy={list(detection.unhealthy)}")
    with record.phase("team-promote"):
        with psycopg.connect(topology.pg_nodes["pg-dr"].dsn(), autocommit=True) as conn:
            conn.execute("SELECT pg_promote(true)")
        redis.Redis.from_url(topology.redis_nodes["redis-dr"].url()).replicaof("NO", "ONE")
        topology.stop_storage_replication()
    with record.phase("team-dns"):
        topology.pg_endpoint.repoint(topology.pg_nodes["pg-dr"])
        topology.redis_endpoint.repoint(topology.redis_nodes["redis-dr"])
        topology.s3_endpoint.repoint(topology.s3_nodes["s3-dr"])
    return "team-region-runbook"
"""


def _drills(pytester: pytest.Pytester) -> list[dict]:
    (report,) = (pytester.path / "reports").glob("*/drill.json")
    return json.loads(report.read_text())["drills"]


def test_user_region_failover_replaces_the_reference_and_is_measured(pytester, drill_args):
    """A conftest region-failover hook replaces the reference one; each service is measured."""
    pytester.makeconftest(TEAM_REGION_RUNBOOK)
    pytester.makepyfile(test_drill=REGION_DRILL)
    result = pytester.runpytest("-s", *drill_args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*HOOK: region failover score=8 unhealthy=*database*"])
    (drill,) = _drills(pytester)
    assert [p["name"] for p in drill["phases"]] == ["detection", "team-promote", "team-dns"]
    assert {s["service"]: s["rto"]["effect_seen"] for s in drill["services"]} == {
        "postgres": True,
        "redis": True,
        "s3": True,
    }
    assert all(s["rto"]["seconds"] > 0 for s in drill["services"])


def test_region_failover_that_does_nothing_goes_red(pytester, drill_args):
    """Failover hooks that claim success but move nothing fail every service and function.

    The service hook must lie too: otherwise the orchestrator's per-service failovers,
    which keep watching after a region decision, rescue the services one by one.
    """
    pytester.makeconftest(
        """
        def pytest_drdrill_region_failover(topology, record, detection):
            return "dr"

        def pytest_drdrill_failover(service, topology, record, detection):
            return "trust me"
        """
    )
    pytester.makepyfile(test_drill=REGION_DRILL.replace("observe=10", "observe=3"))
    result = pytester.runpytest(*drill_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*drill region FAILED: service did not recover*"])
    (drill,) = _drills(pytester)
    assert {s["service"]: s["verdict"] for s in drill["services"]} == {
        "postgres": "fail",
        "redis": "fail",
        "s3": "fail",
    }
    assert {f["function"]: f["verdict"] for f in drill["functions"]}["user_authentication"] == (
        "fail"
    )


def test_user_redis_failover_hook_replaces_the_reference_for_redis_only(pytester, drill_args):
    """A conftest failover hook may handle one service and leave the others to the reference."""
    # The scenario lives under the project's rootdir, so the hook comes as a -p plugin.
    pytester.syspathinsert()
    pytester.makepyfile(
        team_redis="""
        import pytest
        import redis

        @pytest.hookimpl
        def pytest_drdrill_failover(service, topology, record, detection):
            if service != "redis":
                return None
            print(f"HOOK: redis failover of {detection.node}")
            replica = topology.redis_nodes["redis-dr"]
            with record.phase("team-redis-promote"):
                redis.Redis.from_url(replica.url()).replicaof("NO", "ONE")
                topology.redis_endpoint.repoint(replica)
            return replica.name
        """
    )
    result = pytester.runpytest(
        "-s", "-p", "team_redis", f"{SCENARIOS}::test_redis_primary_crash_promotes_the_dr_replica",
        f"--rootdir={ROOT}", *drill_args,
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*HOOK: redis failover of redis-primary*"])


def test_latency_drill_goes_red_when_the_health_timeout_is_too_short(pytester, drill_args):
    """With a 200 ms health timeout, 200 ms of latency causes a false failover: red."""
    result = pytester.runpytest(
        f"{SCENARIOS}::test_200ms_latency_on_the_primary_does_not_fail_over",
        f"--rootdir={ROOT}", "--drill-health-timeout=200ms", *drill_args,
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FAILED: false failover*--drill-health-timeout*"])


SENTINEL_DRILL = """
import pytest

@pytest.mark.drdrill(cadence="monthly", function="user_authentication", service="redis",
                     scenario="redis-sentinel", observe=20)
def test_redis(drdrill):
    with drdrill.running():
        drdrill.faults.crash(drdrill.topology.redis_primary)
        drdrill.await_recovery()
    drdrill.conclude()
    print("SERVING", drdrill.topology.redis_primary.name, drdrill.topology.redis_primary.region)
"""


def test_redis_failover_by_real_sentinel_is_measured(pytester, drill_args):
    """With --drill-redis-failover=sentinel, the Sentinel group decides and the drill follows it.

    Three Sentinels with quorum 2 promote a replica of the primary region, never the DR
    node (replica-priority 0).
    """
    pytester.makepyfile(test_drill=SENTINEL_DRILL)
    result = pytester.runpytest("-s", "--drill-redis-failover=sentinel", *drill_args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*SERVING redis-replica-* primary"])
    (drill,) = _drills(pytester)
    (repoint,) = [p for p in drill["phases"] if p["name"] == "repoint"]
    assert "Sentinel moved the master" in repoint["detail"]
    assert not [p for p in drill["phases"] if p["name"] == "detection"]
    # Sentinel needs down-after (1 s) plus its own confirmation: slower than the orchestrator.
    assert drill["rto_seconds"] > 1.0
