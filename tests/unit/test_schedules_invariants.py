"""The schedule drill's invariants and fault model, as pure functions of what was observed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_drdrill.measure.history import History, Outcome, WriteOp
from pytest_drdrill.results import Target
from pytest_drdrill.schedules.faultmodel import refusal
from pytest_drdrill.schedules.invariants import (
    Answer,
    Finding,
    ScheduleFailed,
    handovers,
    lost_writes,
    recovery_after_heal,
    split_brains,
    sync_requirement,
    writable_spans,
)

SYNC = 'FIRST 1 ("pg-sync")'


def primary(node, sent, *, took=0.002, started=1.0, names=SYNC, in_sync=("pg-sync",)):
    return Answer(node, sent, sent + took, False, False, started, names, in_sync)


def standby(node, sent, *, took=0.002):
    return Answer(node, sent, sent + took, True, True, 1.0)


def silent(node, sent, *, took=0.5):
    return Answer(node, sent, sent + took, error="no answer within 0.5s")


# --- writable spans and split brain -----------------------------------------------------------


def test_consecutive_writable_answers_make_a_span_from_first_reply_to_last_poll():
    """A span runs from the first answer's reply to the last answer's poll."""
    answers = [primary("pg-primary", t) for t in (0.0, 0.1, 0.2)]
    (span,) = writable_spans(answers)
    assert (span.node, span.start, span.end, span.answers) == ("pg-primary", 0.002, 0.2, 3)


def test_a_single_writable_answer_proves_no_span():
    """One answer proves an instant only, never a time span."""
    assert writable_spans([primary("pg-primary", 0.0), silent("pg-primary", 0.1)]) == []


def test_silence_or_a_new_server_process_breaks_a_span():
    """A frozen server's silence, or a restarted process, ends the span it was in."""
    answers = [
        primary("pg-primary", 0.0),
        primary("pg-primary", 0.1),
        silent("pg-primary", 0.2),
        primary("pg-primary", 0.8),
        primary("pg-primary", 0.9, started=2.0),
        primary("pg-primary", 1.0, started=2.0),
    ]
    spans = writable_spans(answers)
    assert [(s.start, s.end) for s in spans] == [(0.002, 0.1), (0.902, 1.0)]


def test_a_clean_handover_is_not_split_brain():
    """The old primary stops answering before the new one is promoted: no overlap."""
    answers = [primary("pg-primary", t / 10) for t in range(5)]
    answers += [silent("pg-primary", 0.5 + t / 2) for t in range(8)]
    answers += [standby("pg-sync", t / 10) for t in range(40)]
    answers += [primary("pg-sync", 4.0 + t / 10, names="") for t in range(10)]
    assert split_brains(writable_spans(answers)) == []


def test_a_thawed_old_primary_next_to_the_new_one_is_split_brain():
    """An old primary that was never killed comes back writable beside the promoted one."""
    answers = [primary("pg-primary", t / 10) for t in range(5)]
    answers += [silent("pg-primary", 0.5 + t / 2) for t in range(8)]
    answers += [primary("pg-primary", 4.6 + t / 10) for t in range(3)]
    answers += [primary("pg-sync", 4.0 + t / 10, names="") for t in range(10)]
    (brain,) = split_brains(writable_spans(answers))
    assert {brain.first.node, brain.second.node} == {"pg-primary", "pg-sync"}
    assert brain.start == pytest.approx(4.602) and brain.end == pytest.approx(4.8)


_POLL = st.tuples(
    st.sampled_from((0.001, 0.01, 0.1, 0.5)),
    st.sampled_from((0.0, 0.5, 1.0)),
    st.sampled_from((0.0, 0.05, 0.1)),
)


@st.composite
def one_writer_at_a_time(draw):
    """Servers handed the writable role on in turn, polled at random moments.

    Each answer reflects the server's state at a random instant between poll and reply,
    as a real server's would.
    """
    handover = draw(st.floats(0.5, 5.0))
    gap = draw(st.floats(0.0, 1.0))
    writable = {"pg-primary": (0.0, handover), "pg-sync": (handover + gap, 100.0)}
    answers = []
    for node, (begin, end) in writable.items():
        t = draw(st.sampled_from((0.0, 0.03)))
        # Few distinct values keep shrinking fast; the range still covers quick replies,
        # slow ones and the 0.5 s timeout, with the server's instant anywhere in between.
        for took, where, pause in draw(st.lists(_POLL, min_size=1, max_size=40)):
            instant = t + where * took
            if begin <= instant < end:
                answers.append(primary(node, t, took=took))
            else:
                answers.append(standby(node, t, took=took))
            t += took + pause
    return answers


@given(one_writer_at_a_time())
def test_split_brain_is_never_claimed_when_one_server_was_writable_at_a_time(answers):
    """Soundness: however polls and replies fall, a clean handover is never called split brain."""
    assert split_brains(writable_spans(answers)) == []


# --- handovers and lost writes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ('FIRST 1 ("pg-sync")', (1, ("pg-sync",))),
        ("ANY 2 (a, b)", (2, ("a", "b"))),
        ("a, b", (1, ("a", "b"))),
        ("2 (a, b, c)", (2, ("a", "b", "c"))),
        ("", (0, ())),
        ("*", (1, ("*",))),
    ],
)
def test_synchronous_standby_names_parsed(setting, expected):
    """The forms PostgreSQL accepts in synchronous_standby_names."""
    assert sync_requirement(setting) == expected


def test_handover_to_the_in_sync_only_candidate_is_synchronous_and_on_to_the_dr_is_not():
    """pg-primary -> pg-sync is synchronous; pg-sync (no sync standby) -> pg-dr is not."""
    answers = [primary("pg-primary", t / 10) for t in range(5)]
    answers += [primary("pg-sync", 2.0 + t / 10, names="", in_sync=()) for t in range(5)]
    answers += [primary("pg-dr", 5.0 + t / 10, names="", in_sync=()) for t in range(5)]
    first, second = handovers(answers, started=0.0)
    assert (first.old, first.new, first.synchronous) == ("pg-primary", "pg-sync", True)
    assert (second.old, second.new, second.synchronous) == ("pg-sync", "pg-dr", False)
    assert "did not require pg-dr's confirmation" in second.why


def test_handover_to_one_of_several_candidates_is_not_synchronous():
    """With FIRST 1 (a, b) the other candidate may have confirmed the last commits."""
    answers = [primary("pg-primary", t / 10, names="pg-sync, pg-dr") for t in range(5)]
    answers += [primary("pg-sync", 2.0 + t / 10, names="") for t in range(5)]
    (handed,) = handovers(answers, started=0.0)
    assert not handed.synchronous


def _history(acked: range, failed: range = range(0)) -> History:
    history = History()
    for i in acked:
        history.record_write(WriteOp(i, i, i + 0.001, Outcome.OK))
    for i in failed:
        history.record_write(WriteOp(i, i, i + 0.001, Outcome.INFO))
    return history


def test_writes_lost_across_synchronous_handovers_are_a_finding():
    """Acknowledged writes missing after only synchronous handovers break the invariant."""
    answers = [primary("pg-primary", t / 10) for t in range(5)]
    answers += [primary("pg-sync", 2.0 + t / 10, names="", in_sync=()) for t in range(5)]
    handed = handovers(answers, started=0.0)
    finding = lost_writes(_history(range(1, 11)), set(range(1, 8)), handed, cap=0)
    assert finding is not None and finding.kind == "lost writes"
    assert "3 acknowledged write(s) missing" in finding.detail
    assert "ids 8, 9, 10" in finding.detail and "pg-primary -> pg-sync" in finding.detail


def test_writes_lost_after_an_asynchronous_handover_are_not_judged_here():
    """An asynchronous promotion may lose writes; the drill reports them, RPO judges them."""
    answers = [primary("pg-primary", t / 10, names="") for t in range(5)]
    answers += [primary("pg-dr", 2.0 + t / 10, names="") for t in range(5)]
    handed = handovers(answers, started=0.0)
    assert lost_writes(_history(range(1, 11)), set(range(1, 8)), handed, cap=0) is None


def test_unacknowledged_writes_are_never_lost_and_the_cap_is_respected():
    """Only acknowledged writes count, and up to ``cap`` of them may be missing."""
    history = _history(range(1, 6), failed=range(6, 9))
    assert lost_writes(history, {1, 2, 3, 4, 5}, [], cap=0) is None
    assert lost_writes(history, {1, 2, 3, 4}, [], cap=1) is None
    assert lost_writes(history, {1, 2, 3}, [], cap=1) is not None


# --- recovery after the last heal ---------------------------------------------------------------

TIER = Target("tier", "tier_1_critical", rto_target=900.0, rto_max=1800.0)


def _writes(*ops: tuple[int, float, float, Outcome]) -> History:
    history = History()
    for op in ops:
        history.record_write(WriteOp(*op))
    return history


def test_recovery_measured_from_the_last_heal():
    """Failures after the heal, then lasting acknowledgements: recovered, within target."""
    history = _writes(
        (1, 9.0, 9.5, Outcome.INFO), (2, 10.1, 11.0, Outcome.FAIL), (3, 11.0, 12.25, Outcome.OK)
    )
    recovery = recovery_after_heal(history, 10.0, TIER, observe=60)
    assert recovery.seconds == pytest.approx(2.25) and recovery.finding is None


def test_no_acknowledged_write_after_the_heal_is_no_recovery():
    """A service still failing when the observation window ends breaks the invariant."""
    history = _writes((1, 10.1, 11.1, Outcome.INFO), (2, 11.2, 12.2, Outcome.INFO))
    recovery = recovery_after_heal(history, 10.0, TIER, observe=60)
    assert recovery.seconds is None
    assert recovery.finding is not None and "observation window" in recovery.finding.detail


def test_recovery_over_the_tier_maximum_fails_and_over_the_target_warns():
    """Judged against the tier: over the maximum is a finding, over the target a warning."""
    tight = Target("tier", "tight", rto_target=1.0, rto_max=3.0)
    slow = recovery_after_heal(_writes((1, 10.0, 14.0, Outcome.OK)), 10.0, tight, observe=60)
    assert slow.finding is not None and "maximum acceptable" in slow.finding.detail
    late = recovery_after_heal(_writes((1, 10.0, 12.0, Outcome.OK)), 10.0, tight, observe=60)
    assert late.finding is None and "over tight's target" in late.warning


def test_schedule_failed_names_each_finding_and_the_steps():
    """The failure message is readable on its own: findings, then one line per step."""
    error = ScheduleFailed(
        [Finding("split brain", "pg-primary and pg-sync both accepted writes")],
        ["+   0.38s  freeze pg-primary", "+   4.52s  settle: ..."],
    )
    assert isinstance(error, AssertionError)
    assert str(error).splitlines() == [
        "fault schedule broke 1 invariant(s):",
        "  SPLIT BRAIN: pg-primary and pg-sync both accepted writes",
        "what happened, one line per step (times from the schedule's start):",
        "  +   0.38s  freeze pg-primary",
        "  +   4.52s  settle: ...",
    ]


# --- the fault model ----------------------------------------------------------------------------

RUNNING = {"pg-primary": True, "pg-sync": True, "pg-dr": True}


def _latest(**answers):
    base = {"pg-primary": primary("pg-primary", 0), "pg-sync": standby("pg-sync", 0)}
    base["pg-dr"] = standby("pg-dr", 0)
    base.update(answers)
    return base


def test_a_fault_on_the_primary_is_allowed_while_a_standby_is_healthy():
    """With both standbys healthy the primary may be hit."""
    assert refusal("pg-primary", "freeze", running=RUNNING, latest=_latest(), impaired=()) is None


def test_no_fault_may_leave_the_topology_without_a_healthy_standby():
    """With pg-dr impaired, hitting pg-sync would leave no standby to fail over to."""
    reason = refusal("pg-sync", "freeze", running=RUNNING, latest=_latest(), impaired={"pg-dr"})
    assert reason == "no healthy standby would be left besides pg-sync"
    frozen = _latest(**{"pg-dr": silent("pg-dr", 0)})
    assert refusal("pg-sync", "partition", running=RUNNING, latest=frozen, impaired=()) is not None


def test_the_live_primarys_synchronous_standby_is_never_crashed():
    """Crashing the only synchronous candidate would block every commit undetected."""
    reason = refusal("pg-sync", "crash", running=RUNNING, latest=_latest(), impaired=())
    assert reason is not None and "pg-primary's synchronous standbys" in reason
    assert refusal("pg-sync", "freeze", running=RUNNING, latest=_latest(), impaired=()) is None
    assert refusal("pg-dr", "crash", running=RUNNING, latest=_latest(), impaired=()) is None


def test_one_of_two_quorum_standbys_may_be_crashed_while_the_other_confirms():
    """Under ANY 1 (pg-sync, pg-sync2) one may die; never the last one running and unharmed."""
    names = 'ANY 1 ("pg-sync", "pg-sync2")'
    latest = _latest(**{"pg-primary": primary("pg-primary", 0, names=names)})
    latest["pg-sync2"] = standby("pg-sync2", 0)
    running = {**RUNNING, "pg-sync2": True}
    assert refusal("pg-sync", "crash", running=running, latest=latest, impaired=()) is None
    down = {**running, "pg-sync2": False}
    assert refusal("pg-sync", "crash", running=down, latest=latest, impaired=()) is not None
    frozen = refusal("pg-sync", "crash", running=running, latest=latest, impaired={"pg-sync2"})
    assert frozen is not None and "fewer than 1" in frozen


def test_faults_hit_running_servers_only():
    """A crashed server stays down; nothing more is injected into it."""
    down = {**RUNNING, "pg-dr": False}
    assert refusal("pg-dr", "freeze", running=down, latest=_latest(), impaired=()) == (
        "pg-dr is not running"
    )
