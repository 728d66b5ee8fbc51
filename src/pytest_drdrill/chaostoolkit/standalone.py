"""A drill outside pytest, for ``chaos run``: the parts the pytest fixtures would provide.

The local backend, one two-region topology, a measuring client per service, the fault
injector and the reference orchestrator with the reference failover, wired by
:mod:`pytest_drdrill.assembly` as for the ``drdrill`` fixture, with the options'
defaults. Hooks go through a plugin manager holding the reference failover, as under
pytest.

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
    from pytest_drdrill.topology._protocol import Topology
    from pytest_drdrill.topology.backend import Backend

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
        self._backend: Backend | None = None
        self._topology: Topology | None = None

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

        from pytest_drdrill import assembly, hookspecs
        from pytest_drdrill.durations import parse_duration
        from pytest_drdrill.faults import FaultInjector
        from pytest_drdrill.record import DrillRecord
        from pytest_drdrill.recovery.orchestrator import MonitorSettings
        from pytest_drdrill.recovery.reference import ReferenceFailover
        from pytest_drdrill.topology.backend import make_backend

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
        self._backend = make_backend("local", self._workdir).start()
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

        self.drill = drill = assembly.build_drill(
            topology=topology,
            faults=faults,
            workloads=assembly.workloads(topology, record),
            record=record,
            hook=hook,
            monitor=MonitorSettings(),
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
