"""The failover envelope's pre-check on a real Patroni cluster.

Settings that cannot meet the tier stop the drill before any fault.

Heavy (a Patroni cluster, about 20 s): run under ``flock /tmp/drdrill-heavy.lock``. Skipped
without Patroni, etcd and HAProxy unless ``DRDRILL_REQUIRE_PATRONI=1`` (CI).
"""

from __future__ import annotations

import json

import pytest

from drill_helpers import require_patroni

# patroni#1663: a crashed primary may take primary_start_timeout to recover in place before
# any failover; an hour of it cannot fit tier 1's 30-minute maximum RTO.
SLOW_RESTART = """
import pytest

from pytest_drdrill.faults.patroni import PostgresCrash


@pytest.mark.drdrill(
    cadence="monthly",
    tier="tier_1_critical",
    scenario="patroni-slow-restart",
    postgres_failover="patroni",
    patroni={"primary_start_timeout": 3600},
)
def test_postgres_crash(drdrill):
    leader = drdrill.topology.primary
    with drdrill.running():
        drdrill.faults.inject(PostgresCrash(leader))
        drdrill.await_recovery()
    drdrill.conclude()

"""


def test_settings_that_cannot_meet_the_tier_stop_the_drill_before_the_fault(
    pytester: pytest.Pytester, drill_args: list[str]
) -> None:
    """The slow restart is refused before the fault, naming the setting to lower."""
    require_patroni()
    pytester.makepyfile(test_envelope=SLOW_RESTART)
    # The team's file reaches the cluster: the envelope is computed from what Patroni's
    # /config returns, so loop_wait 2 there shows the file was applied, not just read.
    settings = pytester.path / "patroni.yml"
    settings.write_text("ttl: 12\nloop_wait: 2\nretry_timeout: 4\n")
    result = pytester.runpytest(*drill_args, f"--drill-patroni-config={settings}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*EnvelopeExceeded: patroni settings cannot meet the tier: postgres crash: at most "
            "3605.0 s = loop_wait 2 s + primary_start_timeout 3600 s + loop_wait 2 s + "
            "promotion 1 s, over the tier's maximum acceptable RTO of 1800.0 s by 1805.0 s: "
            "lower primary_start_timeout (now 3600 s)*",
        ]
    )
    (report,) = (pytester.path / "reports").glob("*/drill.json")
    drills = {d["scenario"]: d for d in json.loads(report.read_text())["drills"]}
    refused = drills["patroni-slow-restart"]
    assert refused["verdict"] == "fail"
    assert refused["reason"].startswith("refused before any fault: ")
    assert refused["faults"] == [], "the fault must not have been injected"
