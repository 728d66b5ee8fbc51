"""The failover envelope of pg_auto_failover, from the monitor's live GUCs.

The monitor decides a failover; its ``pgautofailover.*`` settings (read from
``pg_settings`` on the monitor, in milliseconds) bound how long that takes after the
primary is lost:

- ``health_check_period``: the monitor checks every node once per period, so a loss is
  first seen up to one period after it happens;
- each check may last ``health_check_timeout`` and is retried
  ``health_check_max_retries`` times, ``health_check_retry_delay`` apart, before the node
  is marked unhealthy;
- ``node_considered_unhealthy_timeout``: the keeper must also have been silent this long
  before the monitor acts;
- ``primary_demote_timeout``: the standby chosen waits this long for the lost primary to
  demote itself before it promotes (measured: with the 30 s default this term dominated,
  37 s from the kill to the first write).

``promotion`` is an estimate, not a setting: the keeper's state loop, ``pg_promote`` and
libpq finding the new primary among the hosts. 2 s: quiet runs here took about 0.5 s, but
with 1 s the bound was overrun under the test suite's two workers (8.64 s against 8.5 s).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill.recovery.envelope import FailoverEnvelope

if TYPE_CHECKING:
    from collections.abc import Mapping

#: pg_auto_failover 2.0's defaults (milliseconds), for a setting the monitor does not show.
MONITOR_DEFAULTS: dict[str, int] = {
    "pgautofailover.health_check_period": 5000,
    "pgautofailover.health_check_max_retries": 2,
    "pgautofailover.health_check_retry_delay": 2000,
    "pgautofailover.health_check_timeout": 5000,
    "pgautofailover.node_considered_unhealthy_timeout": 20000,
    "pgautofailover.primary_demote_timeout": 30000,
}
#: Estimated seconds from the monitor's decision to the first write through libpq.
PROMOTION_SECONDS = 2.0


#: Where a team lowers these, for the pre-check's message.
_ADVICE = (
    "in the monitor's pgautofailover.* settings (ALTER SYSTEM on the monitor, then "
    "SELECT pg_reload_conf())"
)


def node_loss_envelope(
    settings: Mapping[str, int], *, promotion_seconds: float = PROMOTION_SECONDS
) -> FailoverEnvelope:
    """The envelope of losing the primary under the monitor's ``settings`` (ms)."""
    s = {**MONITOR_DEFAULTS, **{k: v for k, v in settings.items() if k in MONITOR_DEFAULTS}}
    retries = s["pgautofailover.health_check_max_retries"]

    def sec(key: str) -> float:
        return s[f"pgautofailover.{key}"] / 1000.0

    terms: tuple[tuple[str, float, str | None], ...] = (
        ("health_check_period", sec("health_check_period"), "pgautofailover.health_check_period"),
        (
            f"health_check_timeout x {retries + 1}",
            sec("health_check_timeout") * (retries + 1),
            "pgautofailover.health_check_timeout",
        ),
        (
            f"health_check_retry_delay x {retries}",
            sec("health_check_retry_delay") * retries,
            "pgautofailover.health_check_retry_delay",
        ),
        (
            "node_considered_unhealthy_timeout",
            sec("node_considered_unhealthy_timeout"),
            "pgautofailover.node_considered_unhealthy_timeout",
        ),
        (
            "primary_demote_timeout",
            sec("primary_demote_timeout"),
            "pgautofailover.primary_demote_timeout",
        ),
        ("promotion", promotion_seconds, None),
    )
    return FailoverEnvelope(
        "node_loss",
        float(sum(t[1] for t in terms)),
        terms,
        "the monitor sees the loss within a health-check period, marks the node unhealthy "
        "after its retries and the unhealthy timeout, the standby waits out the demote "
        "timeout, then promotes",
        sec("primary_demote_timeout"),
        stack="pg_auto_failover",
        advice=_ADVICE,
    )


def monitor_lost_envelope() -> FailoverEnvelope:
    """Without its monitor pg_auto_failover cannot fail over: no bound, by design."""
    return FailoverEnvelope(
        "node_loss",
        None,
        (),
        "the monitor is down: keepers keep their roles and nobody promotes a standby",
        stack="pg_auto_failover",
        advice=_ADVICE,
    )
