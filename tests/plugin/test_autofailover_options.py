"""``--drill-pg-auto-failover-config``: the team's pg_auto_failover settings, checked early.

Nothing here starts a server: every error comes at configuration time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

OPTION = "--drill-pg-auto-failover-config"
INI = "drill_pg_auto_failover_config"

DRILL = """
import pytest


@pytest.mark.drdrill(cadence="daily", tier="tier_1_critical")
def test_any_stack():
    pass
"""


def test_flag_and_ini_name_the_file(pytester: pytest.Pytester) -> None:
    """The ini key is resolved against the ini file's directory; the flag wins."""
    pytester.makepyfile(
        """
        def test_print(drdrill_config):
            print("PGAF", drdrill_config.pg_auto_failover_config)
        """
    )
    pytester.makeini(f"[pytest]\n{INI} = team/pgaf.yml\n")
    result = pytester.runpytest("-s")
    result.stdout.fnmatch_lines([f"*PGAF {pytester.path / 'team' / 'pgaf.yml'}"])
    result = pytester.runpytest("-s", f"{OPTION}={pytester.path / 'x.yml'}")
    result.stdout.fnmatch_lines([f"*PGAF {pytester.path / 'x.yml'}"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            "health_check_perod: 1000\n",
            "health_check_perod: unknown setting; allowed: *",
            id="typo",
        ),
        pytest.param(
            "pgautofailover.health_check_period: 0\n",
            "pgautofailover.health_check_period: int 0 is not allowed: use a whole number of "
            "milliseconds >= 1",
            id="prefixed-zero",
        ),
        pytest.param(
            "primary_demote_timeout: '30s'\n",
            "primary_demote_timeout: str '30s' is not allowed: use a whole number of "
            "milliseconds >= 1",
            id="unit-in-value",
        ),
        pytest.param(
            "pgport: 5432\n",
            "pgport: the drill sets it from its own cluster (ports, paths, the monitor): remove it",
            id="drill-owned",
        ),
        pytest.param(
            "nodes:\n  pg-sync:\n    candidate_priority: 101\n",
            "nodes.pg-sync.candidate_priority: int 101 is not allowed: use a whole number "
            "from 0 to 100",
            id="priority-range",
        ),
        pytest.param(
            "nodes:\n  pg-sync:\n    replication_quorum: maybe\n",
            "nodes.pg-sync.replication_quorum: str 'maybe' is not allowed: use true or false",
            id="quorum-bool",
        ),
        pytest.param(
            "nodes:\n  pg-4:\n    candidate_priority: 10\n",
            "nodes.pg-4: no such node; use one of pg-primary, pg-sync, pg-dr",
            id="node",
        ),
        pytest.param(
            "nodes:\n  pg-sync:\n    candidate_priority: 0\n",
            "nodes: every standby (pg-sync, pg-dr) has candidate_priority 0: pg_auto_failover "
            "never promotes one, * give the synchronous standby a candidate_priority above 0 *",
            id="no-candidate",
        ),
        pytest.param(
            "number_sync_standbys: 1\n",
            "number_sync_standbys: 1 needs 2 standbys with replication_quorum true and the "
            "cluster has 1 (the monitor refuses it); lower number_sync_standbys or set "
            "replication_quorum: true on more nodes",
            id="sync-standbys",
        ),
        pytest.param("- 1\n", "the file must be a mapping of settings, not list*", id="list"),
        pytest.param("a: [\n", "not valid YAML: *", id="yaml"),
    ],
)
def test_bad_settings_file_is_a_usage_error(
    pytester: pytest.Pytester, targets_yaml: Path, content: str, message: str
) -> None:
    """The error names the option, the file, the key and the fix, before any drill starts."""
    settings = pytester.path / "pgaf.yml"
    settings.write_text(content)
    pytester.makepyfile(DRILL)
    result = pytester.runpytest(
        "--drill=daily", "--drill-postgres-failover=pg_auto_failover", f"{OPTION}={settings}"
    )
    result.stderr.fnmatch_lines([f"ERROR: {OPTION} / ini {INI}: {settings}: {message}"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_unreadable_file_names_the_option(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """A path that is not there says so, with the option to check."""
    pytester.makepyfile(DRILL)
    result = pytester.runpytest("--drill=daily", f"{OPTION}=nowhere.yml")
    result.stderr.fnmatch_lines(
        [
            f"ERROR: {OPTION} / ini {INI}: *nowhere.yml: cannot read the pg_auto_failover "
            f"settings file (No such file or directory). Check the path given to {OPTION}."
        ]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_good_file_reaches_the_provider(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """A good file passes configuration and the provider gets the cluster's settings."""
    settings = pytester.path / "pgaf.yml"
    settings.write_text(
        "pgautofailover.health_check_period: 2000\nprimary_demote_timeout: 5000\n"
        "number_sync_standbys: 1\n"
        "nodes:\n  pg-dr: {replication_quorum: true}\n  pg-sync: {candidate_priority: 70}\n"
    )
    pytester.makepyfile(
        """
        import pytest
        from pytest_drdrill import assembly
        from pytest_drdrill.stash import autofailover_settings_key, config_key

        @pytest.mark.drdrill(cadence="daily", tier="tier_1_critical")
        def test_provider(pytestconfig):
            ha = assembly.postgres_ha(
                pytestconfig.stash[config_key],
                autofailover_settings=pytestconfig.stash[autofailover_settings_key],
            )
            print("SETTINGS", ha.name, sorted(ha.settings.items()))
        """
    )
    result = pytester.runpytest(
        "-s", "--drill=daily", "--drill-postgres-failover=pg_auto_failover", f"{OPTION}={settings}"
    )
    assert (
        "SETTINGS pg_auto_failover [('monitor_settings', {'pgautofailover.health_check_period': "
        "2000, 'pgautofailover.primary_demote_timeout': 5000}), ('number_sync_standbys', 1), "
        "('priorities', {'pg-sync': 70}), ('quorums', {'pg-dr': True})]"
    ) in result.stdout.str()
    assert result.ret == pytest.ExitCode.OK
