"""The ``drdrill*`` fixtures, from the run's settings and backend to the assembled drill.

Each drill's topology, faults, record, backups and measuring clients are fixtures too.
A plugin of its own, loaded with :mod:`pytest_drdrill.plugin` (its ``pytest_plugins``).
Like the hooks, it imports nothing heavy at module level: topology, proxy and report code
are imported inside the fixtures that use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_drdrill import session
from pytest_drdrill.marker import MARKER, redis_failover
from pytest_drdrill.stash import (
    autofailover_settings_key,
    config_key,
    drill_spec_key,
    ha_key,
    notify_key,
    patroni_settings_key,
    repmgr_settings_key,
    reporter_key,
    targets_key,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator
    from pathlib import Path

    from pytest_drdrill.backup.site import BackupSite
    from pytest_drdrill.config import DrillConfig
    from pytest_drdrill.drill import Drill
    from pytest_drdrill.faults import FaultInjector
    from pytest_drdrill.ha._protocol import PostgresHA
    from pytest_drdrill.marker import DrillSpec
    from pytest_drdrill.measure.workload import Workload
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.results import DrillResult
    from pytest_drdrill.schedules import FaultSchedules
    from pytest_drdrill.topology._protocol import Topology
    from pytest_drdrill.topology.backend import Backend


@pytest.fixture(scope="session")
def drdrill_config(pytestconfig: pytest.Config) -> DrillConfig:
    """The validated drill settings of this run.

    .. versionadded:: 0.1
    """
    return pytestconfig.stash[config_key]


@pytest.fixture(scope="session")
def drdrill_backend(
    pytestconfig: pytest.Config,
    drdrill_config: DrillConfig,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Backend]:
    """Session resources of the chosen backend: binaries, template cluster, fault proxy.

    Leftovers of a killed earlier run are removed when it starts.

    .. versionadded:: 0.1
    """
    from pytest_drdrill.assembly import backend_for
    from pytest_drdrill.errors import DrillError
    from pytest_drdrill.topology.sentry import start as start_sentry
    from pytest_drdrill.topology.sentry import stop as stop_sentry

    basedir = tmp_path_factory.mktemp("drdrill")
    # Started first: should this process die by SIGKILL from here on, the sentry removes
    # what it started within a second; a normal end stops the sentry in the finally below.
    sentry = start_sentry(basedir / "sentry.log")
    backend = backend_for(drdrill_config, basedir, run_id=session.run_id(pytestconfig))
    failure: str | None = None
    try:
        backend.start()
    except DrillError as exc:
        backend.close()
        failure = _with_notes(f"drill backend {backend.name!r} could not start: {exc}", exc)
    if failure is not None:  # outside the handler: no "during handling of…" chain
        stop_sentry(sentry)
        pytest.fail(failure, pytrace=False)
    reporter = pytestconfig.stash.get(reporter_key, None)
    if reporter is not None:
        reporter.versions.update(backend.versions)
        reporter.reaped.extend(backend.reaped)
    try:
        yield backend
    finally:
        backend.close()
        stop_sentry(sentry)


@pytest.fixture
def drdrill_repeat(request: pytest.FixtureRequest) -> int:
    """Which repetition of the drill this is (1 unless ``--drill-repeat`` is above 1).

    .. versionadded:: 0.3
    """
    return int(getattr(request, "param", 1))


def _on_result(request: pytest.FixtureRequest) -> Callable[[DrillResult], None]:
    """Where a drill's result goes: the run's reports, ``--junitxml``, the observer hook."""
    reporter = request.config.stash.get(reporter_key, None)

    def on_result(result: DrillResult) -> None:
        if reporter is not None:
            reporter.add(result)
        _junitxml_properties(request, result)
        request.config.hook.pytest_drdrill_measured(result=result)

    return on_result


def _junitxml_properties(request: pytest.FixtureRequest, result: Any) -> None:
    """Put the drill's RTO/RPO into pytest's own ``--junitxml`` report, when there is one.

    Suite-level properties named ``drdrill[<node id>].<name>`` are valid in every JUnit
    family; per-testcase properties only in ``xunit1``/``legacy`` (the ``xunit2`` schema
    has none), so they are added there only.
    """
    from _pytest.junitxml import xml_key

    xml = request.config.stash.get(xml_key, None)
    if xml is None:
        return
    from pytest_drdrill.reporting.junit import drill_properties

    properties = drill_properties(result)
    for name, value in properties.items():
        xml.add_global_property(f"drdrill[{request.node.nodeid}].{name}", value)
    if xml.family in ("xunit1", "legacy"):
        request.node.user_properties.extend(properties.items())


def _with_notes(message: str, exc: BaseException) -> str:
    notes = getattr(exc, "__notes__", [])
    return "\n".join([message, *notes])


def _spec(request: pytest.FixtureRequest) -> DrillSpec:
    spec = request.node.stash.get(drill_spec_key, None)
    if spec is None:
        raise pytest.UsageError(
            f"{request.node.nodeid} uses a drdrill fixture but has no "
            f"@pytest.mark.{MARKER}(...) marker; add one naming its cadence and tier, e.g. "
            f"@pytest.mark.{MARKER}(cadence='monthly', tier='tier_1_critical', "
            f"scenario='primary-crash')"
        )
    return spec


@pytest.fixture
def drdrill_topology(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Topology]:
    """A fresh two-region topology: PostgreSQL, Redis and object storage behind endpoints.

    Everything it started is removed at teardown, also when the test fails.

    .. versionadded:: 0.1
    """
    from pytest_drdrill.errors import TopologyError

    spec = _spec(request)  # an unmarked test must not start servers: it would never be skipped
    drdrill_backend: Backend = request.getfixturevalue("drdrill_backend")
    failure: str | None = None
    try:
        drdrill_config: DrillConfig = request.getfixturevalue("drdrill_config")
        ha = _postgres_ha(request)
        topology = ha.topology(
            drdrill_backend,
            tmp_path / "topology",
            sentinel=redis_failover(spec, drdrill_config) == "sentinel",
        )
    except TopologyError as exc:
        failure = _with_notes(f"drill topology could not start: {exc}", exc)
    if failure is not None:  # outside the handler: no "during handling of…" chain
        pytest.fail(failure, pytrace=False)
    try:
        yield topology
    finally:
        topology.close()


def _postgres_ha(request: pytest.FixtureRequest) -> PostgresHA:
    """The HA stack of this drill, made once per test and kept in its stash."""
    ha = request.node.stash.get(ha_key, None)
    if ha is None:
        from pytest_drdrill import assembly

        spec = _spec(request)
        ha = assembly.postgres_ha(
            request.config.stash[config_key],
            forced=spec.postgres_failover,
            settings=request.config.stash.get(patroni_settings_key, None),
            over=spec.patroni,
            repmgr_settings=request.config.stash.get(repmgr_settings_key, None),
            autofailover_settings=request.config.stash.get(autofailover_settings_key, None),
        )
        request.node.stash[ha_key] = ha
        reporter = request.config.stash.get(reporter_key, None)
        if reporter is not None:
            reporter.versions.update(ha.versions())
    return ha


@pytest.fixture
def drdrill_record(request: pytest.FixtureRequest, drdrill_config: DrillConfig) -> DrillRecord:
    """The record of this drill: faults, recovery phases, the workload's history.

    .. versionadded:: 0.1
    """
    from pytest_drdrill.record import DrillRecord

    spec = _spec(request)
    record = DrillRecord(
        request.node.nodeid,
        scenario=spec.scenario,
        cadence=spec.cadence,
        target=spec.target,
        # The backend's own name: a conftest may hand the drill its own backend (its
        # containers adopted with pytest_drdrill.topology.adopted).
        backend=request.getfixturevalue("drdrill_backend").name,
        negative_control=spec.negative_control,
    )
    reporter = request.config.stash.get(reporter_key, None)
    if reporter is not None:
        reporter.watch(record)
    return record


@pytest.fixture
def drdrill_faults(
    request: pytest.FixtureRequest, drdrill_record: DrillRecord
) -> Iterator[FaultInjector]:
    """Inject faults (crash, freeze, partition, toxics, region outage…); all healed at teardown.

    .. versionadded:: 0.1
    """
    from pytest_drdrill.faults import FaultInjector
    from pytest_drdrill.faults.guard import destructive_gate

    injector = FaultInjector(
        drdrill_record, request.config.hook, request.getfixturevalue("drdrill_topology")
    )
    drill_config = request.config.stash[config_key]
    injector.guard = destructive_gate(
        request.getfixturevalue("drdrill_backend").name, allowed=drill_config.allow_destructive
    )
    try:
        yield injector
    finally:
        injector.heal()


@pytest.fixture
def drdrill_backups(
    request: pytest.FixtureRequest, drdrill_topology: Topology, drdrill_record: DrillRecord
) -> Iterator[BackupSite]:
    """Backups of this drill's topology: a catalog in each region, WAL shipped as it is archived.

    Keys come from ``--drill-backup-key-file`` / ``drill_backup_key_file`` or the
    ``DRDRILL_BACKUP_KEY`` environment variable; without either the run uses a throwaway
    key and the drill's notes say so.

    .. versionadded:: 0.3
    """
    from pytest_drdrill.backup.site import BackupSite

    backend: Backend = request.getfixturevalue("drdrill_backend")
    assert backend.dataroot is not None
    workdir = backend.dataroot / f"backups-{drdrill_topology.id}"
    tool = request.config.stash[config_key].backup_tool
    if tool != "builtin":
        # The team's backup tool (--drill-backup-tool), with its own encryption.
        from pytest_drdrill.backup.tools import make_tool

        backups = make_tool(tool).open(drdrill_topology, workdir, drdrill_record)
        try:
            yield backups  # type: ignore[misc]
        finally:
            backups.close()
        return
    keys, throwaway = session.backup_keys(request.config)
    if throwaway:
        drdrill_record.note(
            "backups encrypted with a throwaway key made for this run (no DRDRILL_BACKUP_KEY "
            "or --drill-backup-key-file given)"
        )
    site = BackupSite(drdrill_topology, keys, workdir).start()
    try:
        yield site
    finally:
        site.close()


@pytest.fixture
def drdrill_workloads(
    drdrill_topology: Topology, drdrill_record: DrillRecord
) -> Iterator[dict[str, Workload]]:
    """One measuring client per service, each writing and probing through its endpoint.

    .. versionadded:: 0.2
    """
    from pytest_drdrill.assembly import workloads as make_workloads

    workloads = make_workloads(drdrill_topology, drdrill_record)
    try:
        yield workloads
    finally:
        for workload in workloads.values():
            if workload.is_running:
                workload.stop()


@pytest.fixture
def drdrill_workload(drdrill_workloads: dict[str, Workload]) -> Workload:
    """The PostgreSQL measuring client: writes and probes through the service endpoint.

    .. versionadded:: 0.1
    """
    return drdrill_workloads["postgres"]


@pytest.fixture
def drdrill_schedules(
    request: pytest.FixtureRequest, drdrill_config: DrillConfig, tmp_path: Path
) -> FaultSchedules:
    """Hypothesis-drawn fault schedules, each against a fresh topology, invariants checked.

    .. versionadded:: 0.4
    """
    from pytest_drdrill.schedules import schedule_drill

    spec = _spec(request)  # an unmarked test must not start servers: it would never be skipped
    record: DrillRecord = request.getfixturevalue("drdrill_record")
    backend: Backend = request.getfixturevalue("drdrill_backend")
    return schedule_drill(
        request.config, drdrill_config, backend, record, spec.observe, tmp_path, _on_result(request)
    )


@pytest.fixture
def drdrill(
    request: pytest.FixtureRequest,
    drdrill_config: DrillConfig,
    drdrill_topology: Topology,
    drdrill_faults: FaultInjector,
    drdrill_workloads: dict[str, Workload],
    drdrill_record: DrillRecord,
) -> Generator[Drill, None, None]:
    """The whole drill: topology, faults, workload, monitor with failover, record, verdict.

    .. versionadded:: 0.1
    """
    from pytest_drdrill import assembly

    spec = _spec(request)
    hook = request.config.hook
    notifier = assembly.notifier(
        request.config.stash.get(notify_key, None),
        run_id=session.run_id(request.config) or "run",
        scenario=spec.scenario,
        target=spec.target,
    )
    drill = assembly.build_drill(
        topology=drdrill_topology,
        faults=drdrill_faults,
        workloads=drdrill_workloads,
        record=drdrill_record,
        hook=hook,
        monitor=assembly.monitor_settings(drdrill_config),
        observe=spec.observe or drdrill_config.observe,
        on_result=_on_result(request),
        targets=request.config.stash.get(targets_key, None),
        service=spec.service,
        sentinel=redis_failover(spec, drdrill_config) == "sentinel",
        notifier=notifier,
        restore_hook=hook.pytest_drdrill_restore,
        ha=_postgres_ha(request),
        guardrails=spec.guardrails,
    )
    try:
        yield drill
    finally:
        drill.stop()
        if notifier is not None:
            notifier.close(timeout=10.0)
        if drill.result is None and drdrill_record.faults:
            # The test ended before conclude(): keep what was measured in the report anyway.
            try:
                drill.measure()
            except Exception as exc:  # never hide the test's own error
                drdrill_record.note(f"measurement at teardown failed: {exc}")
