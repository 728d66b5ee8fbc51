"""A business function measured end to end by the targets file's probes.

``user_authentication`` gets an SQL probe against the application's database, named by an
environment variable, as a team's own function would be. The drill's primary crash must
show the function's outage and recovery from the probe's own history; a probe that
never reaches its target before the fault makes the drill inconclusive, never passed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

DRILL = """
import os
import pytest

@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", scenario="probed-crash")
def test_crash(drdrill):
    os.environ["APP_DSN"] = (
        "host=127.0.0.1 port=1 dbname=nothing connect_timeout=1"
        if os.environ.get("PROBE_NOWHERE") else drdrill.topology.pg_endpoint.dsn(app="app")
    )
    with drdrill.running():
        drdrill.faults.crash(drdrill.topology.primary)
        drdrill.await_recovery()
    drdrill.conclude()
"""


def _targets(path: Path) -> Path:
    data = yaml.safe_load((ROOT / "fixtures" / "targets.yaml").read_text())
    function = data["business_functions"]["user_authentication"]
    function["probes"] = [
        {"name": "login-query", "sql": {"dsn_env": "APP_DSN", "query": "SELECT 1", "expect": 1,
                                         "timeout": "1s"}}
    ]  # fmt: skip
    function["probe_interval"] = "100ms"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _run(pytester: pytest.Pytester, drill_args: list[str]) -> dict:
    targets = _targets(pytester.path / "probed-targets.yaml")
    pytester.makepyfile(test_probed=DRILL)
    args = [a for a in drill_args if not a.startswith("--drill-targets=")]
    result = pytester.runpytest_subprocess(*args, f"--drill-targets={targets}")
    (report,) = (pytester.path / "reports").glob("*/drill.json")
    (drill,) = json.loads(report.read_text())["drills"]
    drill["_outcomes"] = result.parseoutcomes()
    return drill


def test_the_function_is_measured_from_its_own_probes(
    pytester: pytest.Pytester, drill_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROBE_NOWHERE", raising=False)
    drill = _run(pytester, drill_args)
    assert drill["_outcomes"] == {"passed": 1}, drill["reason"]
    functions = {f["function"]: f for f in drill["functions"]}
    login = functions["user_authentication"]
    assert login["probes"] == ["sql on $APP_DSN: SELECT 1"]
    assert login["verdict"] == "pass", login["reason"]
    assert login["rto"]["effect_seen"], "the crash must show in the function's own requests"
    assert 0 < login["rto"]["seconds"] < 30
    # Functions without probes are still judged through their dependencies.
    assert all(not f["probes"] for name, f in functions.items() if name != "user_authentication")


def test_a_probe_that_never_reaches_its_target_makes_the_drill_inconclusive(
    pytester: pytest.Pytester, drill_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBE_NOWHERE", "1")
    drill = _run(pytester, drill_args)
    assert drill["verdict"] == "inconclusive", drill["reason"]
    assert drill["_outcomes"] != {"passed": 1}
    (login,) = [f for f in drill["functions"] if f["function"] == "user_authentication"]
    assert login["verdict"] == "inconclusive"
    assert login["reason"].startswith("its probes never succeeded before the fault"), login[
        "reason"
    ]
    assert "login-query" in login["reason"]
