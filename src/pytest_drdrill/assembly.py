"""Putting a drill together: the one place its parts are chosen and wired.

The pytest fixtures, the Chaos Toolkit control (a drill outside pytest) and the schedule
drill all build drills from the same parts: the backend the options name, a measuring
client per service at its pace, the monitor's settings, the failover hooks bound to the
drill, Redis Sentinel followed when it decides Redis failovers, the communication-plan
notifier. Each is made here, so the three cannot drift apart and a new part (an HA
stack, a backup tool) is wired once.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from pytest_drdrill.config import backend_name
from pytest_drdrill.drill import Drill
from pytest_drdrill.measure.redis import RedisLedger
from pytest_drdrill.measure.s3 import S3Ledger
from pytest_drdrill.measure.workload import Workload
from pytest_drdrill.recovery.orchestrator import MonitorSettings, Orchestrator, hook_relays
from pytest_drdrill.recovery.services import follow_sentinel
from pytest_drdrill.topology import backend as backends

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from pytest_drdrill.config import DrillConfig
    from pytest_drdrill.faults import FaultInjector
    from pytest_drdrill.guardrails import Guardrails
    from pytest_drdrill.ha._protocol import PostgresHA
    from pytest_drdrill.measure._protocol import LedgerClient
    from pytest_drdrill.notify import CommunicationPlan, Notifier, Sink, Template, TemplateName
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.results import DrillResult, Target
    from pytest_drdrill.targets import Targets
    from pytest_drdrill.topology._protocol import Topology
    from pytest_drdrill.topology.autofailover_settings import AutofailoverSettings
    from pytest_drdrill.topology.backend import Backend
    from pytest_drdrill.topology.patroni_settings import PatroniSettings
    from pytest_drdrill.topology.repmgr_settings import RepmgrSettings

#: Pause between one measuring client's acknowledged writes, per service. moto lists a
#: bucket in time proportional to its size, and the object replicator lists it every
#: cycle: a slower object ledger keeps its replication lag about the fault, not the load.
WRITE_INTERVALS: Mapping[str, float] = {"postgres": 0.01, "redis": 0.01, "s3": 0.05}


# --- backend ---------------------------------------------------------------------------------


def backend_for(drill_config: DrillConfig, basedir: Path, *, run_id: str | None) -> Backend:
    """The session backend the options name, not yet started.

    :param basedir: a session temp directory for logs.
    :param run_id: the run's id (labels Docker containers); ``None`` draws one.
    """
    return backends.make_backend(
        backend_name(drill_config),
        basedir,
        run_id=run_id,
        pg_bin=drill_config.pg_bin,
        run_as=drill_config.run_as,
        redis_bin=drill_config.redis_bin,
        images=dict(drill_config.docker_images),
        stack_file=drill_config.stack_file,
        sizes=drill_config.sizes,
    )


# --- the HA stack ----------------------------------------------------------------------------


def postgres_ha(
    drill_config: DrillConfig,
    *,
    forced: str | None = None,
    settings: PatroniSettings | None = None,
    over: Mapping[str, object] | None = None,
    repmgr_settings: RepmgrSettings | None = None,
    autofailover_settings: AutofailoverSettings | None = None,
) -> PostgresHA:
    """The HA stack that runs one drill's PostgreSQL failover.

    :param forced: the drill's own ``postgres_failover=``; default the run's option.
    :param settings: the run's ``--drill-patroni-config``, already checked.
    :param over: the drill's own ``patroni=`` settings, over ``settings``.
    :param repmgr_settings: the run's ``--drill-repmgr-config``, already checked.
    :param autofailover_settings: the run's ``--drill-pg-auto-failover-config``, checked.
    """
    from pytest_drdrill.ha import make_provider

    name = forced or drill_config.postgres_failover
    if name == "patroni" and over:
        from pytest_drdrill.topology.patroni_settings import combine

        settings = combine(settings, over, source="the drill's patroni= marker key")
    return make_provider(
        name,
        patroni_settings=settings,
        patroni_bin=drill_config.patroni_bin,
        repmgr_settings=repmgr_settings,
        autofailover_settings=autofailover_settings,
    )


# --- measuring clients and monitor -----------------------------------------------------------


def workload(topology: Topology, record: DrillRecord, service: str) -> Workload:
    """The measuring client of ``service``: writes and probes through its endpoint."""
    client: LedgerClient | str
    if service == "postgres":
        client = topology.pg_endpoint.dsn(app="drdrill-workload")
    elif service == "redis":
        client = RedisLedger(topology.redis_endpoint.url())
    else:
        client = S3Ledger(topology.s3_endpoint.endpoint_url, topology.bucket)
    return Workload(client, record.history_of(service), write_interval=WRITE_INTERVALS[service])


def workloads(topology: Topology, record: DrillRecord) -> dict[str, Workload]:
    """One measuring client per service, not yet started."""
    return {service: workload(topology, record, service) for service in WRITE_INTERVALS}


def monitor_settings(drill_config: DrillConfig) -> MonitorSettings:
    """The reference monitor's settings from ``--drill-health-*`` and the failure threshold."""
    return MonitorSettings(
        interval=drill_config.health_interval,
        timeout=drill_config.health_timeout,
        threshold=drill_config.failure_threshold,
    )


def orchestrator(
    hook: object, topology: Topology, record: DrillRecord, settings: MonitorSettings
) -> Orchestrator:
    """The reference monitor, failing over through the drill's hooks (not yet started)."""
    failover, region_failover = hook_relays(hook, topology, record)
    return Orchestrator(topology, record, settings, failover, region_failover)


# --- notifications ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NotifySetup:
    """The run's communication plan, sinks and templates, checked before any drill starts.

    .. versionadded:: 0.4
    """

    plan: CommunicationPlan
    sinks: Sequence[Sink]
    templates: Mapping[TemplateName, Template]
    approval: str


def notify_setup(
    drill_config: DrillConfig, targets: Targets, run_id: str | None
) -> NotifySetup | None:
    """What drills notify through, or ``None`` when they do not notify.

    :param run_id: the run's id, for the default sink under the run's report directory;
        ``None`` on an xdist worker, whose controller writes the reports.
    :raises SinkSpecError: a ``--drill-notify`` entry is not a sink.
    :raises TemplateError: a template of ``--drill-notify-templates`` is unusable.
    """
    specs = drill_config.notify
    if specs == ("none",):
        return None
    if not specs:
        if run_id is None:
            return None
        specs = (f"file:{drill_config.report_dir / run_id / 'notifications.jsonl'}",)
    from pytest_drdrill.notify import CommunicationPlan, load_templates, parse_sink

    sinks = [parse_sink(spec) for spec in specs]
    templates = load_templates(drill_config.notify_templates)
    return NotifySetup(
        CommunicationPlan.from_targets(targets), sinks, templates, drill_config.notify_approval
    )


def notifier(
    setup: NotifySetup | None, *, run_id: str, scenario: str, target: Target | None
) -> Notifier | None:
    """A notifier rehearsing the communication plan for one drill; ``None`` without setup."""
    if setup is None:
        return None
    from pytest_drdrill.notify import Notifier, auto_approve, never_approve

    return Notifier(
        setup.plan,
        setup.sinks,
        incident_id=f"DRILL-{run_id}-{scenario}",
        approver=auto_approve if setup.approval == "auto" else never_approve,
        templates=setup.templates,
        estimated_recovery=None if target is None else target.rto_target,
    )


# --- the drill -------------------------------------------------------------------------------


def build_drill(
    *,
    topology: Topology,
    faults: FaultInjector,
    workloads: Mapping[str, Workload],
    record: DrillRecord,
    hook: object,
    monitor: MonitorSettings,
    observe: float,
    on_result: Callable[[DrillResult], None],
    targets: Targets | None = None,
    service: str = "postgres",
    sentinel: bool = False,
    notifier: Notifier | None = None,
    restore_hook: Callable[..., object] | None = None,
    ha: PostgresHA | None = None,
    guardrails: Guardrails | None = None,
) -> Drill:
    """A drill of ``topology``, failing over through ``hook``'s failover hooks (not started).

    :param hook: a pluggy hook relay with the ``pytest_drdrill_*`` hooks.
    :param sentinel: Redis Sentinel decides Redis failovers (``--drill-redis-failover``):
        the drill follows it, and the orchestrator leaves Redis alone.
    :param restore_hook: the ``pytest_drdrill_restore`` relay, for :meth:`Drill.restore`.
    :param ha: the HA stack running PostgreSQL failover; when it decides failovers
        itself, the orchestrator leaves PostgreSQL alone.
    :raises TopologyError: ``sentinel`` on a topology that runs no Sentinel.
    """
    failover, region_failover = hook_relays(hook, topology, record)
    follower = None
    if sentinel:
        follower = follow_sentinel(topology, record)
        monitor = dataclasses.replace(
            monitor, services=tuple(s for s in monitor.services if s != "redis")
        )
    if ha is not None and ha.decides_failover:
        monitor = dataclasses.replace(
            monitor, services=tuple(s for s in monitor.services if s != "postgres")
        )
    return Drill(
        topology=topology,
        faults=faults,
        workload=workloads,
        record=record,
        monitor_settings=monitor,
        failover=failover,
        region_failover=region_failover,
        observe=observe,
        on_result=on_result,
        targets=targets,
        service=service,
        sentinel=follower,
        notifier=notifier,
        restore_hook=restore_hook,
        ha=ha,
        guardrails=guardrails,
    )
