"""The team's repmgr settings (``--drill-repmgr-config``) on a real repmgr cluster.

The file reaches every node's repmgr.conf, the envelope is computed from the repmgr.conf
read back from the node that would take over, and settings that cannot meet the tier stop
the drill before any fault.

Heavy (a repmgr cluster, about 30 s): run under ``flock /tmp/drdrill-heavy.lock``. Skipped
without Debian's postgresql-15-repmgr and haproxy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_drdrill.errors import ExecutableMissing

SLOW_RECONNECT = """
import pytest


@pytest.mark.drdrill(
    cadence="monthly", tier="tier_1_critical", scenario="repmgr-slow-reconnect",
    postgres_failover="repmgr",
)
def test_node_loss(drdrill):
    conf = drdrill.topology.repmgr.members["pg-dr"].config_file.read_text()
    print("PG-DR-CONF", " ".join(sorted(line for line in conf.splitlines()
                                       if line.startswith(("priority", "reconnect")))))
    with drdrill.running():
        drdrill.faults.crash(drdrill.topology.primary)
        drdrill.await_recovery()
    drdrill.conclude()
"""


def _require_repmgr() -> None:
    from pytest_drdrill.topology.haproxy import find_haproxy
    from pytest_drdrill.topology.postgres import PostgresInstall
    from pytest_drdrill.topology.repmgr import find_repmgr

    try:
        find_repmgr(PostgresInstall.discover().bindir)
        find_haproxy()
    except ExecutableMissing as exc:
        pytest.skip(f"repmgr drills need postgresql-15-repmgr and haproxy: {exc}")


def test_settings_that_cannot_meet_the_tier_stop_the_drill_before_the_fault(
    pytester: pytest.Pytester, drill_args: list[str]
) -> None:
    """1829 s of reconnects cannot fit tier 1's 30 minutes: refused, naming the setting."""
    _require_repmgr()
    pytester.makepyfile(test_envelope=SLOW_RECONNECT)
    settings = pytester.path / "repmgr.yml"
    settings.write_text(
        "reconnect_attempts: 60\nreconnect_interval: 31\nmonitor_interval_secs: 2\n"
        "nodes:\n  pg-dr:\n    priority: 10\n"
    )
    result = pytester.runpytest(
        *drill_args, "-s", "--drill-postgres-failover=repmgr", f"--drill-repmgr-config={settings}"
    )
    result.assert_outcomes(failed=1)
    # The per-node key reached pg-dr's repmgr.conf, the shared ones every node's.
    result.stdout.fnmatch_lines(
        ["*PG-DR-CONF priority=10 reconnect_attempts=60 reconnect_interval=31*"]
    )
    # The envelope comes from pg-sync's repmgr.conf as written on its disk.
    result.stdout.fnmatch_lines(
        [
            "*EnvelopeExceeded: repmgr settings cannot meet the tier: node loss: at most "
            "1833.0 s = monitor_interval_secs 2 s + (reconnect_attempts - 1) × "
            "reconnect_interval 1829 s + promotion 2 s, over the tier's maximum acceptable RTO "
            "of 1800.0 s by 33.0 s: lower reconnect_attempts × reconnect_interval (now 1829 s) "
            "or monitor_interval_secs (now 2 s) in the repmgr settings (--drill-repmgr-config)*",
        ]
    )
    (report,) = (pytester.path / "reports").glob("*/drill.json")
    drills = {d["scenario"]: d for d in json.loads(report.read_text())["drills"]}
    refused = drills["repmgr-slow-reconnect"]
    assert refused["verdict"] == "fail"
    assert refused["reason"].startswith("refused before any fault: ")
    assert refused["faults"] == [], "the fault must not have been injected"
    assert Path(settings).exists()
