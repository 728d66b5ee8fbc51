"""The run's settings, read and validated once, at configure time.

:func:`get_config` reads every option of :data:`pytest_drdrill.options.OPTIONS` (command
line, then ini file, then default) into a :class:`DrillConfig`, and raises
:class:`pytest.UsageError` naming the flag and key.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pytest_drdrill import option_values as values
from pytest_drdrill.options import (
    APPROVALS,
    BACKENDS,
    BACKUP_TOOLS,
    CADENCES,
    OPTIONS,
    POSTGRES_FAILOVERS,
    REDIS_FAILOVERS,
)
from pytest_drdrill.topology.sizes import Sizes


@dataclasses.dataclass(frozen=True)
class DrillConfig:
    """Validated settings of a run.

    .. versionadded:: 0.1
    """

    cadence: str | None
    backend: str
    targets: Path
    targets_explicit: bool
    report_dir: Path
    observe: float
    health_interval: float
    health_timeout: float
    failure_threshold: int
    negative_controls: bool
    pg_bin: str | None
    run_as: str | None
    redis_bin: str | None = None
    redis_failover: str = "orchestrator"
    postgres_failover: str = "reference"
    #: The backup tool of restore drills (``--drill-backup-tool``).
    backup_tool: str = "builtin"
    patroni_config: Path | None = None
    patroni_bin: str | None = None
    #: The team's repmgr settings file (``--drill-repmgr-config``), not yet read.
    repmgr_config: Path | None = None
    #: The team's pg_auto_failover settings file (``--drill-pg-auto-failover-config``).
    pg_auto_failover_config: Path | None = None
    repeat: int = 1
    enforce_cadence: bool = False
    notify: tuple[str, ...] = ()
    notify_templates: Path | None = None
    notify_approval: str = "auto"
    backup_key_file: Path | None = None
    #: ``service=image`` overrides of the docker backend, validated.
    docker_images: tuple[tuple[str, str], ...] = ()
    stack_file: Path | None = None
    #: Destructive faults allowed on shared backends (``--drill-allow-destructive``).
    allow_destructive: bool = False
    #: Print each selected drill's plan and run nothing (``--drill-dry-run``).
    dry_run: bool = False
    #: Guardrails of drills whose marker sets none (``--drill-guardrails``), as the
    #: marker's mapping; ``None`` for the default.
    guardrails: dict[str, object] | None = None
    #: The backend ``auto`` chose at configure time, and why (empty when one was named).
    backend_choice: str = ""
    backend_reason: str = ""
    #: The Pushgateway the run's figures are pushed to (``--drill-pushgateway``), if any.
    pushgateway: str | None = None
    #: The OTLP/HTTP traces URL drills are exported to (``--drill-otlp-endpoint``), if any.
    otlp_endpoint: str | None = None
    #: Whether :attr:`targets` is the requirements' tables shipped with the package, used
    #: because no file was named and the default path holds none (settled with ``--drill``).
    targets_packaged: bool = False
    #: Server counts of the local topology (``--drill-sizes``).
    sizes: Sizes = dataclasses.field(default_factory=Sizes)


def get_config(config: pytest.Config) -> DrillConfig:
    """Read and validate every drill option (CLI > ini > default).

    :raises pytest.UsageError: naming the flag, the ini key and the valid values.
    """
    opts = {o.name: o for o in OPTIONS}
    cadence = values.choice(config, opts["drill"], CADENCES)
    backend = values.choice(config, opts["drill_backend"], BACKENDS) or "local"
    targets, explicit = values.path(
        config, opts["drill_targets"], lambda: config.rootpath / "fixtures" / "targets.yaml"
    )
    report_dir, _ = values.path(
        config, opts["drill_report_dir"], lambda: config.rootpath / "reports"
    )
    threshold = values.whole(config, opts["drill_failure_threshold"], "checks")
    skip_negative = values.flag(config, "drill_skip_negative_controls")
    repeat = values.whole(config, opts["drill_repeat"], "runs of each drill")
    notify_raw, _ = values.lookup(config, opts["drill_notify"])
    notify = tuple(
        part.strip() for part in str(notify_raw or "").replace("\n", ",").split(",") if part.strip()
    )
    templates = None
    if values.lookup(config, opts["drill_notify_templates"])[0]:
        templates, _ = values.path(config, opts["drill_notify_templates"], Path)
    key_file = None
    if values.lookup(config, opts["drill_backup_key_file"])[0]:
        key_file, _ = values.path(config, opts["drill_backup_key_file"], Path)
    pg_bin, _ = values.lookup(config, opts["drill_pg_bin"])
    run_as, _ = values.lookup(config, opts["drill_run_as"])
    redis_bin, _ = values.lookup(config, opts["drill_redis_bin"])
    redis_failover = values.choice(config, opts["drill_redis_failover"], REDIS_FAILOVERS)
    postgres_failover = values.choice(config, opts["drill_postgres_failover"], POSTGRES_FAILOVERS)
    backup_tool = values.choice(config, opts["drill_backup_tool"], BACKUP_TOOLS)
    patroni_config = None
    if values.lookup(config, opts["drill_patroni_config"])[0]:
        patroni_config, _ = values.path(config, opts["drill_patroni_config"], Path)
    patroni_bin, _ = values.lookup(config, opts["drill_patroni_bin"])
    repmgr_config = None
    if values.lookup(config, opts["drill_repmgr_config"])[0]:
        repmgr_config, _ = values.path(config, opts["drill_repmgr_config"], Path)
    pg_auto_failover_config = None
    if values.lookup(config, opts["drill_pg_auto_failover_config"])[0]:
        pg_auto_failover_config, _ = values.path(
            config, opts["drill_pg_auto_failover_config"], Path
        )
    stack_file = None
    if values.lookup(config, opts["drill_stack"])[0]:
        stack_file, _ = values.path(config, opts["drill_stack"], Path)
    elif backend == "stack":
        raise pytest.UsageError(
            "--drill-backend=stack needs the stack's description: pass --drill-stack=FILE / "
            "ini drill_stack (fixtures/stack-compose.yaml describes docker-compose.yml's stack)"
        )
    return DrillConfig(
        cadence=cadence,
        backend=backend,
        targets=targets,
        targets_explicit=explicit,
        report_dir=report_dir,
        observe=values.duration(config, opts["drill_observe"], minimum=1.0),
        health_interval=values.duration(config, opts["drill_health_interval"], minimum=0.01),
        health_timeout=values.duration(config, opts["drill_health_timeout"], minimum=0.01),
        failure_threshold=threshold,
        negative_controls=not skip_negative,
        pg_bin=str(pg_bin) if pg_bin else None,
        run_as=str(run_as) if run_as else None,
        redis_bin=str(redis_bin) if redis_bin else None,
        redis_failover=redis_failover or "orchestrator",
        postgres_failover=postgres_failover or "reference",
        backup_tool=backup_tool or "builtin",
        patroni_config=patroni_config,
        patroni_bin=str(patroni_bin) if patroni_bin else None,
        repmgr_config=repmgr_config,
        pg_auto_failover_config=pg_auto_failover_config,
        repeat=repeat,
        enforce_cadence=values.flag(config, "drill_enforce_cadence"),
        allow_destructive=values.flag(config, "drill_allow_destructive"),
        dry_run=values.flag(config, "drill_dry_run"),
        guardrails=values.guardrails(config, opts["drill_guardrails"]),
        notify=notify,
        notify_templates=templates,
        notify_approval=values.choice(config, opts["drill_notify_approval"], APPROVALS) or "auto",
        backup_key_file=key_file,
        docker_images=values.images(config, opts["drill_docker_images"]),
        stack_file=stack_file,
        sizes=values.sizes(config, opts["drill_sizes"], backend),
        pushgateway=values.pushgateway(config, opts["drill_pushgateway"]),
        otlp_endpoint=values.otlp_endpoint(config, opts["drill_otlp_endpoint"]),
    )


def backend_name(drill_config: DrillConfig) -> str:
    """The backend drills run on: the one named, or the one ``auto`` chose (local if none)."""
    if drill_config.backend != "auto":
        return drill_config.backend
    return drill_config.backend_choice or "local"
