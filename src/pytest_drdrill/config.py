"""The plugin's options: one table, registered as CLI flags and ini keys alike.

Every setting exists as ``--drill-x`` on the command line and ``drill_x`` in the ini file,
with the same ``dest``; the command line wins. :func:`get_config` validates everything
once, at configure time, and raises :class:`pytest.UsageError` naming the flag and key.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_drdrill.durations import parse_duration
from pytest_drdrill.topology.sizes import Sizes

if TYPE_CHECKING:
    from collections.abc import Callable

CADENCES = ("daily", "weekly", "monthly", "quarterly")
BACKENDS = ("auto", "local", "docker", "stack")

_help_drill = (
    "run disaster-recovery drills of this cadence and the more frequent ones: "
    "daily | weekly | monthly | quarterly (monthly runs monthly, weekly and daily drills). "
    "Without it, drills are skipped."
)
_help_backend = (
    "where the topology runs: local | docker | stack | auto (default: local, the embedded "
    "processes; auto picks docker when a Docker daemon answers and has the images, else "
    "local; stack drills an already running stack described by --drill-stack)"
)
_help_docker_images = (
    "images of the docker backend, comma-separated service=image for postgres, redis, s3, "
    "proxy (default: drdrill/<service>, built by scripts/build-images)"
)
_help_stack = (
    "YAML file describing a running stack (endpoints, fault proxy, allowed faults) that "
    "--drill-backend=stack drills; it starts and stops nothing"
)
_help_targets = (
    "YAML file with RTO/RPO targets (default: fixtures/targets.yaml under the rootdir; "
    "without one, the requirements' tables shipped with pytest-drdrill)"
)
_help_report_dir = "directory for drill reports; each run writes <dir>/<run-id>/ (default: reports)"
_help_observe = (
    "how long a drill waits for the service to recover after a fault before it fails "
    "(default: 60s; accepts 90s, 2m, 2_minutes)"
)
_help_health_interval = "interval between the reference monitor's health checks (default: 100ms)"
_help_health_timeout = (
    "how long one health check may take before it counts as failed; above the round trip "
    "of a slow but healthy link, so latency alone never triggers failover (default: 1s)"
)
_help_failure_threshold = "consecutive failed health checks that trigger failover (default: 3)"
_help_skip_negative_controls = (
    "skip the negative-control drills, whose recovery is deliberately broken and which must "
    "go red (they run by default: they are the evidence that a drill can fail)"
)
_help_pg_bin = (
    "directory with PostgreSQL server binaries (default: found on PATH or in /usr/lib/postgresql)"
)
_help_run_as = "unprivileged account that runs servers when pytest runs as root (default: postgres)"
_help_redis_bin = "directory with redis-server and redis-sentinel (default: found on PATH)"
_help_redis_failover = (
    "who fails Redis over: orchestrator (the reference orchestrator promotes the DR replica) "
    "| sentinel (a real Redis Sentinel decides; the drill follows it) (default: orchestrator)"
)
REDIS_FAILOVERS = ("orchestrator", "sentinel")
_help_postgres_failover = (
    "who fails PostgreSQL over: reference (the drill's orchestrator and failover hooks) | "
    "patroni (a real Patroni + etcd + HAProxy cluster decides; the drill measures), repmgr "
    "(repmgrd behind HAProxy) or pg_auto_failover (a monitor and keepers, multi-host URI) "
    "(default: reference; a drill's marker may name its own with postgres_failover=...)"
)
POSTGRES_FAILOVERS = ("reference", "patroni", "repmgr", "pg_auto_failover")
#: The ``--drill-backup-tool`` values, the default first (see pytest_drdrill.backup.tools).
BACKUP_TOOLS = ("builtin", "pgbackrest", "barman")
_help_backup_tool = (
    "the backup tool restore drills back up and restore with: builtin (the plugin's encrypted "
    "backups in object storage), pgbackrest (pgBackRest with a repository per region) or "
    "barman (a Barman server per region, streaming WAL) (default: builtin)"
)
_help_patroni_config = (
    "YAML file with the team's Patroni settings (dynamic configuration such as ttl, "
    "loop_wait, retry_timeout, maximum_lag_on_failover, failsafe_mode, and tags per "
    "member) merged over the drill's defaults, checked against Patroni's rules"
)
_help_repmgr_config = (
    "YAML or repmgr.conf file with the team's repmgr settings (reconnect_attempts, "
    "reconnect_interval, monitor_interval_secs, failover, primary_visibility_consensus, "
    "priority, event_notification_command, ...; per node under nodes:) merged over the "
    "drill's defaults into every node's repmgr.conf"
)
_help_autofailover_config = (
    "YAML file with the team's pg_auto_failover settings (the monitor's health_check_period, "
    "health_check_max_retries, health_check_retry_delay, health_check_timeout, "
    "node_considered_unhealthy_timeout, primary_demote_timeout in ms; number_sync_standbys; "
    "candidate_priority and replication_quorum per node under nodes:) over the drill's defaults"
)
_help_patroni_bin = "the patroni executable to drill (default: patroni on PATH)"
_help_sizes = (
    "server counts of the local topology as key=N,...: pg_sync, pg_read, redis_replicas, "
    "app_primary, app_dr (default pg_sync=2,pg_read=1,redis_replicas=2,app_primary=2,app_dr=1)"
)
_help_repeat = "run every selected drill this many times, for RTO p50/p95 per scenario (default: 1)"
_help_enforce_cadence = (
    "fail the run when a tier of the targets file's drill_schedule has no passing drill of "
    "its cadence in the run history (reports/history.jsonl) within the cadence's window"
)
_help_notify = (
    "where drills deliver the communication plan's notifications, comma-separated: stdout, "
    "file:PATH, http(s)://webhook-url, or none (default: file notifications.jsonl in the "
    "run's report directory)"
)
_help_notify_templates = (
    "directory with the notification templates internal_alert.txt, customer_notification.txt "
    "and recovery_announcement.txt (default: the ones shipped with pytest-drdrill)"
)
_help_notify_approval = (
    "who approves customer and partner notifications during a drill: auto (approved at once, "
    "recorded as such) | never (withheld: the drill shows the deadline missed) (default: auto)"
)
APPROVALS = ("auto", "never")
_help_backup_key_file = (
    "file with the base64 AES-256 key(s) that encrypt drill backups, current key first "
    "(default: the DRDRILL_BACKUP_KEY environment variable; without either, each run makes "
    "a throwaway key and says so)"
)
_help_pushgateway = (
    "URL of a Prometheus Pushgateway (e.g. http://127.0.0.1:9091) that each run's figures "
    "are pushed to, under job drdrill grouped by cadence and backend; the same figures are "
    "always written as drdrill.prom in the report directory (default: no push)"
)
_help_otlp_endpoint = (
    "OTLP/HTTP traces URL of an OpenTelemetry collector (e.g. http://127.0.0.1:4318/v1/traces): "
    "each drill is exported as a trace whose spans are its phases and faults (needs the otel "
    "extra: pip install 'pytest-drdrill[otel]'; default: no export)"
)
_help_allow_destructive = (
    "allow faults that kill servers or destroy data (crash, storage loss, region outage, data "
    "corruption) on --drill-backend=docker and --drill-backend=stack; without it they are "
    "refused before injection (the local backend's servers are the drill's own: always allowed)"
)
_help_dry_run = (
    "print the plan of each selected drill (where it runs, the faults its code injects in "
    "order, what it is judged against) and run nothing: no server starts, no fault is injected"
)
_help_guardrails = (
    "guardrails of drills whose marker sets none, comma-separated key=value: "
    "max_outage=2m,max_error_rate=0.5,window=10s,functions=a|b (default: max_outage is the "
    "tier's maximum acceptable RTO); a breach heals every fault and aborts the drill"
)
_help_library = (
    "also collect the drills that ship with pytest-drdrill (the installed package's scenario "
    "library, pytest_drdrill/library); select among them with --drill=CADENCE and -k"
)
_help_init = (
    "write a starter drill project into the current directory (fixtures/targets.yaml, "
    "fixtures/stack.yaml, drills/conftest.py with a commented failover hook, "
    "drills/test_example_drill.py) and exit without running tests; overwrites nothing"
)


@dataclasses.dataclass(frozen=True)
class _Option:
    name: str  # dest and ini key
    flag: str
    help: str
    default: str | None
    is_bool: bool = False


OPTIONS = (
    _Option("drill", "--drill", _help_drill, None),
    _Option("drill_backend", "--drill-backend", _help_backend, "local"),
    _Option("drill_targets", "--drill-targets", _help_targets, None),
    _Option("drill_report_dir", "--drill-report-dir", _help_report_dir, None),
    _Option("drill_observe", "--drill-observe", _help_observe, "60s"),
    _Option("drill_health_interval", "--drill-health-interval", _help_health_interval, "100ms"),
    _Option("drill_health_timeout", "--drill-health-timeout", _help_health_timeout, "1s"),
    _Option("drill_failure_threshold", "--drill-failure-threshold", _help_failure_threshold, "3"),
    _Option(
        "drill_skip_negative_controls",
        "--drill-skip-negative-controls",
        _help_skip_negative_controls,
        None,
        is_bool=True,
    ),
    _Option("drill_pg_bin", "--drill-pg-bin", _help_pg_bin, None),
    _Option("drill_run_as", "--drill-run-as", _help_run_as, None),
    _Option("drill_redis_bin", "--drill-redis-bin", _help_redis_bin, None),
    _Option("drill_redis_failover", "--drill-redis-failover", _help_redis_failover, "orchestrator"),
    _Option(
        "drill_postgres_failover",
        "--drill-postgres-failover",
        _help_postgres_failover,
        "reference",
    ),
    _Option("drill_patroni_config", "--drill-patroni-config", _help_patroni_config, None),
    _Option("drill_backup_tool", "--drill-backup-tool", _help_backup_tool, "builtin"),
    _Option("drill_patroni_bin", "--drill-patroni-bin", _help_patroni_bin, None),
    _Option("drill_repmgr_config", "--drill-repmgr-config", _help_repmgr_config, None),
    _Option(
        "drill_pg_auto_failover_config",
        "--drill-pg-auto-failover-config",
        _help_autofailover_config,
        None,
    ),
    _Option("drill_repeat", "--drill-repeat", _help_repeat, "1"),
    _Option(
        "drill_enforce_cadence",
        "--drill-enforce-cadence",
        _help_enforce_cadence,
        None,
        is_bool=True,
    ),
    _Option("drill_notify", "--drill-notify", _help_notify, None),
    _Option("drill_notify_templates", "--drill-notify-templates", _help_notify_templates, None),
    _Option("drill_notify_approval", "--drill-notify-approval", _help_notify_approval, "auto"),
    _Option("drill_backup_key_file", "--drill-backup-key-file", _help_backup_key_file, None),
    _Option("drill_docker_images", "--drill-docker-images", _help_docker_images, None),
    _Option("drill_stack", "--drill-stack", _help_stack, None),
    _Option("drill_sizes", "--drill-sizes", _help_sizes, None),
    _Option(
        "drill_allow_destructive",
        "--drill-allow-destructive",
        _help_allow_destructive,
        None,
        is_bool=True,
    ),
    _Option("drill_dry_run", "--drill-dry-run", _help_dry_run, None, is_bool=True),
    _Option("drill_guardrails", "--drill-guardrails", _help_guardrails, None),
    _Option("drill_pushgateway", "--drill-pushgateway", _help_pushgateway, None),
    _Option("drill_otlp_endpoint", "--drill-otlp-endpoint", _help_otlp_endpoint, None),
)


def add_options(parser: pytest.Parser) -> None:
    """Register every option as a CLI flag and an ini key."""
    group = parser.getgroup("drdrill", "disaster-recovery drills")
    for opt in OPTIONS:
        if opt.is_bool:
            group.addoption(
                opt.flag, action="store_true", dest=opt.name, default=None, help=opt.help
            )
            parser.addini(opt.name, opt.help, type="bool", default=False)
        else:
            group.addoption(
                opt.flag,
                action="store",
                dest=opt.name,
                default=None,
                metavar="VALUE",
                help=opt.help,
            )
            parser.addini(opt.name, opt.help, default=opt.default)
    # An action, not a setting (like --help): no ini key.
    group.addoption("--drill-init", action="store_true", dest="drill_init", help=_help_init)
    group.addoption(
        "--drill-library", action="store_true", dest="drill_library", help=_help_library
    )


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


def _raw(config: pytest.Config, opt: _Option) -> tuple[object, str]:
    """Return the value and where it came from (for error messages)."""
    value = config.getoption(opt.name)
    if value is not None:
        return value, opt.flag
    ini = config.getini(opt.name)
    if ini not in (None, "", []):
        return ini, f"ini key {opt.name}"
    return opt.default, f"default of {opt.flag}"


def _where(opt: _Option) -> str:
    return f"{opt.flag} / ini {opt.name}"


def _choice(config: pytest.Config, opt: _Option, choices: tuple[str, ...]) -> str | None:
    value, source = _raw(config, opt)
    if value is None:
        return None
    text = str(value).strip().lower()
    if text not in choices:
        raise pytest.UsageError(
            f"{source}: invalid value {value!r}; valid values are {', '.join(choices)} "
            f"(set with {_where(opt)})"
        )
    return text


def _duration(config: pytest.Config, opt: _Option, *, minimum: float) -> float:
    value, source = _raw(config, opt)
    try:
        seconds = parse_duration(str(value))
    except ValueError as exc:
        raise pytest.UsageError(f"{source}: {exc} (set with {_where(opt)})") from None
    if seconds < minimum:
        raise pytest.UsageError(
            f"{source}: {value!r} is below the minimum of {minimum}s (set with {_where(opt)})"
        )
    return seconds


def _path(config: pytest.Config, opt: _Option, default: Callable[[], Path]) -> tuple[Path, bool]:
    cli = config.getoption(opt.name)
    if cli is not None:
        return Path(cli).expanduser().absolute(), True
    ini = config.getini(opt.name)
    if ini not in (None, "", []):
        base = config.inipath.parent if config.inipath else config.rootpath
        return (base / str(ini)).expanduser().absolute(), True
    return default(), False


def get_config(config: pytest.Config) -> DrillConfig:
    """Read and validate every drill option (CLI > ini > default).

    :raises pytest.UsageError: naming the flag, the ini key and the valid values.
    """
    opts = {o.name: o for o in OPTIONS}
    cadence = _choice(config, opts["drill"], CADENCES)
    backend = _choice(config, opts["drill_backend"], BACKENDS) or "local"
    targets, explicit = _path(
        config, opts["drill_targets"], lambda: config.rootpath / "fixtures" / "targets.yaml"
    )
    report_dir, _ = _path(config, opts["drill_report_dir"], lambda: config.rootpath / "reports")
    threshold = _whole(config, opts["drill_failure_threshold"], "checks")
    skip_negative = _flag(config, "drill_skip_negative_controls")
    repeat = _whole(config, opts["drill_repeat"], "runs of each drill")
    notify_raw, _ = _raw(config, opts["drill_notify"])
    notify = tuple(
        part.strip() for part in str(notify_raw or "").replace("\n", ",").split(",") if part.strip()
    )
    templates = None
    if _raw(config, opts["drill_notify_templates"])[0]:
        templates, _ = _path(config, opts["drill_notify_templates"], Path)
    key_file = None
    if _raw(config, opts["drill_backup_key_file"])[0]:
        key_file, _ = _path(config, opts["drill_backup_key_file"], Path)
    pg_bin, _ = _raw(config, opts["drill_pg_bin"])
    run_as, _ = _raw(config, opts["drill_run_as"])
    redis_bin, _ = _raw(config, opts["drill_redis_bin"])
    redis_failover = _choice(config, opts["drill_redis_failover"], REDIS_FAILOVERS)
    postgres_failover = _choice(config, opts["drill_postgres_failover"], POSTGRES_FAILOVERS)
    backup_tool = _choice(config, opts["drill_backup_tool"], BACKUP_TOOLS)
    patroni_config = None
    if _raw(config, opts["drill_patroni_config"])[0]:
        patroni_config, _ = _path(config, opts["drill_patroni_config"], Path)
    patroni_bin, _ = _raw(config, opts["drill_patroni_bin"])
    repmgr_config = None
    if _raw(config, opts["drill_repmgr_config"])[0]:
        repmgr_config, _ = _path(config, opts["drill_repmgr_config"], Path)
    pg_auto_failover_config = None
    if _raw(config, opts["drill_pg_auto_failover_config"])[0]:
        pg_auto_failover_config, _ = _path(config, opts["drill_pg_auto_failover_config"], Path)
    stack_file = None
    if _raw(config, opts["drill_stack"])[0]:
        stack_file, _ = _path(config, opts["drill_stack"], Path)
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
        observe=_duration(config, opts["drill_observe"], minimum=1.0),
        health_interval=_duration(config, opts["drill_health_interval"], minimum=0.01),
        health_timeout=_duration(config, opts["drill_health_timeout"], minimum=0.01),
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
        enforce_cadence=_flag(config, "drill_enforce_cadence"),
        allow_destructive=_flag(config, "drill_allow_destructive"),
        dry_run=_flag(config, "drill_dry_run"),
        guardrails=_guardrails(config, opts["drill_guardrails"]),
        notify=notify,
        notify_templates=templates,
        notify_approval=_choice(config, opts["drill_notify_approval"], APPROVALS) or "auto",
        backup_key_file=key_file,
        docker_images=_images(config, opts["drill_docker_images"]),
        stack_file=stack_file,
        sizes=_sizes(config, opts["drill_sizes"], backend),
        pushgateway=_pushgateway(config, opts["drill_pushgateway"]),
        otlp_endpoint=_otlp_endpoint(config, opts["drill_otlp_endpoint"]),
    )


def _otlp_endpoint(config: pytest.Config, opt: _Option) -> str | None:
    """The collector's traces URL, and the SDK to reach it, checked before any drill runs."""
    raw, source = _raw(config, opt)
    if not raw:
        return None
    url = str(raw).strip()
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise pytest.UsageError(
            f"{source}: {raw!r} is not an OTLP/HTTP traces URL; give one such as "
            f"http://127.0.0.1:4318/v1/traces (set with {_where(opt)})"
        )
    from pytest_drdrill.reporting.otel import missing_sdk

    problem = missing_sdk()
    if problem is not None:
        raise pytest.UsageError(f"{source} asks for OpenTelemetry traces, but {problem}")
    return url


def _pushgateway(config: pytest.Config, opt: _Option) -> str | None:
    """The Pushgateway's URL, checked now rather than after the drills have run.

    Like Prometheus's own tools, prometheus_client takes ``host:port`` as
    ``http://host:port``; so does this check.
    """
    raw, source = _raw(config, opt)
    if not raw:
        return None
    text = str(raw).strip()
    url = text if "://" in text else f"http://{text}"
    parsed = urllib.parse.urlsplit(url)
    try:
        port_ok = parsed.port is None or parsed.port > 0
    except ValueError:  # not a number, or above 65535
        port_ok = False
    host = parsed.hostname or ""
    # urllib would take "user:password@" as credentials and then not send them.
    host_ok = bool(re.fullmatch(r"[A-Za-z0-9._-]+|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*", host))
    host_ok = host_ok and parsed.username is None
    if parsed.scheme not in ("http", "https") or not host_ok or not port_ok:
        raise pytest.UsageError(
            f"{source}: {raw!r} is not a Pushgateway address; give its URL, e.g. "
            f"http://127.0.0.1:9091 (set with {_where(opt)})"
        )
    return url.rstrip("/")


def _guardrails(config: pytest.Config, opt: _Option) -> dict[str, object] | None:
    raw, source = _raw(config, opt)
    if not raw:
        return None
    from pytest_drdrill.guardrails import parse

    given: dict[str, object] = {}
    for part in str(raw).split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not key.strip():
            raise pytest.UsageError(
                f"{source}: {part.strip()!r} is not key=value; write e.g. "
                f"max_outage=2m,max_error_rate=0.5 (set with {_where(opt)})"
            )
        key, value = key.strip(), value.strip()
        if key == "functions":
            given[key] = [f for f in value.split("|") if f]
        elif key == "max_error_rate":
            try:
                given[key] = float(value)
            except ValueError:
                given[key] = value  # parse() names it
        else:
            given[key] = None if value.lower() in ("none", "off") else value
    try:
        parse(source, given, None, None)
    except ValueError as exc:
        raise pytest.UsageError(f"{exc} (set with {_where(opt)})") from None
    return given


def _images(config: pytest.Config, opt: _Option) -> tuple[tuple[str, str], ...]:
    raw, source = _raw(config, opt)
    from pytest_drdrill.topology.docker_engine import Images

    try:
        images = Images.parse(str(raw) if raw else None, where=source)
    except ValueError as exc:
        raise pytest.UsageError(f"{exc} (set with {_where(opt)})") from None
    return tuple(images.as_dict().items())


def _sizes(config: pytest.Config, opt: _Option, backend: str) -> Sizes:
    raw, source = _raw(config, opt)
    try:
        sizes = Sizes.parse(str(raw) if raw else None, where=source)
    except ValueError as exc:
        raise pytest.UsageError(f"{exc} (set with {_where(opt)})") from None
    if raw and backend in ("docker", "stack"):
        raise pytest.UsageError(
            f"{source}: sizes apply to the local backend only; the {backend} backend builds "
            f"{'its fixed shape' if backend == 'docker' else 'nothing: it drills your stack'}. "
            f"Drop {opt.flag} / ini {opt.name}, or use --drill-backend=local"
        )
    return sizes


def _flag(config: pytest.Config, name: str) -> bool:
    cli = config.getoption(name)
    return bool(cli) if cli is not None else bool(config.getini(name))


def _whole(config: pytest.Config, opt: _Option, what: str) -> int:
    raw, source = _raw(config, opt)
    try:
        value = int(str(raw))
        if value < 1:
            raise ValueError
    except ValueError:
        raise pytest.UsageError(
            f"{source}: invalid value {raw!r}; give a whole number of {what}, 1 or more "
            f"(set with {_where(opt)})"
        ) from None
    return value


def backend_name(drill_config: DrillConfig) -> str:
    """The backend drills run on: the one named, or the one ``auto`` chose (local if none)."""
    if drill_config.backend != "auto":
        return drill_config.backend
    return drill_config.backend_choice or "local"


def includes(selected: str, cadence: str) -> bool:
    """Whether ``--drill=selected`` runs a drill of ``cadence`` (more frequent ones included)."""
    return CADENCES.index(cadence) <= CADENCES.index(selected)
