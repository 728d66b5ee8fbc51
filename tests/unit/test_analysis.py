"""Tests for the client history and the RTO/RPO/availability analysis built on it."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_drdrill.measure import (
    History,
    Outcome,
    ProbeOp,
    WriteOp,
    measure_rpo,
    measure_rto,
)

OK, FAIL, INFO = Outcome.OK, Outcome.FAIL, Outcome.INFO


def make_history(
    writes: list[tuple[int, float, float, Outcome]],
    probes: Sequence[tuple[float, float, bool]] = (),
) -> History:
    history = History()
    for id_, invoked, completed, outcome in writes:
        history.record_write(WriteOp(id_, invoked, completed, outcome))
    for invoked, completed, ok in probes:
        history.record_probe(ProbeOp(invoked, completed, ok))
    return history


# A crash at t=10: writes 1-3 acknowledged, 4 in flight dies (INFO), 5-6 refused,
# 7 acknowledged by the new primary at 12.0.
CRASH = [
    (1, 9.0, 9.1, OK),
    (2, 9.2, 9.3, OK),
    (3, 9.6, 9.7, OK),
    (4, 9.9, 10.4, INFO),
    (5, 10.5, 10.6, FAIL),
    (6, 11.0, 11.2, FAIL),
    (7, 11.8, 12.0, OK),
    (8, 12.1, 12.2, OK),
]


# --- History ---------------------------------------------------------------------------


def test_history_snapshots_and_counts() -> None:
    """History returns what was recorded, in order, and counts writes plus probes."""
    history = make_history(CRASH, probes=[(9.5, 9.55, True), (10.1, 10.3, False)])
    assert [op.id for op in history.writes()] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [op.id for op in history.acknowledged()] == [1, 2, 3, 7, 8]
    assert [p.ok for p in history.probes()] == [True, False]
    assert len(history) == 10
    assert isinstance(history.writes(), tuple)


def test_acknowledged_since_sorted_and_unsorted() -> None:
    """acknowledged_since counts acks completed at or after t, in order or not."""
    history = make_history(CRASH)
    assert history.acknowledged_since(0.0) == 5
    assert history.acknowledged_since(9.7) == 3
    assert history.acknowledged_since(9.71) == 2
    assert history.acknowledged_since(12.0) == 2
    assert history.acknowledged_since(12.01) == 1
    assert history.acknowledged_since(13.0) == 0
    # A concurrent writer can finish an earlier acknowledgement last.
    history.record_write(WriteOp(9, 9.0, 9.05, OK))
    assert history.acknowledged_since(9.0) == 6
    assert history.acknowledged_since(9.06) == 5
    assert history.acknowledged_since(9.71) == 2


def test_ops_reject_completion_before_invocation() -> None:
    """A write or probe that completed before it was invoked is refused."""
    with pytest.raises(ValueError, match="write 3 completed"):
        WriteOp(3, 2.0, 1.0, OK)
    with pytest.raises(ValueError, match="probe completed"):
        ProbeOp(2.0, 1.0, ok=True)


def test_history_concurrent_appends_and_reads() -> None:
    """Snapshots taken while another thread appends are consistent prefixes."""
    history = History()
    total = 5_000
    done = threading.Event()

    def writer() -> None:
        for i in range(total):
            history.record_write(WriteOp(i, float(i), float(i), OK))
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen = 0
    while not done.is_set() or seen < total:
        snapshot = history.writes()
        assert len(snapshot) >= seen
        assert [op.id for op in snapshot] == list(range(len(snapshot)))
        seen = len(snapshot)
    thread.join()
    assert history.acknowledged_since(0.0) == total


# --- RTO -------------------------------------------------------------------------------


def test_rto_crash_example() -> None:
    """RTO runs from the fault to the first ack after the last failure."""
    rto = measure_rto(make_history(CRASH), fault_at=10.0)
    assert rto.effect_seen is True
    # The in-flight write 4 was invoked before the fault: the outage starts at the fault.
    assert rto.outage_started == 10.0
    assert rto.recovered_at == 12.0
    assert rto.seconds == pytest.approx(2.0)


def test_rto_flapping_success_does_not_end_outage() -> None:
    """An ack between failures does not count as recovery."""
    writes = [
        (1, 9.0, 9.1, OK),
        (2, 10.2, 10.3, FAIL),
        (3, 10.4, 10.5, OK),
        (4, 10.6, 11.5, INFO),
        (5, 11.6, 11.9, OK),
    ]
    rto = measure_rto(make_history(writes), fault_at=10.0)
    assert rto.outage_started == 10.2
    assert rto.recovered_at == 11.9
    assert rto.seconds == pytest.approx(1.9)


def test_rto_probe_failure_extends_outage() -> None:
    """A failed probe after the last failed write pushes recovery later."""
    writes = [(1, 10.1, 10.2, FAIL), (2, 10.3, 10.4, OK), (3, 10.9, 11.0, OK)]
    rto = measure_rto(make_history(writes, probes=[(10.5, 10.8, False)]), fault_at=10.0)
    assert rto.recovered_at == 11.0
    assert rto.seconds == pytest.approx(1.0)


def test_rto_ignores_failures_before_fault() -> None:
    """Failures completed before the fault are not part of the outage."""
    writes = [(1, 8.0, 8.5, FAIL), (2, 9.0, 9.1, OK), (3, 10.2, 10.3, OK)]
    rto = measure_rto(make_history(writes, probes=[(9.2, 9.9, False)]), fault_at=10.0)
    assert rto.effect_seen is False
    assert rto.seconds is None
    assert rto.outage_started is None
    assert rto.recovered_at is None


def test_rto_never_recovered() -> None:
    """With no ack after the last failure, RTO is None but the effect was seen."""
    writes = [(1, 9.0, 9.1, OK), (2, 10.1, 10.2, FAIL), (3, 10.3, 10.4, FAIL)]
    rto = measure_rto(make_history(writes), fault_at=10.0)
    assert rto.effect_seen is True
    assert rto.outage_started == 10.1
    assert rto.seconds is None
    assert rto.recovered_at is None


def test_rto_empty_history() -> None:
    """An empty history shows no effect."""
    rto = measure_rto(History(), fault_at=1.0)
    assert (rto.seconds, rto.effect_seen) == (None, False)


# --- RPO -------------------------------------------------------------------------------


def test_rpo_no_loss() -> None:
    """When every ack survives, nothing is lost and the window is 0."""
    rpo = measure_rpo(make_history(CRASH), present_ids=[1, 2, 3, 7, 8], fault_at=10.0)
    assert rpo.lost_writes == 0
    assert rpo.lost_ids == ()
    assert rpo.window_seconds == 0.0
    assert rpo.unacknowledged_present == 0


def test_rpo_lost_tail_and_unacknowledged_present() -> None:
    """Lost acks are listed; the window runs from the last surviving ack before them."""
    # Write 4 (indeterminate) made it to the replica; acks 2 and 3 did not.
    rpo = measure_rpo(make_history(CRASH), present_ids=[1, 4, 7, 8], fault_at=10.0)
    assert rpo.lost_ids == (2, 3)
    assert rpo.lost_writes == 2
    assert rpo.unacknowledged_present == 1
    assert rpo.window_seconds == pytest.approx(10.0 - 9.1)


def test_rpo_window_without_surviving_earlier_write() -> None:
    """With no surviving ack before the first loss, the window starts at the first write."""
    rpo = measure_rpo(make_history(CRASH), present_ids=[2, 7, 8], fault_at=10.0)
    assert rpo.lost_ids == (1, 3)
    assert rpo.window_seconds == pytest.approx(10.0 - 9.0)


def test_rpo_window_floored_at_zero() -> None:
    """An ack lost after the fault with a surviving later-completed ack gives window 0."""
    writes = [(1, 10.5, 10.6, OK), (2, 10.7, 10.8, OK)]
    rpo = measure_rpo(make_history(writes), present_ids=[1], fault_at=10.0)
    assert rpo.lost_ids == (2,)
    assert rpo.window_seconds == 0.0


def test_rpo_retried_id_counts_as_acknowledged() -> None:
    """An id acknowledged on retry is not counted as unacknowledged, even when present."""
    writes = [(1, 9.0, 9.5, INFO), (1, 9.6, 9.7, OK), (2, 9.8, 9.9, FAIL)]
    rpo = measure_rpo(make_history(writes), present_ids=[1, 2], fault_at=10.0)
    assert rpo.unacknowledged_present == 1
    assert rpo.lost_ids == ()


def test_rpo_rejects_ids_never_attempted() -> None:
    """Ids on the new primary that the workload never wrote raise a clear error."""
    unknown = [100, 101, 102, 103, 104, 105, 106]
    with pytest.raises(ValueError, match=r"7 row id\(s\).*100, 101, 102, 103, 104 and 2 more"):
        measure_rpo(make_history(CRASH), present_ids=[1, 2, *unknown], fault_at=10.0)


# --- properties on synthetic histories -------------------------------------------------

START = 100.0


@st.composite
def sequential_histories(
    draw: st.DrawFn, *, ok_after_fault: bool = False
) -> tuple[list[tuple[int, float, float, Outcome]], float]:
    """Draw a single sequential writer's history starting at START, and a fault time."""
    n = draw(st.integers(min_value=0, max_value=40))
    gaps = draw(st.lists(st.floats(0.0, 0.5), min_size=n, max_size=n))
    durations = draw(st.lists(st.floats(0.0, 0.5), min_size=n, max_size=n))
    outcomes = draw(st.lists(st.sampled_from(Outcome), min_size=n, max_size=n))
    writes = []
    now = START
    for i in range(n):
        invoked = now + gaps[i]
        completed = invoked + durations[i]
        writes.append((i + 1, invoked, completed, outcomes[i]))
        now = completed
    fault_at = draw(st.floats(START, now + 1.0))
    if ok_after_fault:
        writes = [(i, a, c, OK if c >= fault_at else o) for i, a, c, o in writes]
    return writes, fault_at


@st.composite
def histories_with_present(
    draw: st.DrawFn,
) -> tuple[list[tuple[int, float, float, Outcome]], float, set[int]]:
    """Draw a sequential history, a fault time and a random set of surviving ids."""
    writes, fault_at = draw(sequential_histories())
    ids = sorted({w[0] for w in writes})
    present = set(draw(st.lists(st.sampled_from(ids), unique=True))) if ids else set()
    return writes, fault_at, present


def failures_after(
    writes: list[tuple[int, float, float, Outcome]], fault_at: float
) -> list[tuple[int, float, float, Outcome]]:
    return [w for w in writes if w[3] is not OK and w[2] >= fault_at]


@given(sequential_histories())
def test_property_rto_consistent_with_history(
    case: tuple[list[tuple[int, float, float, Outcome]], float],
) -> None:
    """RTO is non-negative and recovery is an ack invoked after every failure."""
    writes, fault_at = case
    rto = measure_rto(make_history(writes), fault_at)
    failures = failures_after(writes, fault_at)
    assert rto.effect_seen == bool(failures)
    if not failures:
        assert rto.seconds is None and rto.recovered_at is None
        return
    assert rto.outage_started is not None and rto.outage_started >= fault_at
    last_failure = max(w[2] for w in failures)
    later_acks = [w for w in writes if w[3] is OK and w[1] >= last_failure]
    if not later_acks:
        assert rto.seconds is None and rto.recovered_at is None
        return
    assert rto.seconds is not None and rto.seconds >= 0
    assert rto.recovered_at is not None
    assert rto.seconds == rto.recovered_at - fault_at
    recovering = [w for w in later_acks if w[2] == rto.recovered_at]
    assert recovering, "recovered_at must be the completion of an OK write"
    assert all(recovering[0][1] >= w[2] for w in failures)
    assert rto.recovered_at == min(w[2] for w in later_acks)


@given(sequential_histories(ok_after_fault=True))
def test_property_all_ok_after_fault_means_no_effect(
    case: tuple[list[tuple[int, float, float, Outcome]], float],
) -> None:
    """When every write completing after the fault succeeds, no effect is seen."""
    writes, fault_at = case
    rto = measure_rto(make_history(writes), fault_at)
    assert rto.effect_seen is False
    assert rto.seconds is None


@given(histories_with_present(), st.integers(min_value=1, max_value=10))
def test_property_earlier_acks_change_nothing(
    case: tuple[list[tuple[int, float, float, Outcome]], float, set[int]], extra: int
) -> None:
    """Prepending surviving acks before the fault leaves RTO and the lost set unchanged."""
    writes, fault_at, present = case
    # Negative ids keep the extra writes below every drawn id, like an older sequence.
    before = [(-extra + k, float(k), float(k) + 0.5, OK) for k in range(extra)]
    extended_present = present | {w[0] for w in before}
    plain_rto = measure_rto(make_history(writes), fault_at)
    extended_rto = measure_rto(make_history(before + writes), fault_at)
    assert extended_rto == plain_rto
    plain_rpo = measure_rpo(make_history(writes), present, fault_at)
    extended_rpo = measure_rpo(make_history(before + writes), extended_present, fault_at)
    assert extended_rpo.lost_ids == plain_rpo.lost_ids
    assert extended_rpo.unacknowledged_present == plain_rpo.unacknowledged_present


@given(histories_with_present())
def test_property_rpo_sets(
    case: tuple[list[tuple[int, float, float, Outcome]], float, set[int]],
) -> None:
    """Lost ids are acknowledged and absent; unacknowledged_present never counts acks."""
    writes, fault_at, present = case
    rpo = measure_rpo(make_history(writes), present, fault_at)
    acknowledged = {w[0] for w in writes if w[3] is OK}
    lost = set(rpo.lost_ids)
    assert lost <= acknowledged
    assert not lost & present
    assert lost == acknowledged - present
    assert list(rpo.lost_ids) == sorted(lost)
    assert rpo.lost_writes == len(rpo.lost_ids)
    assert rpo.unacknowledged_present == len(present - acknowledged)
    assert rpo.window_seconds >= 0


@given(histories_with_present())
def test_property_window_zero_exactly_when_nothing_lost(
    case: tuple[list[tuple[int, float, float, Outcome]], float, set[int]],
) -> None:
    """The window is 0 when nothing is lost, and positive when a pre-fault ack is lost."""
    writes, fault_at, present = case
    rpo = measure_rpo(make_history(writes), present, fault_at)
    if not rpo.lost_ids:
        assert rpo.window_seconds == 0.0
        return
    first_lost = next(w for w in writes if w[0] == rpo.lost_ids[0] and w[3] is OK)
    if first_lost[2] < fault_at:
        assert rpo.window_seconds > 0
        # Nothing surviving can be older than the workload itself.
        assert rpo.window_seconds <= fault_at - writes[0][1]


@given(
    sequential_histories(),
    st.lists(st.tuples(st.floats(START, START + 25.0), st.floats(0.0, 0.5), st.booleans())),
)
def test_property_recovery_follows_probe_failures(
    case: tuple[list[tuple[int, float, float, Outcome]], float],
    raw_probes: list[tuple[float, float, bool]],
) -> None:
    """Recovery is an ack invoked after every post-fault failure, probes included."""
    writes, fault_at = case
    probes = [(invoked, invoked + length, ok) for invoked, length, ok in raw_probes]
    rto = measure_rto(make_history(writes, probes), fault_at)
    failed_probes = [p for p in probes if not p[2] and p[1] >= fault_at]
    failures = failures_after(writes, fault_at)
    assert rto.effect_seen == bool(failures or failed_probes)
    if rto.recovered_at is None:
        return
    assert rto.seconds is not None and rto.seconds >= 0
    recovering = [w for w in writes if w[3] is OK and w[2] == rto.recovered_at]
    assert any(
        all(w[1] >= f[2] for f in failures) and all(w[1] >= p[1] for p in failed_probes)
        for w in recovering
    )
