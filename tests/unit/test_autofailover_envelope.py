"""pg_auto_failover's failover envelope from the monitor's GUCs."""

from __future__ import annotations

import pytest

from pytest_drdrill.recovery.autofailover_envelope import (
    MONITOR_DEFAULTS,
    monitor_lost_envelope,
    node_loss_envelope,
)


def test_defaults_sum_every_term() -> None:
    env = node_loss_envelope({})
    # 5 + 5 x 3 + 2 x 2 + 20 + 30 + 2 (promotion estimate)
    assert env.worst_case_seconds == pytest.approx(76.0)
    assert env.best_case_seconds == pytest.approx(30.0)
    named = {t[2] for t in env.terms} - {None}
    assert named == set(MONITOR_DEFAULTS) - {"pgautofailover.health_check_max_retries"}


def test_live_settings_override_defaults_and_unknown_keys_are_ignored() -> None:
    env = node_loss_envelope(
        {
            "pgautofailover.health_check_period": 1000,
            "pgautofailover.health_check_max_retries": 1,
            "pgautofailover.health_check_retry_delay": 500,
            "pgautofailover.health_check_timeout": 1000,
            "pgautofailover.node_considered_unhealthy_timeout": 2000,
            "pgautofailover.primary_demote_timeout": 2000,
            "pgautofailover.startup_grace_period": 10000,
        }
    )
    assert env.worst_case_seconds == pytest.approx(9.5)
    assert "at most 9.5 s" in env.describe()


def test_monitor_lost_has_no_bound() -> None:
    env = monitor_lost_envelope()
    assert env.worst_case_seconds is None
    assert "monitor" in env.describe()


def test_the_comparison_and_precheck_name_pg_auto_failover_and_its_settings() -> None:
    from pytest_drdrill.recovery.envelope import compare, precheck

    env = node_loss_envelope({})
    over = compare(env, 80.0)
    assert over is not None and over.startswith("pg_auto_failover took 80.0 s")
    under = compare(env, 3.0)
    assert under is not None and "(primary_demote_timeout)" in under
    refused = precheck(env, 60.0)
    assert refused is not None and "pgautofailover.* settings" in refused
    assert "Patroni" not in over + under + refused
