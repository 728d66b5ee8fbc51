"""Faults: each one an inject/heal pair, recorded on the drill's timeline."""

from __future__ import annotations

from pytest_drdrill.faults._protocol import Fault
from pytest_drdrill.faults.injector import FaultInjector
from pytest_drdrill.faults.link import LinkCut
from pytest_drdrill.faults.process import Crash, Freeze, Stop

__all__ = ["Crash", "Fault", "FaultInjector", "Freeze", "LinkCut", "Stop"]
