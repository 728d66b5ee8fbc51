"""The plugin's options: ``--drill`` and the ``--drill-*`` flags with their ini keys."""

from __future__ import annotations

from pathlib import Path

import pytest

CADENCES = "daily, weekly, monthly, quarterly"

# Prints every field of the parsed DrillConfig, paths as plain text, the rest as repr().
CONFIG_PRINTER = """
import dataclasses
from pathlib import Path


def test_print_config(drdrill_config):
    print()
    for field in dataclasses.fields(drdrill_config):
        value = getattr(drdrill_config, field.name)
        shown = value if isinstance(value, Path) else repr(value)
        print(f"DRDRILL {field.name}={shown}")
"""

# A drill that needs the targets file to resolve its tier, but no PostgreSQL.
DAILY_DRILL = """
import pytest


@pytest.mark.drdrill(cadence="daily", tier="tier_1_critical")
def test_daily_drill():
    pass
"""


def print_config(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run the config printer with ``args`` and check that it ran."""
    path = pytester.makepyfile(test_config=CONFIG_PRINTER)
    result = pytester.runpytest("-s", *args, str(path))
    result.assert_outcomes(passed=1)
    return result


def ini(**keys: str) -> str:
    """Return an ini file's ``[pytest]`` section setting ``keys``."""
    return "[pytest]\n" + "".join(f"{key} = {value}\n" for key, value in keys.items())


# --- parsed values, defaults and precedence -------------------------------------------------------


def test_defaults(pytester: pytest.Pytester) -> None:
    """Without flags or ini keys, every setting has its documented default."""
    result = print_config(pytester)
    result.stdout.fnmatch_lines(
        [
            "DRDRILL cadence=None",
            "DRDRILL backend='local'",
            f"DRDRILL targets={pytester.path / 'fixtures' / 'targets.yaml'}",
            "DRDRILL targets_explicit=False",
            f"DRDRILL report_dir={pytester.path / 'reports'}",
            "DRDRILL observe=60.0",
            "DRDRILL health_interval=0.1",
            "DRDRILL health_timeout=1.0",
            "DRDRILL failure_threshold=3",
            "DRDRILL negative_controls=True",
            "DRDRILL pg_bin=None",
            "DRDRILL run_as=None",
            "DRDRILL redis_bin=None",
            "DRDRILL redis_failover='orchestrator'",
            "DRDRILL repeat=1",
            "DRDRILL enforce_cadence=False",
            "DRDRILL notify=()",
            "DRDRILL notify_templates=None",
            "DRDRILL notify_approval='auto'",
        ]
    )


# flag, ini key, DrillConfig field, CLI value, its parsed repr, ini value, its parsed repr
VALUE_OPTIONS = [
    pytest.param(
        "--drill-backend", "drill_backend", "backend", "local", "'local'", "Local", "'local'",
        id="backend",
    ),
    pytest.param(
        "--drill-observe", "drill_observe", "observe", "90s", "90.0", "2_minutes", "120.0",
        id="observe",
    ),
    pytest.param(
        "--drill-health-interval", "drill_health_interval", "health_interval",
        "50ms", "0.05", "250ms", "0.25",
        id="health-interval",
    ),
    pytest.param(
        "--drill-health-timeout", "drill_health_timeout", "health_timeout",
        "2s", "2.0", "500ms", "0.5",
        id="health-timeout",
    ),
    pytest.param(
        "--drill-failure-threshold", "drill_failure_threshold", "failure_threshold",
        "5", "5", "7", "7",
        id="failure-threshold",
    ),
    pytest.param(
        "--drill-pg-bin", "drill_pg_bin", "pg_bin",
        "/opt/pg/16/bin", "'/opt/pg/16/bin'", "/usr/lib/postgresql/16/bin",
        "'/usr/lib/postgresql/16/bin'",
        id="pg-bin",
    ),
    pytest.param(
        "--drill-run-as", "drill_run_as", "run_as", "drilluser", "'drilluser'", "pgrunner",
        "'pgrunner'",
        id="run-as",
    ),
    pytest.param(
        "--drill-redis-bin", "drill_redis_bin", "redis_bin", "/opt/redis/bin", "'/opt/redis/bin'",
        "/usr/local/bin", "'/usr/local/bin'",
        id="redis-bin",
    ),
    pytest.param(
        "--drill-redis-failover", "drill_redis_failover", "redis_failover", "sentinel",
        "'sentinel'", "Sentinel", "'sentinel'",
        id="redis-failover",
    ),
    pytest.param(
        "--drill-repeat", "drill_repeat", "repeat", "5", "5", "3", "3", id="repeat",
    ),
    pytest.param(
        "--drill-notify", "drill_notify", "notify", "stdout,http://127.0.0.1:9/hook",
        "('stdout', 'http://127.0.0.1:9/hook')", "none", "('none',)", id="notify",
    ),
    pytest.param(
        "--drill-notify-approval", "drill_notify_approval", "notify_approval", "never",
        "'never'", "Auto", "'auto'", id="notify-approval",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("flag", "key", "field", "cli_value", "cli_parsed", "ini_value", "ini_parsed"), VALUE_OPTIONS
)
def test_option_from_cli(
    pytester: pytest.Pytester, flag, key, field, cli_value, cli_parsed, ini_value, ini_parsed
) -> None:
    """A ``--drill-*`` flag's value is parsed into drdrill_config."""
    result = print_config(pytester, f"{flag}={cli_value}")
    result.stdout.fnmatch_lines([f"DRDRILL {field}={cli_parsed}"])


@pytest.mark.parametrize(
    ("flag", "key", "field", "cli_value", "cli_parsed", "ini_value", "ini_parsed"), VALUE_OPTIONS
)
def test_option_from_ini(
    pytester: pytest.Pytester, flag, key, field, cli_value, cli_parsed, ini_value, ini_parsed
) -> None:
    """A ``drill_*`` ini key's value is parsed into drdrill_config."""
    pytester.makeini(ini(**{key: ini_value}))
    result = print_config(pytester)
    result.stdout.fnmatch_lines([f"DRDRILL {field}={ini_parsed}"])


def test_drill_from_cli(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """``--drill`` sets the cadence, in any letter case."""
    result = print_config(pytester, "--drill=Weekly")
    result.stdout.fnmatch_lines(["DRDRILL cadence='weekly'"])


def test_drill_from_ini(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """The ``drill`` ini key sets the cadence."""
    pytester.makeini(ini(drill="quarterly"))
    result = print_config(pytester)
    result.stdout.fnmatch_lines(["DRDRILL cadence='quarterly'"])


def test_negative_controls_skipped_from_cli(pytester: pytest.Pytester) -> None:
    """``--drill-skip-negative-controls`` turns negative controls off."""
    result = print_config(pytester, "--drill-skip-negative-controls")
    result.stdout.fnmatch_lines(["DRDRILL negative_controls=False"])


def test_negative_controls_skipped_from_ini(pytester: pytest.Pytester) -> None:
    """``drill_skip_negative_controls = true`` turns negative controls off."""
    pytester.makeini(ini(drill_skip_negative_controls="true"))
    result = print_config(pytester)
    result.stdout.fnmatch_lines(["DRDRILL negative_controls=False"])


def test_cli_overrides_ini(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """A flag given on the command line wins over the same setting in the ini file."""
    pytester.makeini(
        ini(
            drill="daily",
            drill_backend="local",
            drill_observe="2m",
            drill_health_interval="1s",
            drill_failure_threshold="7",
            drill_report_dir="ini-reports",
            drill_pg_bin="/ini/bin",
            drill_run_as="ini-user",
        )
    )
    result = print_config(
        pytester,
        "--drill=weekly",
        "--drill-backend=auto",
        "--drill-observe=90s",
        "--drill-health-interval=50ms",
        "--drill-failure-threshold=2",
        "--drill-report-dir=cli-reports",
        "--drill-pg-bin=/cli/bin",
        "--drill-run-as=cli-user",
    )
    result.stdout.fnmatch_lines(
        [
            "DRDRILL cadence='weekly'",
            "DRDRILL backend='auto'",
            f"DRDRILL report_dir={pytester.path / 'cli-reports'}",
            "DRDRILL observe=90.0",
            "DRDRILL health_interval=0.05",
            "DRDRILL failure_threshold=2",
            "DRDRILL pg_bin='/cli/bin'",
            "DRDRILL run_as='cli-user'",
        ]
    )


# --- paths: CLI against the invocation dir, ini against the ini file's dir ------------------------


def test_report_dir_from_cli_is_relative_to_invocation_dir(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative ``--drill-report-dir`` resolves against the directory pytest was started in."""
    pytester.makeini(ini())
    monkeypatch.chdir(pytester.mkdir("sub"))
    result = print_config(pytester, "--drill-report-dir=out")
    result.stdout.fnmatch_lines([f"DRDRILL report_dir={pytester.path / 'sub' / 'out'}"])


def test_report_dir_from_ini_is_relative_to_ini_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative ``drill_report_dir`` resolves against the ini file's directory."""
    pytester.makeini(ini(drill_report_dir="out/drills"))
    monkeypatch.chdir(pytester.mkdir("sub"))
    result = print_config(pytester)
    result.stdout.fnmatch_lines([f"DRDRILL report_dir={pytester.path / 'out' / 'drills'}"])


def test_targets_from_cli_is_relative_to_invocation_dir(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, targets_yaml: Path
) -> None:
    """A relative ``--drill-targets`` resolves against the invocation dir and is loaded."""
    pytester.makeini(ini())
    sub = pytester.mkdir("sub")
    targets_yaml.rename(sub / "my-targets.yaml")
    monkeypatch.chdir(sub)
    pytester.makepyfile(test_drill=DAILY_DRILL)
    result = print_config(pytester, "--drill=daily", "--drill-targets=my-targets.yaml")
    result.stdout.fnmatch_lines(
        [f"DRDRILL targets={sub / 'my-targets.yaml'}", "DRDRILL targets_explicit=True"]
    )
    result = pytester.runpytest(
        "--drill=daily", "--drill-targets=my-targets.yaml", str(pytester.path / "test_drill.py")
    )
    result.assert_outcomes(passed=1)


def test_targets_from_ini_is_relative_to_ini_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, targets_yaml: Path
) -> None:
    """A relative ``drill_targets`` resolves against the ini file's directory and is loaded."""
    pytester.makeini(ini(drill_targets="conf/targets.yaml"))
    conf = pytester.mkdir("conf")
    targets_yaml.rename(conf / "targets.yaml")
    monkeypatch.chdir(pytester.mkdir("sub"))
    pytester.makepyfile(test_drill=DAILY_DRILL)
    result = print_config(pytester, "--drill=daily")
    result.stdout.fnmatch_lines(
        [f"DRDRILL targets={conf / 'targets.yaml'}", "DRDRILL targets_explicit=True"]
    )
    result = pytester.runpytest("--drill=daily", str(pytester.path / "test_drill.py"))
    result.assert_outcomes(passed=1)


def test_targets_not_loaded_without_drill(pytester: pytest.Pytester) -> None:
    """Without ``--drill`` the targets file is not read, so a missing one does not matter."""
    pytester.makepyfile(DAILY_DRILL)
    result = pytester.runpytest("--drill-targets=missing.yaml")
    result.assert_outcomes(skipped=1)


# --- usage errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        pytest.param(
            "--drill=yearly",
            f"ERROR: --drill: invalid value 'yearly'; valid values are {CADENCES} "
            "(set with --drill / ini drill)",
            id="drill",
        ),
        pytest.param(
            "--drill-backend=k8s",
            "ERROR: --drill-backend: invalid value 'k8s'; valid values are auto, local, "
            "docker, stack (set with --drill-backend / ini drill_backend)",
            id="backend",
        ),
        pytest.param(
            "--drill-redis-failover=patroni",
            "ERROR: --drill-redis-failover: invalid value 'patroni'; valid values are "
            "orchestrator, sentinel (set with --drill-redis-failover / ini drill_redis_failover)",
            id="redis-failover",
        ),
        pytest.param(
            "--drill-observe=soon",
            "ERROR: --drill-observe: *cannot read 'soon' as a duration; write one of 15_minutes, "
            "*(set with --drill-observe / ini drill_observe)",
            id="observe-unreadable",
        ),
        pytest.param(
            "--drill-observe=-5s",
            "ERROR: --drill-observe: *duration '-5s' is negative*"
            "(set with --drill-observe / ini drill_observe)",
            id="observe-negative",
        ),
        pytest.param(
            "--drill-observe=500ms",
            "ERROR: --drill-observe: '500ms' is below the minimum of 1.0s "
            "(set with --drill-observe / ini drill_observe)",
            id="observe-too-short",
        ),
        pytest.param(
            "--drill-health-interval=5ms",
            "ERROR: --drill-health-interval: '5ms' is below the minimum of 0.01s "
            "(set with --drill-health-interval / ini drill_health_interval)",
            id="health-interval-too-short",
        ),
        pytest.param(
            "--drill-health-timeout=later",
            "ERROR: --drill-health-timeout: *cannot read 'later' as a duration*"
            "(set with --drill-health-timeout / ini drill_health_timeout)",
            id="health-timeout-unreadable",
        ),
        pytest.param(
            "--drill-failure-threshold=0",
            "ERROR: --drill-failure-threshold: invalid value '0'; give a whole number of "
            "checks, 1 or more (set with --drill-failure-threshold / ini drill_failure_threshold)",
            id="threshold-zero",
        ),
        pytest.param(
            "--drill-repeat=0",
            "ERROR: --drill-repeat: invalid value '0'; give a whole number of runs of each "
            "drill, 1 or more (set with --drill-repeat / ini drill_repeat)",
            id="repeat-zero",
        ),
        pytest.param(
            "--drill-notify-approval=maybe",
            "ERROR: --drill-notify-approval: invalid value 'maybe'; valid values are auto, never*",
            id="approval",
        ),
        pytest.param(
            "--drill-failure-threshold=three",
            "ERROR: --drill-failure-threshold: invalid value 'three'; give a whole number*",
            id="threshold-not-a-number",
        ),
    ],
)
def test_bad_cli_value_is_usage_error(pytester: pytest.Pytester, arg: str, message: str) -> None:
    """A bad flag value stops the run with a usage error naming the flag, ini key and fix."""
    pytester.makepyfile("def test_never_runs(): pass")
    result = pytester.runpytest(arg)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        pytest.param(
            "drill",
            "yearly",
            f"ERROR: ini key drill: invalid value 'yearly'; valid values are {CADENCES}*",
            id="drill",
        ),
        pytest.param(
            "drill_backend",
            "k8s",
            "ERROR: ini key drill_backend: invalid value 'k8s'; valid values are auto, local*",
            id="backend",
        ),
        pytest.param(
            "drill_observe",
            "a while",
            "ERROR: ini key drill_observe: *cannot read 'a while' as a duration*",
            id="observe",
        ),
        pytest.param(
            "drill_failure_threshold",
            "0",
            "ERROR: ini key drill_failure_threshold: invalid value '0'; give a whole number*",
            id="threshold",
        ),
    ],
)
def test_bad_ini_value_is_usage_error(
    pytester: pytest.Pytester, key: str, value: str, message: str
) -> None:
    """A bad ini value stops the run with a usage error naming the ini key."""
    pytester.makeini(ini(**{key: value}))
    pytester.makepyfile("def test_never_runs(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_duration_error_names_the_flag_once(pytester: pytest.Pytester) -> None:
    """A bad duration's message starts with the flag once, not twice."""
    result = pytester.runpytest("--drill-observe=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --drill-observe: cannot read 'soon' as a duration*"])


def test_missing_targets_file_is_usage_error(pytester: pytest.Pytester) -> None:
    """``--drill`` with a targets path that does not exist names the path and the flag."""
    pytester.makepyfile("def test_never_runs(): pass")
    result = pytester.runpytest("--drill=daily", "--drill-targets=missing.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: drill targets file {pytester.path / 'missing.yaml'} does not exist.*"
            "--drill-targets / ini drill_targets*"
        ]
    )


def test_malformed_targets_file_is_usage_error(pytester: pytest.Pytester) -> None:
    """A targets file with a misspelt key is refused, naming the file, the key and the fix."""
    bad = pytester.makefile(
        ".yaml",
        targets="schema_version: 1\nmtd: 20_minutes\n"
        "tiers:\n  tier_1_critical:\n    target: 15_minutes\n    maximun_acceptable: 30_minutes\n",
    )
    pytester.makepyfile("def test_never_runs(): pass")
    result = pytester.runpytest("--drill=daily", f"--drill-targets={bad.name}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: invalid targets file {bad}: tiers.tier_1_critical.maximun_acceptable: "
            "unknown key 'maximun_acceptable' in a tier",
            "Hint: did you mean 'maximum_acceptable'?*",
        ]
    )


def test_targets_file_with_yaml_error_is_usage_error(pytester: pytest.Pytester) -> None:
    """A targets file that is not valid YAML is refused, naming the file and the line."""
    bad = pytester.makefile(".yaml", targets="schema_version: 1\ntiers: [unclosed\nmtd: 1h\n")
    pytester.makepyfile("def test_never_runs(): pass")
    result = pytester.runpytest("--drill=daily", f"--drill-targets={bad.name}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: invalid targets file {bad}: YAML error at line *"])


# --- plugin registration --------------------------------------------------------------------------


def test_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    """``-p no:drdrill`` unloads the plugin, so ``--drill`` is an unknown argument."""
    pytester.makepyfile("def test_never_runs(): pass")
    result = pytester.runpytest("-p", "no:drdrill", "--drill=monthly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --drill=monthly*"])


def test_help_lists_the_drdrill_group(pytester: pytest.Pytester) -> None:
    """``pytest --help`` shows the drdrill group with every flag, and the ini keys."""
    result = pytester.runpytest("--help")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "disaster-recovery drills:",
            "  --drill=VALUE *run disaster-recovery drills of this cadence*",
            "  --drill-backend=VALUE*",
            "  --drill-targets=VALUE*",
            "  --drill-report-dir=VALUE*",
            "  --drill-observe=VALUE*",
            "  --drill-health-interval=VALUE*",
            "  --drill-health-timeout=VALUE*",
            "  --drill-failure-threshold=VALUE*",
            "  --drill-skip-negative-controls*",
            "  --drill-pg-bin=VALUE*",
            "  --drill-run-as=VALUE*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "  drill (string):*",
            "  drill_backend (string):*",
            "  drill_observe (string):*",
            "  drill_skip_negative_controls (bool):*",
            "  drill_run_as (string):*",
        ]
    )


def test_markers_lists_drdrill(pytester: pytest.Pytester) -> None:
    """``pytest --markers`` documents the drdrill marker and its arguments."""
    result = pytester.runpytest("--markers")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.drdrill(cadence='monthly', tier=None, function=None, data=None, "
            "scenario=None, max_lost_writes=None, negative_control=False, observe=None, "
            "service='postgres', postgres_failover=None, patroni=None, backup_tool=None, "
            "guardrails=None, redis_failover=None): "
            "a disaster-recovery drill, run by --drill=CADENCE*"
        ]
    )


def test_marker_is_registered_for_strict_markers(pytester: pytest.Pytester) -> None:
    """A drdrill-marked test passes ``--strict-markers``."""
    pytester.makepyfile(DAILY_DRILL)
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(skipped=1)


def test_enforce_cadence_from_cli(pytester: pytest.Pytester) -> None:
    """``--drill-enforce-cadence`` turns cadence enforcement on."""
    result = print_config(pytester, "--drill-enforce-cadence")
    result.stdout.fnmatch_lines(["DRDRILL enforce_cadence=True"])


def test_enforce_cadence_from_ini(pytester: pytest.Pytester) -> None:
    """``drill_enforce_cadence = true`` turns cadence enforcement on."""
    pytester.makeini(ini(drill_enforce_cadence="true"))
    result = print_config(pytester)
    result.stdout.fnmatch_lines(["DRDRILL enforce_cadence=True"])


def test_notify_templates_path(pytester: pytest.Pytester) -> None:
    """``--drill-notify-templates`` is a path, resolved from where pytest runs."""
    result = print_config(pytester, "--drill-notify-templates=comms")
    result.stdout.fnmatch_lines([f"DRDRILL notify_templates={pytester.path / 'comms'}"])


def test_bad_notify_sink_is_usage_error(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """An unreadable sink spec stops a drill run before any server starts."""
    pytester.makepyfile(DAILY_DRILL)
    result = pytester.runpytest("--drill=daily", "--drill-notify=carrier-pigeon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *carrier-pigeon*--drill-notify*"])


def test_repeat_runs_each_drill_n_times(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """``--drill-repeat=3`` runs every selected drill three times, ids r1..r3; others once."""
    pytester.makepyfile(
        DAILY_DRILL
        + "\n\ndef test_plain(): pass\n\n"
        + "@pytest.mark.drdrill(cadence='daily', tier='tier_1_critical')\n"
        + "def test_which(drdrill_repeat):\n    print('REPEAT', drdrill_repeat)\n"
    )
    result = pytester.runpytest("-v", "-s", "--drill=daily", "--drill-repeat=3")
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(["*test_daily_drill[[]r1[]] PASSED*", "*test_daily_drill[[]r3[]]*"])
    assert result.stdout.str().count("REPEAT") == 3
    assert "test_plain[" not in result.stdout.str()
