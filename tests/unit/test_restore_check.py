"""Judging a point-in-time restore against the client's history."""

from __future__ import annotations

import pytest

from pytest_drdrill.measure.history import History, Outcome, WriteOp
from pytest_drdrill.measure.restore import check_restore
from pytest_drdrill.timing import Anchor

ANCHOR = Anchor(mono=0.0, wall=1000.0)  # monotonic t is wall 1000 + t


def history() -> History:
    """Writes 1..10, each invoked at t=i and acknowledged at t=i+0.5."""
    h = History()
    for i in range(1, 11):
        h.record_write(WriteOp(i, float(i), i + 0.5, Outcome.OK))
    return h


def test_exact_restore_loses_only_writes_after_the_target():
    """Restored to t=5.7: writes 1-5 kept; 6-7 acknowledged before the incident are lost."""
    check = check_restore(history(), {1, 2, 3, 4, 5}, anchor=ANCHOR, target=1005.7, incident=1008.0)
    assert check.correct
    assert check.rpo.lost_ids == (6, 7)
    assert check.rpo.window_seconds == pytest.approx(1.8)  # 7 acked at 1007.5, target 1005.7


def test_missing_write_before_the_target_is_caught():
    """A restore that lacks a write acknowledged before its target is not correct."""
    check = check_restore(history(), {1, 2, 4, 5}, anchor=ANCHOR, target=1005.7, incident=1008.0)
    assert not check.correct
    assert check.missing_before_target == (3,)


def test_write_started_after_the_target_is_caught():
    """A restore holding a write started after its target did not stop at the target."""
    check = check_restore(
        history(), {1, 2, 3, 4, 5, 6, 7}, anchor=ANCHOR, target=1005.7, incident=1008.0
    )
    assert not check.correct
    assert check.present_after_target == (6, 7)
