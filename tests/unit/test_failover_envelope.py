"""The failover envelope Patroni's settings imply, per fault, without a cluster."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_drdrill.recovery.envelope import compare, envelope, precheck

FAST = {"ttl": 10, "loop_wait": 1, "retry_timeout": 4}


def test_node_loss_envelope_contains_the_measured_failovers() -> None:
    """The measured 10.3-11.1 s node losses under ttl 10 / loop_wait 1 lie inside it."""
    env = envelope("node_loss", FAST)
    assert env.worst_case_seconds == 12.0
    for measured in (10.3, 10.7, 11.1):
        assert compare(env, measured) is None


def test_node_loss_is_described_term_by_term() -> None:
    """describe() gives the sum with each setting's value."""
    text = envelope("node_loss", FAST).describe()
    assert text == "node loss: at most 12.0 s = ttl 10 s + loop_wait 1 s + promotion 1 s"


def test_benchmark_figures_lie_inside_their_envelopes() -> None:
    """Patroni's defaults (20.6-29.6 s) and ttl 20/loop 1 (19.6-20.6 s) fit."""
    defaults = envelope("node_loss", {})
    assert all(compare(defaults, m) is None for m in (20.6, 24.9, 29.6))
    aggressive = envelope("node_loss", {"ttl": 20, "loop_wait": 1, "retry_timeout": 5})
    assert all(compare(aggressive, m) is None for m in (19.6, 20.0, 20.6))


def test_too_slow_a_failover_is_flagged() -> None:
    """A measured RTO over the worst case yields the flag text."""
    env = envelope("node_loss", {"ttl": 20, "loop_wait": 4, "retry_timeout": 5})
    assert compare(env, 31.2) is not None
    assert compare(env, 31.2).startswith("Patroni took 31.2 s; its settings allow at most 25.0 s")  # type: ignore[union-attr]


def test_too_fast_a_failover_is_flagged() -> None:
    """A failover quicker than ttl - loop_wait (patroni#2868) is flagged too."""
    message = compare(envelope("node_loss", {"ttl": 120, "loop_wait": 10}), 15.0)
    assert message is not None and "at least 110.0 s" in message


def test_postgres_crash_follows_primary_start_timeout() -> None:
    """loop_wait + primary_start_timeout + loop_wait, or loop_wait alone when it is 0."""
    env = envelope("postgres_crash", {"loop_wait": 10, "master_start_timeout": 300})
    assert env.worst_case_seconds == 321.0
    assert (
        envelope("postgres_crash", {"loop_wait": 2, "primary_start_timeout": 0}).worst_case_seconds
        == 3.0
    )


def test_config_values_given_as_strings_are_read() -> None:
    """Numbers Patroni stored as strings still count."""
    assert envelope("patroni_frozen", {"ttl": "10", "loop_wait": "1"}).worst_case_seconds == 12.0


def test_dcs_partition_names_the_demotion_deadline() -> None:
    """The reason gives loop_wait + 2 * retry_timeout for the cut-off leader."""
    env = envelope("dcs_partition", FAST)
    assert env.worst_case_seconds == 12.0 and "= 9 s <= ttl" in env.reason


def test_dcs_partition_under_failsafe_mode_has_no_failover() -> None:
    """With failsafe_mode the cut-off leader stays primary: no bound, the reason says why."""
    env = envelope("dcs_partition", {**FAST, "failsafe_mode": True})
    assert env.worst_case_seconds is None and "stays primary" in env.reason


def test_client_partition_has_no_envelope_by_design() -> None:
    """Patroni does not fail over when only clients are cut off: no bound, a reason."""
    env = envelope("clients_partitioned", FAST)
    assert env.worst_case_seconds is None and "by design" in env.reason
    assert precheck(env, 1.0) is None and compare(env, 99.0) is None


def test_quorum_loss_depends_on_failsafe_mode() -> None:
    """With failsafe_mode the primary keeps running; without, writes stop."""
    assert "keeps running" in envelope("dcs_quorum_lost", {"failsafe_mode": True}).reason
    assert "writes stop" in envelope("dcs_quorum_lost", {}).reason


def test_precheck_passes_when_the_envelope_fits() -> None:
    """None when the worst case is within the tier's maximum RTO."""
    assert precheck(envelope("node_loss", FAST), 12.0) is None


def test_precheck_names_the_settings_to_lower() -> None:
    """The message names ttl before loop_wait, with values and the overshoot."""
    message = precheck(envelope("node_loss", {}), 30.0)
    assert message is not None
    assert "lower ttl (now 30 s) or loop_wait (now 10 s)" in message
    assert "by 11.0 s" in message and "--drill-patroni-config" in message


def test_unknown_fault_is_refused() -> None:
    """A fault name outside the list is a ValueError naming the choices."""
    with pytest.raises(ValueError, match="node_loss"):
        envelope("meteor", FAST)  # type: ignore[arg-type]


@given(ttl=st.integers(1, 200), loop=st.integers(1, 60), promotion=st.floats(0, 10))
def test_node_loss_worst_case_is_the_sum_of_its_terms(
    ttl: int, loop: int, promotion: float
) -> None:
    """The worst case equals ttl + loop_wait + promotion and is never below the best case."""
    env = envelope("node_loss", {"ttl": ttl, "loop_wait": loop}, promotion_seconds=promotion)
    assert env.worst_case_seconds == pytest.approx(ttl + loop + promotion)
    assert env.best_case_seconds is not None and env.best_case_seconds <= env.worst_case_seconds
