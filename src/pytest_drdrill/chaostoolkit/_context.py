"""The drill that Chaos Toolkit activities act on: the pytest fixture's, or the control's.

chaoslib calls providers as plain functions with the experiment's arguments only, so they
find the running drill here. It is set by the experiment drill item (around
``run_experiment``) or by the control when ``chaos run`` runs an experiment by itself.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from pytest_drdrill.errors import DrillError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pytest_drdrill.drill import Drill

_lock = threading.Lock()
_drill: Drill | None = None


class NoDrillRunning(DrillError, RuntimeError):
    """A pytest-drdrill activity was called while no drill was running.

    .. versionadded:: 0.4
    """


def running_drill() -> Drill:
    """The drill that activities inject faults into and probe.

    :raises NoDrillRunning: outside a drill, saying how to get one.
    """
    drill = _drill
    if drill is None:
        raise NoDrillRunning(
            "no drill is running, so there is no topology to act on. Declare the control "
            "in the experiment (controls: [{name: drdrill, provider: {type: python, module: "
            "pytest_drdrill.chaostoolkit.control}}]) so that `chaos run` starts the local "
            "topology, or run the experiment file with pytest (--drill=CADENCE)"
        )
    return drill


def is_active() -> bool:
    """Whether a drill is running in this process."""
    return _drill is not None


def activate(drill: Drill) -> None:
    """Make ``drill`` the one activities act on.

    :raises NoDrillRunning: when another drill is already active (one at a time).
    """
    global _drill
    with _lock:
        if _drill is not None and _drill is not drill:
            raise NoDrillRunning("another drill is already running in this process")
        _drill = drill


def deactivate() -> None:
    """Forget the running drill (idempotent)."""
    global _drill
    with _lock:
        _drill = None


@contextlib.contextmanager
def active(drill: Drill) -> Iterator[Drill]:
    """Activities act on ``drill`` inside the ``with`` block."""
    activate(drill)
    try:
        yield drill
    finally:
        deactivate()
