"""Choosing the HA stack: its options and the marker's keys.

``--drill-postgres-failover``, ``--drill-patroni-config`` and the marker's
``postgres_failover=``, ``patroni=`` and ``redis_failover=``. Nothing here starts a server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# Plain marked tests: selection and usage errors need neither PostgreSQL nor Patroni.
DRILLS = """
import pytest


@pytest.mark.drdrill(cadence="daily", tier="tier_1_critical")
def test_any_stack():
    pass


@pytest.mark.drdrill(cadence="daily", tier="tier_1_critical", postgres_failover=("patroni",))
def test_patroni_only():
    pass


@pytest.mark.drdrill(cadence="daily", tier="tier_1_critical", postgres_failover=("reference",))
def test_reference_only():
    pass
"""

PRINT_HA = """
def test_print(drdrill_config):
    print("HA", drdrill_config.postgres_failover, drdrill_config.patroni_config)
"""


def test_default_is_the_reference(pytester: pytest.Pytester) -> None:
    """Without the flag the reference fails PostgreSQL over; the README's first command stays."""
    pytester.makepyfile(PRINT_HA)
    result = pytester.runpytest("-s")
    result.stdout.fnmatch_lines(["*HA reference None"])


def test_flag_and_ini_select_patroni(pytester: pytest.Pytester) -> None:
    """The ini key works like the flag, and the flag wins."""
    pytester.makepyfile(PRINT_HA)
    pytester.makeini("[pytest]\ndrill_postgres_failover = Patroni\n")
    pytester.runpytest("-s").stdout.fnmatch_lines(["*HA patroni None"])
    result = pytester.runpytest("-s", "--drill-postgres-failover=reference")
    result.stdout.fnmatch_lines(["*HA reference None"])


def test_unknown_stack_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """The error names the flag, the ini key and the valid values."""
    pytester.makepyfile(PRINT_HA)
    result = pytester.runpytest("--drill-postgres-failover=stolon")
    result.stderr.fnmatch_lines(
        [
            "ERROR: --drill-postgres-failover: invalid value 'stolon'; valid values are "
            "reference, patroni, repmgr, pg_auto_failover (set with --drill-postgres-failover / "
            "ini drill_postgres_failover)"
        ]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_drills_of_one_stack_are_skipped_under_the_other(
    pytester: pytest.Pytester, targets_yaml: Path
) -> None:
    """A drill names the stacks it runs under; under another it is skipped with the flag to use."""
    pytester.makepyfile(DRILLS)
    result = pytester.runpytest("--drill=daily", "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED * drill of patroni failover, not run under "
            "--drill-postgres-failover=reference: run with --drill-postgres-failover=patroni"
        ]
    )
    result = pytester.runpytest("--drill=daily", "--drill-postgres-failover=patroni", "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * drill of reference failover, not run under *"])


def test_the_header_names_the_stack(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """The run header says who fails PostgreSQL over."""
    pytester.makepyfile(DRILLS)
    result = pytester.runpytest("--drill=daily", "--drill-postgres-failover=patroni")
    result.stdout.fnmatch_lines(["drdrill: postgres failover patroni"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            "postgres_failover='stolon'",
            "*postgres_failover='stolon'; give one of reference, patroni, repmgr, pg_auto_failover "
            "(the drill always "
            "runs under it), or a tuple of them*",
            id="unknown-stack",
        ),
        pytest.param(
            "patroni={'ttl': 5, 'loop_wait': 2, 'retry_timeout': 2}",
            "*patroni=*loop_wait + 2 * retry_timeout <= ttl*",
            id="patroni-rule",
        ),
        pytest.param(
            "redis_failover='cluster'",
            "*redis_failover='cluster'; give one of orchestrator, sentinel (the drill always runs "
            "with it), or leave it out (--drill-redis-failover decides)",
            id="unknown-redis-failover",
        ),
        pytest.param(
            "patroni={'tll': 20}",
            "*patroni=*tll: unknown setting*",
            id="patroni-typo",
        ),
    ],
)
def test_bad_marker_keys_are_usage_errors(
    pytester: pytest.Pytester, targets_yaml: Path, kwargs: str, message: str
) -> None:
    """A bad key is caught at collection, naming the test, the key and the fix."""
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.drdrill(cadence="quarterly", tier="tier_1_critical", {kwargs})
        def test_drill():
            pass
        """
    )
    result = pytester.runpytest("--drill=daily")
    result.stderr.fnmatch_lines(
        [f"ERROR: @pytest.mark.drdrill on test_*.py::test_drill: {message}"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("ttl: 5\nloop_wait: 2\nretry_timeout: 2\n", "*loop_wait*ttl*", id="rule"),
        pytest.param("maximum_lag_on_failvoer: 1\n", "*maximum_lag_on_failvoer*", id="typo"),
        pytest.param("tags:\n  pg-9:\n    nofailover: true\n", "*tags.pg-9*", id="member"),
    ],
)
def test_bad_patroni_settings_file_is_a_usage_error(
    pytester: pytest.Pytester, targets_yaml: Path, content: str, message: str
) -> None:
    """The error names the option, the file and the key, before any drill starts."""
    settings = pytester.path / "patroni.yml"
    settings.write_text(content)
    pytester.makepyfile(DRILLS)
    result = pytester.runpytest("--drill=daily", f"--drill-patroni-config={settings}")
    result.stderr.fnmatch_lines(
        [f"ERROR: --drill-patroni-config / ini drill_patroni_config: {settings}: {message}"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_missing_patroni_settings_file_names_the_option(
    pytester: pytest.Pytester, targets_yaml: Path
) -> None:
    """A path that is not there says so, with the option to check."""
    pytester.makepyfile(DRILLS)
    result = pytester.runpytest("--drill=daily", "--drill-patroni-config=nowhere.yml")
    result.stderr.fnmatch_lines(
        ["ERROR: --drill-patroni-config*nowhere.yml: cannot read the Patroni settings file*"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


HOOK_ORDER = """
import pytest


class TeamRunbook:
    @pytest.hookimpl
    def pytest_drdrill_region_failover(self, topology, record, detection):
        return None


def pytest_configure(config):
    config.pluginmanager.register(TeamRunbook(), "team-runbook")
"""

PRINT_ORDER = """
def test_order(pytestconfig):
    impls = pytestconfig.pluginmanager.hook.pytest_drdrill_region_failover.get_hookimpls()
    # pluggy calls the last one first
    print("ORDER", " > ".join(impl.plugin_name for impl in reversed(impls)))
"""


def test_patroni_region_failover_is_called_after_a_teams_and_before_the_reference(
    pytester: pytest.Pytester, targets_yaml: Path
) -> None:
    """A team's region runbook answers first, then Patroni's (on its topologies), then ours."""
    pytester.makeconftest(HOOK_ORDER)
    pytester.makepyfile(PRINT_ORDER)
    result = pytester.runpytest("-s", "--drill=daily")
    result.stdout.fnmatch_lines(
        ["*ORDER team-runbook > drdrill-patroni-region-failover > drdrill-reference-failover"]
    )


SENTINEL_DRILL = """
import pytest


@pytest.mark.drdrill(cadence="daily", tier="tier_1_critical", redis_failover="sentinel")
def test_sentinel_drill():
    pass
"""


def test_sentinel_drills_run_on_the_local_backend_only(
    pytester: pytest.Pytester, targets_yaml: Path
) -> None:
    """A drill forcing Sentinel is skipped on another backend, naming the backend to use."""
    pytester.makepyfile(SENTINEL_DRILL)
    result = pytester.runpytest("--drill=daily", "-rs")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest("--drill=daily", "--drill-backend=docker", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED * drill of Redis Sentinel's failover, which only the local backend runs "
            "(not --drill-backend=docker): run with --drill-backend=local"
        ]
    )
