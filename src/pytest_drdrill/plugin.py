"""pytest entry point of pytest-drdrill (``pytest11``: ``drdrill``).

Imports nothing heavy at module level: a plain ``pytest`` run without ``--drill`` must
stay fast, so topology, proxy and report code are imported inside the fixtures and hooks
that use them.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_drdrill import hookspecs
from pytest_drdrill.config import DrillConfig, add_options, backend_name, get_config
from pytest_drdrill.marker import MARKER, MARKER_HELP, DrillSpec, skip_reason, spec_for
from pytest_drdrill.stash import (
    backup_keys_key,
    config_key,
    drill_spec_key,
    notify_key,
    reporter_key,
    targets_key,
)

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

    from pytest_drdrill.backup.keys import KeyRing
    from pytest_drdrill.backup.site import BackupSite
    from pytest_drdrill.drill import Drill
    from pytest_drdrill.faults import FaultInjector
    from pytest_drdrill.measure.workload import Workload
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.schedules import FaultSchedules
    from pytest_drdrill.targets import Targets
    from pytest_drdrill.topology._protocol import Topology
    from pytest_drdrill.topology.backend import Backend

# --- options, hooks, configuration ------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--drill`` and the ``--drill-*`` flags with their ini keys."""
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the ``pytest_drdrill_*`` hook specifications."""
    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    """Validate options and targets, register the marker, the reference failover, the reporter."""
    config.addinivalue_line("markers", MARKER_HELP)
    if config.getoption("help", False):
        return  # --help must work even with a bad option value, to show the valid ones
    drill_config = get_config(config)
    config.stash[config_key] = drill_config
    if drill_config.cadence is None:
        return
    if drill_config.backend == "auto":
        from pytest_drdrill.topology.backend import resolve_auto

        choice = resolve_auto(dict(drill_config.docker_images))
        drill_config = config.stash[config_key] = dataclasses.replace(
            drill_config, backend_choice=choice.name, backend_reason=choice.reason
        )
    config.stash[targets_key] = _load_targets(drill_config)
    if drill_config.backup_key_file is not None or os.environ.get("DRDRILL_BACKUP_KEY"):
        _backup_keys(config)  # a configured key must be usable before any server starts

    from pytest_drdrill.recovery.failover import ReferenceFailover
    from pytest_drdrill.reporting.collector import DrillReporter

    config.pluginmanager.register(ReferenceFailover(), "drdrill-reference-failover")
    from pytest_drdrill.backup.pitr import ReferenceRestore

    config.pluginmanager.register(ReferenceRestore(), "drdrill-reference-restore")
    if not hasattr(config, "workerinput"):
        reporter = DrillReporter(config, drill_config, config.stash[targets_key])
        config.stash[reporter_key] = reporter
        config.pluginmanager.register(reporter, "drdrill-reporter")
    _notify_setup(config, drill_config)


def _load_targets(drill_config: DrillConfig) -> Targets:
    from pytest_drdrill.errors import InvalidTargets
    from pytest_drdrill.targets import load_targets

    path = drill_config.targets
    if not path.is_file():
        raise pytest.UsageError(
            f"drill targets file {path} does not exist. Create it (copy fixtures/targets.yaml "
            f"from pytest-drdrill's repository) or point --drill-targets / ini drill_targets "
            f"at yours."
        )
    try:
        return load_targets(path)
    except InvalidTargets as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    """Unregister the reporter."""
    reporter = config.stash.get(reporter_key, None)
    if reporter is not None:
        del config.stash[reporter_key]
        config.pluginmanager.unregister(reporter)


# --- collection: which drills run ---------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect Chaos Toolkit experiments (``experiment-*.json|yaml|yml``) as drills."""
    if not file_path.name.startswith("experiment-"):
        return None  # chaoslib is imported only for experiment files
    from pytest_drdrill.chaostoolkit.collect import pytest_collect_file as collect_experiment

    return collect_experiment(file_path, parent)


_REPEAT_FIXTURE = "drdrill_repeat"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each drill ``--drill-repeat`` times, with ids ``r1``, ``r2``… for RTO p50/p95."""
    drill_config = metafunc.config.stash.get(config_key, None)
    if drill_config is None or drill_config.repeat < 2:
        return
    if metafunc.definition.get_closest_marker(MARKER) is None:
        return
    metafunc.fixturenames.append(_REPEAT_FIXTURE)
    metafunc.parametrize(
        _REPEAT_FIXTURE,
        range(1, drill_config.repeat + 1),
        indirect=True,
        ids=lambda n: f"r{n}",
    )


@pytest.fixture
def drdrill_repeat(request: pytest.FixtureRequest) -> int:
    """Which repetition of the drill this is (1 unless ``--drill-repeat`` is above 1).

    .. versionadded:: 0.3
    """
    return int(getattr(request, "param", 1))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip drills outside the selected cadence, and negative controls when asked to."""
    drill_config = config.stash[config_key]
    for item in items:
        if item.get_closest_marker(MARKER) is None:
            continue
        spec = spec_for(item, config.stash.get(targets_key, None))
        item.stash[drill_spec_key] = spec
        reason = skip_reason(spec, drill_config)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


# --- fixtures --------------------------------------------------------------------------------


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
    from pytest_drdrill.errors import DrillError
    from pytest_drdrill.topology.backend import make_backend

    reporter = pytestconfig.stash.get(reporter_key, None)
    backend = make_backend(
        backend_name(drdrill_config),
        tmp_path_factory.mktemp("drdrill"),
        run_id=reporter.run_id if reporter is not None else None,
        pg_bin=drdrill_config.pg_bin,
        run_as=drdrill_config.run_as,
        redis_bin=drdrill_config.redis_bin,
        images=dict(drdrill_config.docker_images),
        stack_file=drdrill_config.stack_file,
    )
    failure: str | None = None
    try:
        backend.start()
    except DrillError as exc:
        backend.close()
        failure = _with_notes(f"drill backend {backend.name!r} could not start: {exc}", exc)
    if failure is not None:  # outside the handler: no "during handling of…" chain
        pytest.fail(failure, pytrace=False)
    if reporter is not None:
        reporter.versions.update(backend.versions)
        reporter.reaped.extend(backend.reaped)
    try:
        yield backend
    finally:
        backend.close()


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say which backend drills run on, and why when ``auto`` chose it."""
    drill_config = config.stash.get(config_key, None)
    if drill_config is None or drill_config.cadence is None:
        return None
    reason = f" ({drill_config.backend_reason})" if drill_config.backend_reason else ""
    return f"drdrill: backend {backend_name(drill_config)}{reason}"


def _backup_keys(config: pytest.Config) -> tuple[KeyRing, bool]:
    """The run's backup key ring, read once; an unusable configured key is a usage error."""
    if backup_keys_key in config.stash:
        return config.stash[backup_keys_key]
    from pytest_drdrill.backup.errors import InvalidKey
    from pytest_drdrill.backup.keys import drill_keyring

    try:
        keys = drill_keyring(config.stash[config_key].backup_key_file)
    except InvalidKey as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[backup_keys_key] = keys
    return keys


def _notify_setup(config: pytest.Config, drill_config: DrillConfig) -> None:
    """Check the notification sinks and templates once, before any drill starts."""
    specs = drill_config.notify
    if specs == ("none",):
        return
    if not specs:
        reporter = config.stash.get(reporter_key, None)
        if reporter is None:
            return  # an xdist worker: its controller writes the reports
        specs = (f"file:{drill_config.report_dir / reporter.run_id / 'notifications.jsonl'}",)
    from pytest_drdrill.notify import (
        CommunicationPlan,
        SinkSpecError,
        TemplateError,
        load_templates,
        parse_sink,
    )

    try:
        sinks = [parse_sink(spec) for spec in specs]
        templates = load_templates(drill_config.notify_templates)
    except (SinkSpecError, TemplateError) as exc:
        raise pytest.UsageError(str(exc)) from None
    plan = CommunicationPlan.from_targets(config.stash[targets_key])
    config.stash[notify_key] = (plan, sinks, templates)


def _notifier(request: pytest.FixtureRequest, record: DrillRecord, spec: DrillSpec) -> Any:
    """A notifier for one drill when ``--drill-notify`` names sinks, else ``None``."""
    setup = request.config.stash.get(notify_key, None)
    if setup is None:
        return None
    from pytest_drdrill.notify import Notifier, auto_approve, never_approve

    plan, sinks, templates = setup
    drill_config = request.config.stash[config_key]
    reporter = request.config.stash.get(reporter_key, None)
    run_id = reporter.run_id if reporter is not None else "run"
    return Notifier(
        plan,
        sinks,
        incident_id=f"DRILL-{run_id}-{spec.scenario}",
        approver=auto_approve if drill_config.notify_approval == "auto" else never_approve,
        templates=templates,
        estimated_recovery=None if spec.target is None else spec.target.rto_target,
    )


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

    _spec(request)  # an unmarked test must not start servers: it would never be skipped
    drdrill_backend: Backend = request.getfixturevalue("drdrill_backend")
    failure: str | None = None
    try:
        drdrill_config: DrillConfig = request.getfixturevalue("drdrill_config")
        topology = drdrill_backend.topology(
            tmp_path / "topology", sentinel=drdrill_config.redis_failover == "sentinel"
        )
    except TopologyError as exc:
        failure = _with_notes(f"drill topology could not start: {exc}", exc)
    if failure is not None:  # outside the handler: no "during handling of…" chain
        pytest.fail(failure, pytrace=False)
    try:
        yield topology
    finally:
        topology.close()


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
        backend=backend_name(drdrill_config),
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

    injector = FaultInjector(
        drdrill_record, request.config.hook, request.getfixturevalue("drdrill_topology")
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

    keys, throwaway = _backup_keys(request.config)
    if throwaway:
        drdrill_record.note(
            "backups encrypted with a throwaway key made for this run (no DRDRILL_BACKUP_KEY "
            "or --drill-backup-key-file given)"
        )
    backend: Backend = request.getfixturevalue("drdrill_backend")
    assert backend.dataroot is not None
    workdir = backend.dataroot / f"backups-{drdrill_topology.id}"
    # BackupSite reads the WAL spool, a capability the Topology protocol does not declare
    # (yet): every backend's topology has the attribute, None where WAL is not archived.
    site = BackupSite(drdrill_topology, keys, workdir).start()  # type: ignore[arg-type]
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
    from pytest_drdrill.measure._protocol import LedgerClient
    from pytest_drdrill.measure.redis import RedisLedger
    from pytest_drdrill.measure.s3 import S3Ledger
    from pytest_drdrill.measure.workload import Workload

    topo = drdrill_topology
    clients: dict[str, LedgerClient | str] = {
        "postgres": topo.pg_endpoint.dsn(app="drdrill-workload"),
        "redis": RedisLedger(topo.redis_endpoint.url()),
        "s3": S3Ledger(topo.s3_endpoint.endpoint_url, topo.bucket),
    }
    workloads = {
        service: Workload(
            client,
            drdrill_record.history_of(service),
            # moto lists a bucket in time proportional to its size, and the replicator
            # lists every cycle: a slower object ledger keeps lag about the fault.
            write_interval=0.05 if service == "s3" else 0.01,
        )
        for service, client in clients.items()
    }
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
    reporter = request.config.stash.get(reporter_key, None)

    def on_result(result: Any) -> None:
        if reporter is not None:
            reporter.add(result)
        _junitxml_properties(request, result)
        request.config.hook.pytest_drdrill_measured(result=result)

    return schedule_drill(
        request.config, drdrill_config, backend, record, spec.observe, tmp_path, on_result
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
    from pytest_drdrill.drill import Drill
    from pytest_drdrill.recovery.orchestrator import MonitorSettings, hook_relays

    spec = _spec(request)
    hook = request.config.hook
    reporter = request.config.stash.get(reporter_key, None)

    failover, region_failover = hook_relays(hook, drdrill_topology, drdrill_record)
    sentinel = None
    services: tuple[str, ...] = ("postgres", "redis", "s3")
    if drdrill_config.redis_failover == "sentinel":
        from pytest_drdrill.recovery.services import follow_sentinel

        sentinel = follow_sentinel(drdrill_topology, drdrill_record)
        services = ("postgres", "s3")  # Sentinel, not the orchestrator, fails Redis over

    def on_result(result: Any) -> None:
        if reporter is not None:
            reporter.add(result)
        _junitxml_properties(request, result)
        hook.pytest_drdrill_measured(result=result)

    notifier = _notifier(request, drdrill_record, spec)
    drill = Drill(
        topology=drdrill_topology,
        faults=drdrill_faults,
        workload=drdrill_workloads,
        record=drdrill_record,
        monitor_settings=MonitorSettings(
            interval=drdrill_config.health_interval,
            timeout=drdrill_config.health_timeout,
            threshold=drdrill_config.failure_threshold,
            services=services,
        ),
        failover=failover,
        region_failover=region_failover,
        observe=spec.observe or drdrill_config.observe,
        on_result=on_result,
        targets=request.config.stash.get(targets_key, None),
        service=spec.service,
        sentinel=sentinel,
        notifier=notifier,
        restore_hook=hook.pytest_drdrill_restore,
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
