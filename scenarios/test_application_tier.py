"""The primary region's outage as users see it: through DNS, the load balancer and the app.

The sample application runs two replicas behind the primary region's HAProxy, and the
front door's DNS name leads there. The outage takes the region's stores and application
tier down; the reference region failover moves the stores, then starts the DR replica
and load balancer and repoints the name. Each business function (log in, upload,
annotate, report) is measured from its own requests; uploads and annotations acknowledged
but gone afterwards are its data loss.
"""

from __future__ import annotations

import pytest

from pytest_drdrill import timing
from pytest_drdrill.app_tier_drill import AppTierInDrill


@pytest.mark.drdrill(
    cadence="quarterly",
    tier="tier_1_critical",
    data="critical_user_data",
    scenario="primary-region-outage-through-the-front-door",
    postgres_failover=("reference",),
)
def test_primary_region_outage_through_the_front_door(drdrill, request, tmp_path):
    """Every function's RTO comes from its own requests through DNS and HAProxy."""
    with AppTierInDrill(drdrill, request.config, tmp_path / "app") as app:
        with drdrill.running():
            app.start_clients()
            app.await_functions(since=0.0, acks=5)
            fault_at = drdrill.faults.region_outage("primary")
            drdrill.await_recovery()
            app.await_functions(since=timing.monotonic(), acks=3)
        app.stop_clients()
        measured = app.measure(fault_at)
        result = drdrill.conclude()
    assert app.tier.serving == "dr"
    assert "dr-application" in [p.name for p in result.phases]
    functions = {f.function: f for f in result.functions}
    for name, (rto, loss) in measured.items():
        assert rto.effect_seen, f"{name}: the outage must show in its own requests"
        assert functions[name].rto.effect_seen
        if loss is not None:  # uploads and annotations: the table shows the app's own loss
            assert functions[name].rpo is not None
            assert functions[name].rpo.lost_ids == loss.lost_ids, name
