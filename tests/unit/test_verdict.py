from __future__ import annotations

import pytest

from pytest_drdrill.results import RpoResult, RtoResult, Target, Verdict
from pytest_drdrill.verdict import judge

TIER_1 = Target(
    kind="tier",
    name="tier_1_critical",
    rto_target=900.0,
    rto_max=1_800.0,
    rpo_target=300.0,
    rpo_max=900.0,
    max_lost_writes=0,
)


def _rto(seconds: float | None, *, effect_seen: bool = True) -> RtoResult:
    recovered = None if seconds is None else 10.0 + seconds
    return RtoResult(
        seconds=seconds,
        outage_started=10.1 if effect_seen else None,
        recovered_at=recovered,
        effect_seen=effect_seen,
    )


def _rpo(lost_ids: tuple[int, ...] = (), window: float = 0.0, unacked: int = 0) -> RpoResult:
    return RpoResult(
        lost_writes=len(lost_ids),
        lost_ids=lost_ids,
        window_seconds=window,
        unacknowledged_present=unacked,
    )


def test_pass_summary() -> None:
    """A fast recovery with nothing lost passes with a one-line summary."""
    assert judge(TIER_1, _rto(0.31), _rpo(), observation_seconds=30.0) == (
        Verdict.PASS,
        "RTO 0.31s within tier_1_critical target 15m00s; 0 acknowledged writes lost",
    )


def test_pass_at_exactly_the_target() -> None:
    """A value equal to its target is within it."""
    verdict, _ = judge(TIER_1, _rto(900.0), _rpo(window=0.0), observation_seconds=3_600.0)
    assert verdict is Verdict.PASS


def test_exactly_at_the_maximum_warns_not_fails() -> None:
    """A value equal to its maximum is over the target but within the maximum: WARN."""
    verdict, reason = judge(TIER_1, _rto(1_800.0), _rpo(window=900.0), observation_seconds=3_600.0)
    assert verdict is Verdict.WARN
    assert reason.count("but is within the maximum acceptable") == 2


def test_pass_without_rpo_says_so() -> None:
    """When RPO was not measured the summary says so instead of claiming no loss."""
    verdict, reason = judge(TIER_1, _rto(2.0), None, observation_seconds=30.0)
    assert verdict is Verdict.PASS
    assert reason == "RTO 2.00s within tier_1_critical target 15m00s; RPO not measured"


def test_pass_with_tolerated_loss_and_unacknowledged_writes() -> None:
    """Losses within an uncapped target are summarised, and unacknowledged rows counted apart."""
    target = Target("tier", "tier_2_high", 1_800.0, 3_600.0, 900.0, 3_600.0, None)
    verdict, reason = judge(
        target, _rto(5.0), _rpo((7, 8), window=0.4, unacked=1), observation_seconds=60.0
    )
    assert verdict is Verdict.PASS
    assert reason == (
        "RTO 5.00s within tier_2_high target 30m00s; 2 acknowledged writes lost, "
        "RPO 0.40s within target 15m00s; 1 unacknowledged write present (not a loss)"
    )


@pytest.mark.parametrize("rto", [None, _rto(None, effect_seen=False), _rto(0.5, effect_seen=False)])
def test_no_outage_is_inconclusive(rto: RtoResult | None) -> None:
    """A fault the client never noticed proves nothing."""
    verdict, reason = judge(TIER_1, rto, _rpo(), observation_seconds=30.0, fault="crash of pg-1")
    assert verdict is Verdict.INCONCLUSIVE
    assert reason.startswith("the client saw no outage after crash of pg-1: ")
    assert "the fault never took effect" in reason
    assert "check that the fault hits the node behind the service endpoint" in reason


def test_inconclusive_without_fault_name() -> None:
    """Without a fault description the message still reads."""
    _, reason = judge(TIER_1, None, None, observation_seconds=30.0)
    assert reason.startswith("the client saw no outage after the fault: ")


def test_no_recovery_fails() -> None:
    """A service that never came back fails, naming the window and the option to widen it."""
    verdict, reason = judge(TIER_1, _rto(None), _rpo((1,)), observation_seconds=120.0)
    assert verdict is Verdict.FAIL
    assert reason == (
        "service did not recover: no lasting acknowledged write within the 2m00s observation "
        "window after the fault (tier_1_critical target 15m00s); raise --drill-observe / "
        "drill_observe if recovery is expected to take longer"
    )


def test_rto_over_maximum_fails_with_the_documented_shape() -> None:
    """RTO over the maximum fails with 'RTO x exceeds name target t (maximum acceptable m)'."""
    target = Target("tier", "tier_1_critical", 900.0, 960.0)
    assert judge(target, _rto(962.0), None, observation_seconds=3_600.0) == (
        Verdict.FAIL,
        "RTO 16m02s exceeds tier_1_critical target 15m00s (maximum acceptable 16m00s)",
    )


def test_lost_writes_over_cap_fail() -> None:
    """More lost writes than allowed fails, naming the count, the first ids and the cap."""
    lost = tuple(range(101, 109))
    verdict, reason = judge(TIER_1, _rto(0.5), _rpo(lost, window=0.2), observation_seconds=30.0)
    assert verdict is Verdict.FAIL
    assert reason == (
        "8 acknowledged writes lost (ids 101, 102, 103, 104, 105 and 3 more), "
        "more than max_lost_writes=0"
    )


def test_single_lost_write_is_singular() -> None:
    """One lost write reads in the singular and lists its id."""
    _, reason = judge(TIER_1, _rto(0.5), _rpo((42,)), observation_seconds=30.0)
    assert reason == "1 acknowledged write lost (ids 42), more than max_lost_writes=0"


def test_lost_writes_within_cap_pass() -> None:
    """Lost writes up to the cap are allowed."""
    target = Target("tier", "tier_1_critical", 900.0, 1_800.0, 300.0, 900.0, 2)
    verdict, _ = judge(target, _rto(0.5), _rpo((1, 2), window=1.0), observation_seconds=30.0)
    assert verdict is Verdict.PASS


def test_rpo_over_maximum_fails() -> None:
    """An RPO window over the maximum fails in the same shape as RTO."""
    target = Target("function", "user_authentication", 900.0, 1_800.0, 300.0, 900.0)
    assert judge(target, _rto(1.0), _rpo((5,), window=1_200.0), observation_seconds=30.0) == (
        Verdict.FAIL,
        "RPO 20m00s exceeds user_authentication target 5m00s (maximum acceptable 15m00s)",
    )


def test_several_failures_are_joined() -> None:
    """Every failure is listed, in rule order, joined with '; '."""
    verdict, reason = judge(
        TIER_1, _rto(2_000.0), _rpo((9,), window=1_000.0), observation_seconds=3_600.0
    )
    assert verdict is Verdict.FAIL
    assert reason.split("; ") == [
        "RTO 33m20s exceeds tier_1_critical target 15m00s (maximum acceptable 30m00s)",
        "1 acknowledged write lost (ids 9), more than max_lost_writes=0",
        "RPO 16m40s exceeds tier_1_critical target 5m00s (maximum acceptable 15m00s)",
    ]


def test_failure_also_lists_warnings() -> None:
    """A FAIL reason keeps the over-target warnings after the failures."""
    target = Target("tier", "tier_1_critical", 900.0, 1_800.0, 300.0, 900.0)
    verdict, reason = judge(
        target, _rto(2_000.0), _rpo((9,), window=400.0), observation_seconds=1e4
    )
    assert verdict is Verdict.FAIL
    assert reason.split("; ") == [
        "RTO 33m20s exceeds tier_1_critical target 15m00s (maximum acceptable 30m00s)",
        "RPO 6m40s exceeds tier_1_critical target 5m00s but is within the maximum acceptable "
        "15m00s",
    ]


def test_rto_over_target_warns() -> None:
    """RTO over its target but within the maximum warns."""
    assert judge(TIER_1, _rto(962.0), _rpo(), observation_seconds=3_600.0) == (
        Verdict.WARN,
        "RTO 16m02s exceeds tier_1_critical target 15m00s but is within the maximum "
        "acceptable 30m00s",
    )


def test_both_over_target_warn_with_each_reason() -> None:
    """Each over-target value gets its own WARN reason."""
    target = Target("tier", "tier_1_critical", 900.0, 1_800.0, 300.0, 900.0)
    verdict, reason = judge(
        target, _rto(1_000.0), _rpo((3,), window=400.0), observation_seconds=1e4
    )
    assert verdict is Verdict.WARN
    assert [part.split(" exceeds")[0] for part in reason.split("; ")] == ["RTO 16m40s", "RPO 6m40s"]


def test_rpo_not_judged_without_limits() -> None:
    """A target with no RPO limits ignores even a long RPO window."""
    target = Target("tier", "tier_1_critical", 900.0, 1_800.0)
    verdict, _ = judge(target, _rto(1.0), _rpo((1, 2), window=99_999.0), observation_seconds=30.0)
    assert verdict is Verdict.PASS


def test_rpo_maximum_without_target() -> None:
    """An RPO maximum with no target still fails, naming only the maximum."""
    target = Target("tier", "tier_1_critical", 900.0, 1_800.0, None, 60.0)
    assert judge(target, _rto(1.0), _rpo((1,), window=61.0), observation_seconds=30.0) == (
        Verdict.FAIL,
        "RPO 1m01s exceeds tier_1_critical maximum acceptable 1m00s",
    )
