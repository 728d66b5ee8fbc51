"""Hook specifications of pytest-drdrill; implement them in a conftest.py or plugin.

Registered by ``pytest_addhooks`` in :mod:`pytest_drdrill.plugin`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import datetime as dt
    from pathlib import Path

    from pytest_drdrill.backup.pitr import RestoreResult
    from pytest_drdrill.backup.site import BackupSite
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.recovery.orchestrator import Detection
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

    :param service: the service to fail over: ``"postgres"``, ``"redis"`` or ``"s3"``.
        Return ``None`` for a service your implementation leaves to the next one.
    :param topology: the drill's topology (nodes, service endpoint, replication links).
    :param record: the drill record, for phases and notes.
    :param detection: what the monitor saw (checks, errors, when).

    Use in conftest plugins
    =======================

    Any conftest file can implement this hook to test its own failover code; return a
    non-``None`` value (e.g. the promoted node's name) to replace the reference one.
    """


@pytest.hookspec(firstresult=True)
def pytest_drdrill_restore(
    backups: BackupSite, target: dt.datetime, workdir: Path, record: DrillRecord
) -> RestoreResult | None:
    """Restore the database from backups to the state at ``target``, as a new server.

    Called by a restore drill after its incident. The reference implementation restores
    the newest base backup before ``target`` and replays the shipped WAL up to it
    (:func:`pytest_drdrill.backup.pitr.restore_to_time`), in timed phases.

    Stops at the first non-``None`` result. The drill then reads the restored server's
    ledger and judges it against the client's history: writes acknowledged before
    ``target`` must be there, writes started after it must not. Nothing the
    implementation says about itself is taken on trust.

    :param backups: the drill's backups: catalogs in both regions, the key ring.
    :param target: the point in time to restore to (timezone-aware).
    :param workdir: an empty directory the server account can use.
    :param record: the drill record, for notes.
    :returns: a :class:`~pytest_drdrill.backup.pitr.RestoreResult` with the running
        server and the timed phases.

    .. versionadded:: 0.3

    Use in conftest plugins
    =======================

    Implement it to drill your own restore code (pgBackRest, a runbook script); return
    a ``RestoreResult`` naming the server you brought up.
    """


@pytest.hookspec(firstresult=True)
def pytest_drdrill_region_failover(
    topology: Topology, record: DrillRecord, detection: Detection
) -> object | None:
    """Move every service to the DR region after the orchestrator decided the region is lost.

    Called from the orchestrator's thread when the weighted score of its monitors
    (database 3, application 2, network 2, storage 1) stayed at 3 or more for
    ``--drill-failure-threshold`` rounds, at most once per drill. The reference
    implementation fences what is left of the region, promotes the DR PostgreSQL standby
    and Redis replica, switches object storage, repoints every endpoint and validates
    each service, rolling back on failure; each step is a recorded phase.

    Stops at the first non-``None`` result, which is only noted in the report: every
    service's recovery is measured from its own client's history.

    :param topology: the drill's topology.
    :param record: the drill record, for phases (``record.phase(name)``) and notes.
    :param detection: the deciding round: score, unhealthy monitors, when.

    Use in conftest plugins
    =======================

    Any conftest file can implement this hook to run its own region failover runbook
    (DNS switch, orchestration tool) and be measured the same way.

    .. versionadded:: 0.2
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
