"""The write timeline behind the report's plots, and the live progress lines."""

from __future__ import annotations

import io

import pytest

from pytest_drdrill.measure.history import History, Outcome, ProbeOp, WriteOp
from pytest_drdrill.measure.timeline import bucket_seconds, service_timeline
from pytest_drdrill.record import DrillRecord
from pytest_drdrill.results import Phase


@pytest.mark.parametrize(
    ("duration", "bucket"),
    [(5, 0.1), (60, 0.1), (61, 0.2), (200, 0.5), (600, 1), (601, 2), (3600, 10)],
)
def test_bucket_width_keeps_a_timeline_near_600_points(duration, bucket):
    """Short drills get 0.1 s buckets; long ones a 1-2-5 step that keeps ~600 buckets."""
    assert bucket_seconds(duration) == pytest.approx(bucket)
    assert duration / bucket_seconds(duration) <= 600 + 1e-9


def test_operations_are_counted_in_the_bucket_they_completed_in():
    """Each write and probe lands in the bucket of its completion time, by outcome."""
    history = History()
    history.record_write(WriteOp(1, 100.00, 100.05, Outcome.OK))
    history.record_write(WriteOp(2, 100.05, 100.15, Outcome.OK))
    history.record_write(WriteOp(3, 100.15, 100.25, Outcome.FAIL, "refused"))
    history.record_write(WriteOp(4, 100.25, 100.29, Outcome.INFO, "reset"))
    history.record_probe(ProbeOp(100.0, 100.31, ok=False))
    history.record_probe(ProbeOp(100.3, 100.35, ok=True))
    history.record_write(WriteOp(5, 100.4, 100.45, Outcome.OK))  # after the end: left out
    timeline = service_timeline("postgres", history, start=100.0, end=100.4, bucket=0.1)
    assert timeline.acknowledged == (1, 1, 0, 0)
    assert timeline.failed == (0, 0, 1, 0)
    assert timeline.indeterminate == (0, 0, 1, 0)
    assert timeline.probes_failed == (0, 0, 0, 1)
    assert timeline.probes_ok == (0, 0, 0, 1)


def test_live_progress_prints_faults_and_phases_as_recorded():
    """Every fault and phase recorded becomes a line at once, with its offset."""
    from rich.console import Console

    from pytest_drdrill.reporting.live import LiveProgress

    out = io.StringIO()
    live = LiveProgress(Console(file=out, width=200, color_system=None))
    record = DrillRecord("t", scenario="primary-crash", cadence="monthly", target=None,
                         backend="local")  # fmt: skip
    live.watch(record)
    start = record.started_at
    record.fault_injected("crash", "pg-primary", start + 1.5)
    record.add_phase(Phase("promotion", start + 1.8, start + 1.84, ok=False, detail="boom"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "primary-crash +1.50s fault crash of pg-primary"
    assert lines[1].startswith("primary-crash +1.80s promotion 40 ms FAILED boom")


def test_a_failing_listener_is_noted_not_raised():
    """A broken observer of the record never breaks recovery; it leaves a note."""
    record = DrillRecord("t", scenario="s", cadence="monthly", target=None, backend="local")

    def broken(kind, item):
        raise RuntimeError("listener bug")

    record.subscribe(broken)
    record.fault_injected("crash", "pg-primary", record.started_at)
    assert record.notes == ["a drill listener failed on a fault: RuntimeError: listener bug"]
