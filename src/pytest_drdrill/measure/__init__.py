"""Recording what a drill's client saw, and measuring RTO and RPO from that record.

.. versionadded:: 0.1
"""

from __future__ import annotations

from pytest_drdrill.measure.analysis import (
    measure_rpo,
    measure_rto,
)
from pytest_drdrill.measure.history import History, Outcome, ProbeOp, WriteOp

__all__ = [
    "History",
    "Outcome",
    "ProbeOp",
    "WriteOp",
    "measure_rpo",
    "measure_rto",
]
