"""A drill outside pytest, for ``chaos run``: the parts the pytest fixtures would provide.

The local backend, one two-region topology, a measuring client per service, the fault
injector and the reference orchestrator with the reference failover, wired as the
``drdrill`` fixture wires them, with the options' defaults. Hooks go through a plugin
manager holding the reference failover, as under pytest.

.. versionadded:: 0.4
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_drdrill.errors import DrillError

if TYPE_CHECKING:
    from pytest_drdrill.chaostoolkit.experiment import ExperimentDrill
    from pytest_drdrill.drill import Drill
    from pytest_drdrill.results import DrillResult, Target
    from pytest_drdrill.targets import Targets
    from pytest_drdrill.topology.local import LocalBackend, LocalTopology

logger = logging.getLogger(__name__)

#: ``--drill-observe``'s default: how long a drill waits for recovery.
DEFAULT_OBSERVE = "60s"


def load_target(
    settings: ExperimentDrill, targets_file: Path | None
) -> tuple[Targets | None, Target | None]:
    """The targets file and the drill's target in it; ``(None, None)`` without a file.

    :raises DrillError: when the file is invalid or does not define the drill's target.
    """
    if targets_file is None:
        return None, None
    from pytest_drdrill.targets import TargetSelectionError, UnknownTarget, load_targets

    targets = load_targets(targets_file)
    try:
        target = targets.resolve(
            tier=settings.tier,
            function=settings.function,
            data=settings.data,
            max_lost_writes=settings.max_lost_writes,
        )
    except (UnknownTarget, TargetSelectionError) as exc:
        raise DrillError(f"extensions[name=drdrill]: {exc}") from None
    return targets, target


class StandaloneDrill:
    """Everything one drill needs, started and stopped without pytest.

    :param settings: the experiment's ``drdrill`` extension.
    :param targets_file: the targets file to judge against; ``None`` to measure only.
    :param name: the drill's name in results, e.g. the experiment's title.

    .. versionadded:: 0.4
    """

    def __init__(self, settings: ExperimentDrill, *, targets_file: Path | None, name: str) -> None:
        self.settings = settings
        self.targets_file = targets_file
        self.name = name
        self.drill: Drill | None = None
        self.result: DrillResult | None = None
        self._workdir: Path | None = None
        self._backend: LocalBackend | None = None
        self._topology: LocalTopology | None = None

    def start(self) -> Drill:
        """Start servers, clients and orchestrator; return once the steady state holds.

        Whatever started is stopped again when a later step fails.

        :raises DrillError: when the targets, the topology or the steady state fail.
        """
        try:
            return self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> Drill:
        import pytest

        from pytest_drdrill import hookspecs
        from pytest_drdrill.drill import Drill
        from pytest_drdrill.durations import parse_duration
        from pytest_drdrill.faults import FaultInjector
        from pytest_drdrill.record import DrillRecord
        from pytest_drdrill.recovery.orchestrator import MonitorSettings, hook_relays
        from pytest_drdrill.recovery.reference import ReferenceFailover
        from pytest_drdrill.topology.local import LocalBackend

        settings = self.settings
        targets, target = load_target(settings, self.targets_file)
        # pytest's manager, not a bare pluggy one: the observer specs are undecorated
        # ``pytest_*`` functions, which only pytest's manager takes as specs.
        plugins = pytest.PytestPluginManager()
        plugins.add_hookspecs(hookspecs)
        plugins.register(ReferenceFailover(), "drdrill-reference-failover")
        hook = plugins.hook

        # Short: PostgreSQL's socket paths under it must stay below ~107 characters.
        self._workdir = Path(tempfile.mkdtemp(prefix="chaos-drdrill-"))
        self._backend = LocalBackend(self._workdir).start()
        self._topology = topology = self._backend.topology(self._workdir / "topology")
        record = DrillRecord(
            self.name,
            scenario=settings.scenario,
            cadence=settings.cadence,
            target=target,
            backend=self._backend.name,
            negative_control=settings.negative_control,
        )
        faults = FaultInjector(record, hook, topology)

        failover, region_failover = hook_relays(hook, topology, record)
        self.drill = drill = Drill(
            topology=topology,
            faults=faults,
            workload=workloads(topology, record),
            record=record,
            monitor_settings=MonitorSettings(),
            failover=failover,
            region_failover=region_failover,
            observe=parse_duration(settings.observe or DEFAULT_OBSERVE),
            on_result=self._keep,
            targets=targets,
            service=settings.service,
        )
        drill.start()
        return drill

    def _keep(self, result: DrillResult) -> None:
        self.result = result

    def conclude(self) -> DrillResult | None:
        """Measure and judge the drill; ``None`` when no fault was injected. Never raises."""
        drill = self.drill
        if drill is None or not drill.record.faults:
            return None
        return drill.measure()

    def close(self) -> None:
        """Stop and remove everything :meth:`start` started (idempotent); never raises."""
        steps: list[tuple[str, Any]] = []
        if self.drill is not None:
            steps += [("the drill", self.drill.stop), ("healing", self.drill.faults.heal)]
        if self._topology is not None:
            steps.append(("the topology", self._topology.close))
        if self._backend is not None:
            steps.append(("the backend", self._backend.close))
        for what, step in steps:
            try:
                step()
            except Exception:  # cleanup goes on: everything else must still stop
                logger.exception("stopping %s failed", what)
        self.drill = self._topology = self._backend = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


def workloads(topology: LocalTopology, record: Any) -> dict[str, Any]:
    """One measuring client per service, writing through its endpoint (as the fixture's)."""
    from pytest_drdrill.measure._protocol import LedgerClient
    from pytest_drdrill.measure.redis import RedisLedger
    from pytest_drdrill.measure.s3 import S3Ledger
    from pytest_drdrill.measure.workload import Workload

    clients: dict[str, LedgerClient | str] = {
        "postgres": topology.pg_endpoint.dsn(app="drdrill-workload"),
        "redis": RedisLedger(topology.redis_endpoint.url()),
        "s3": S3Ledger(topology.s3_endpoint.endpoint_url, topology.bucket),
    }
    return {
        service: Workload(
            client,
            record.history_of(service),
            # The fixture's pace: moto lists a bucket in time proportional to its size.
            write_interval=0.05 if service == "s3" else 0.01,
        )
        for service, client in clients.items()
    }
