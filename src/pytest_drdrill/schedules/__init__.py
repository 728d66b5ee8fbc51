"""Fault schedules: hypothesis draws sequences of faults; invariants are checked throughout.

The drill's parts, one module each: :mod:`~.machine` (the state machine that draws the
steps), :mod:`~.example` (one schedule against one fresh topology, and the fault model),
:mod:`~.exampledata` (what the runner gives an example and gets back),
:mod:`~.invariants` (split brain, lost writes, recovery: pure functions of what was
observed; the server watcher and the split-brain measure they use live in
:mod:`pytest_drdrill.measure`, as every drill runs them), :mod:`~.steplog`
(the readable story) and :mod:`~.runner` (seeds, settings, the report).

Importing this package does not import hypothesis; :meth:`FaultSchedules.run` does.
"""

from __future__ import annotations

from pytest_drdrill.schedules.invariants import Finding, ScheduleFailed
from pytest_drdrill.schedules.runner import FaultSchedules, ScheduleSettings, schedule_drill

__all__ = ["FaultSchedules", "Finding", "ScheduleFailed", "ScheduleSettings", "schedule_drill"]
