"""The region-outage drill with the application tier: every function measured end to end.

The inner drill loses the whole primary region, stores and application tier alike. The
reference region failover moves the stores; the application tier's hook then starts the
DR replicas and load balancer and repoints the front door's DNS name. Each business
function's RTO in the report comes from its own requests through DNS and HAProxy.
"""

from __future__ import annotations

import json

import pytest

DRILL = """
import json
import pytest
from pytest_drdrill import timing
from pytest_drdrill.app_tier_drill import AppTierInDrill

@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", scenario="app-region-outage")
def test_region_outage_with_app_tier(drdrill, request, tmp_path):
    with AppTierInDrill(drdrill, request.config, tmp_path / "app") as app:
        with drdrill.running():
            app.start_clients()
            app.await_functions(since=0.0, acks=5)
            fault_at = drdrill.faults.region_outage("primary")
            drdrill.await_recovery()
            app.await_functions(since=timing.monotonic(), acks=3)
        app.stop_clients()
        measured = app.measure(fault_at)
        phases = [p.name for p in drdrill.record.phases]
        drdrill.conclude()
    with open("measured.json", "w") as out:
        json.dump({
            "phases": phases,
            "functions": {
                name: {"rto": rto.seconds, "effect": rto.effect_seen,
                       "lost": None if loss is None else loss.lost_writes,
                       "acked": len(app_client.history.acknowledged())}
                for app_client in app.clients
                for name, (rto, loss) in [(app_client.function, measured[app_client.function])]
            },
        }, out)
"""


def test_region_outage_measures_every_function_through_dns_and_the_balancer(
    pytester: pytest.Pytester, drill_args: list[str]
) -> None:
    pytester.makepyfile(test_app_region=DRILL)
    result = pytester.runpytest_subprocess(*drill_args)
    measured = json.loads((pytester.path / "measured.json").read_text())
    print(json.dumps(measured, indent=1))
    (report,) = (pytester.path / "reports").glob("*/drill.json")
    (drill,) = json.loads(report.read_text())["drills"]
    assert "dr-application" in measured["phases"]
    (dr_app,) = [p for p in drill["phases"] if p["name"] == "dr-application"]
    assert dr_app["ok"], dr_app
    print(f"dr-application phase: {dr_app['seconds']:.3f}s ({dr_app.get('detail')})")
    functions = {f["function"]: f for f in drill["functions"]}
    for name, figures in measured["functions"].items():
        assert figures["effect"], f"{name}: the outage must show in its own requests"
        assert 0 < figures["rto"] < 60, (name, figures)
        # The report's table measures the function from the same requests.
        assert functions[name]["rto"]["effect_seen"], functions[name]
        assert functions[name]["rto"]["seconds"] == pytest.approx(figures["rto"], abs=0.5)
    # Uploads and annotations: PostgreSQL's DR standby is asynchronous, so some may be
    # lost; each lost one is counted, never more than were acknowledged.
    for name in ("video_upload", "annotation_system"):
        figures = measured["functions"][name]
        assert figures["lost"] is not None and 0 <= figures["lost"] <= figures["acked"]
    assert result.ret in (0, 1), result.stdout.str()[-3000:]
