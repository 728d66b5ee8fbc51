"""Faults: each one an inject/heal pair, recorded on the drill's timeline."""

from __future__ import annotations

from pytest_drdrill.faults._protocol import Fault
from pytest_drdrill.faults.data import DropTable
from pytest_drdrill.faults.injector import FaultInjector
from pytest_drdrill.faults.network import LinkCut, Partition, Toxic
from pytest_drdrill.faults.process import Crash, Freeze, Stop
from pytest_drdrill.faults.region import RegionOutage, StorageLoss

__all__ = [
    "Crash",
    "DropTable",
    "Fault",
    "FaultInjector",
    "Freeze",
    "LinkCut",
    "Partition",
    "RegionOutage",
    "Stop",
    "StorageLoss",
    "Toxic",
]
