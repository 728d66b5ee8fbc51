"""The plugin's options: one table, registered as CLI flags and ini keys alike.

Every setting exists as ``--drill-x`` on the command line and ``drill_x`` in the ini file,
with the same ``dest``; the command line wins. The fixed choices some options take
(cadences, backends, who fails over, backup tools) live here too, for the modules that check
a marker or a file against them. :func:`pytest_drdrill.config.get_config` reads and checks
the values.
"""

from __future__ import annotations

import dataclasses

import pytest

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
class Option:
    """One setting: its ``dest`` and ini key, its flag, its help and its default."""

    name: str  # dest and ini key
    flag: str
    help: str
    default: str | None
    is_bool: bool = False


OPTIONS = (
    Option("drill", "--drill", _help_drill, None),
    Option("drill_backend", "--drill-backend", _help_backend, "local"),
    Option("drill_targets", "--drill-targets", _help_targets, None),
    Option("drill_report_dir", "--drill-report-dir", _help_report_dir, None),
    Option("drill_observe", "--drill-observe", _help_observe, "60s"),
    Option("drill_health_interval", "--drill-health-interval", _help_health_interval, "100ms"),
    Option("drill_health_timeout", "--drill-health-timeout", _help_health_timeout, "1s"),
    Option("drill_failure_threshold", "--drill-failure-threshold", _help_failure_threshold, "3"),
    Option(
        "drill_skip_negative_controls",
        "--drill-skip-negative-controls",
        _help_skip_negative_controls,
        None,
        is_bool=True,
    ),
    Option("drill_pg_bin", "--drill-pg-bin", _help_pg_bin, None),
    Option("drill_run_as", "--drill-run-as", _help_run_as, None),
    Option("drill_redis_bin", "--drill-redis-bin", _help_redis_bin, None),
    Option("drill_redis_failover", "--drill-redis-failover", _help_redis_failover, "orchestrator"),
    Option(
        "drill_postgres_failover",
        "--drill-postgres-failover",
        _help_postgres_failover,
        "reference",
    ),
    Option("drill_patroni_config", "--drill-patroni-config", _help_patroni_config, None),
    Option("drill_backup_tool", "--drill-backup-tool", _help_backup_tool, "builtin"),
    Option("drill_patroni_bin", "--drill-patroni-bin", _help_patroni_bin, None),
    Option("drill_repmgr_config", "--drill-repmgr-config", _help_repmgr_config, None),
    Option(
        "drill_pg_auto_failover_config",
        "--drill-pg-auto-failover-config",
        _help_autofailover_config,
        None,
    ),
    Option("drill_repeat", "--drill-repeat", _help_repeat, "1"),
    Option(
        "drill_enforce_cadence",
        "--drill-enforce-cadence",
        _help_enforce_cadence,
        None,
        is_bool=True,
    ),
    Option("drill_notify", "--drill-notify", _help_notify, None),
    Option("drill_notify_templates", "--drill-notify-templates", _help_notify_templates, None),
    Option("drill_notify_approval", "--drill-notify-approval", _help_notify_approval, "auto"),
    Option("drill_backup_key_file", "--drill-backup-key-file", _help_backup_key_file, None),
    Option("drill_docker_images", "--drill-docker-images", _help_docker_images, None),
    Option("drill_stack", "--drill-stack", _help_stack, None),
    Option("drill_sizes", "--drill-sizes", _help_sizes, None),
    Option(
        "drill_allow_destructive",
        "--drill-allow-destructive",
        _help_allow_destructive,
        None,
        is_bool=True,
    ),
    Option("drill_dry_run", "--drill-dry-run", _help_dry_run, None, is_bool=True),
    Option("drill_guardrails", "--drill-guardrails", _help_guardrails, None),
    Option("drill_pushgateway", "--drill-pushgateway", _help_pushgateway, None),
    Option("drill_otlp_endpoint", "--drill-otlp-endpoint", _help_otlp_endpoint, None),
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


def includes(selected: str, cadence: str) -> bool:
    """Whether ``--drill=selected`` runs a drill of ``cadence`` (more frequent ones included)."""
    return CADENCES.index(cadence) <= CADENCES.index(selected)
