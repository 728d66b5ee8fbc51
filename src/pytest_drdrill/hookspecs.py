"""Hook specifications of pytest-drdrill; implement them in a conftest.py or plugin.

Registered by ``pytest_addhooks`` in :mod:`pytest_drdrill.plugin`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.recovery.monitor import Detection
    from pytest_drdrill.results import DrillResult, FaultRecord
    from pytest_drdrill.topology._protocol import Topology


@pytest.hookspec(firstresult=True)
def pytest_drdrill_failover(
    service: str, topology: Topology, record: DrillRecord, detection: Detection
) -> object | None:
    """Fail a service over after the monitor decided its primary is down.

    Called from the monitor's thread, once per decision, while the drill's workload keeps
    writing through the service endpoint. The reference implementation fences the old
    primary, promotes the most caught-up standby, repoints the endpoint and validates;
    time each step with ``record.phase(name)`` so reports show it.

    Stops at the first non-``None`` result. What the implementation returns is only
    noted in the report: the drill measures recovery from the client's history, never
    from this result. Raise :class:`pytest_drdrill.FailoverFailed` to report a failed
    failover.

    :param service: the service to fail over; ``"postgres"`` in this release.
    :param topology: the drill's topology (nodes, service endpoint, replication links).
    :param record: the drill record, for phases and notes.
    :param detection: what the monitor saw (checks, errors, when).

    Use in conftest plugins
    =======================

    Any conftest file can implement this hook to test its own failover code; return a
    non-``None`` value (e.g. the promoted node's name) to replace the reference one.
    """


def pytest_drdrill_fault_injected(record: DrillRecord, fault: FaultRecord) -> None:
    """Called right after a fault was injected.

    :param record: the drill record.
    :param fault: the fault, with its injection time.

    Use in conftest plugins
    =======================

    Any conftest file can implement this hook, e.g. to page a test channel.
    """


def pytest_drdrill_fault_healed(record: DrillRecord, fault: FaultRecord) -> None:
    """Called right after a fault was healed (also at teardown).

    :param record: the drill record.
    :param fault: the fault, with its injection and healing times.

    Use in conftest plugins
    =======================

    Any conftest file can implement this hook.
    """


def pytest_drdrill_measured(result: DrillResult) -> None:
    """Called when a drill's RTO and RPO have been measured and judged.

    :param result: measurements, phases, verdict and reason.

    Use in conftest plugins
    =======================

    Any conftest file can implement this hook, e.g. to push figures to a dashboard.
    """
