"""``--drill-repmgr-config``: the team's repmgr settings, checked before any cluster starts.

Nothing here starts a server: every error comes at configuration time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

DRILL = """
import pytest


@pytest.mark.drdrill(cadence="daily", tier="tier_1_critical")
def test_any_stack():
    pass
"""

PRINT_HA = """
def test_print(drdrill_config):
    print("REPMGR", drdrill_config.repmgr_config)
"""


def test_flag_and_ini_name_the_file(pytester: pytest.Pytester) -> None:
    """The ini key is resolved against the ini file's directory; the flag wins."""
    pytester.makepyfile(PRINT_HA)
    pytester.makeini("[pytest]\ndrill_repmgr_config = team/repmgr.yml\n")
    result = pytester.runpytest("-s")
    result.stdout.fnmatch_lines([f"*REPMGR {pytester.path / 'team' / 'repmgr.yml'}"])
    result = pytester.runpytest("-s", f"--drill-repmgr-config={pytester.path / 'x.conf'}")
    result.stdout.fnmatch_lines([f"*REPMGR {pytester.path / 'x.conf'}"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("reconect_attempts: 3\n", "reconect_attempts: unknown setting; *", id="typo"),
        pytest.param(
            "reconnect_interval: 'fast'\n",
            "reconnect_interval: str 'fast' is not allowed: use a whole number of seconds >= 1",
            id="type",
        ),
        pytest.param(
            "reconnect_interval: 0\n",
            "reconnect_interval: int 0 is not allowed: use a whole number of seconds >= 1",
            id="zero-interval",
        ),
        pytest.param(
            "monitor_interval_secs=-2\n",
            "monitor_interval_secs: int -2 is not allowed: use a whole number of seconds >= 1",
            id="negative-interval-repmgr-conf",
        ),
        pytest.param(
            "failover=manual\n",
            "failover: 'manual': repmgrd never promotes a standby, * set failover: automatic *",
            id="manual",
        ),
        pytest.param(
            "failover: sometimes\n",
            "failover: str 'sometimes' is not allowed: use automatic or manual",
            id="failover-value",
        ),
        pytest.param(
            "primary_visibility_consensus: 'yes please'\n",
            "primary_visibility_consensus: str 'yes please' is not allowed: use true or false",
            id="bool",
        ),
        pytest.param(
            "reconnect_attempts: 2\nreconnect_interval: 1\n",
            "reconnect_attempts: reconnect_attempts × reconnect_interval = 2 s does not "
            "outlast the visibility veto (2 × monitor_interval_secs = 2 s)*",
            id="veto",
        ),
        pytest.param(
            "conninfo='host=db1'\n",
            "conninfo: the drill sets it from its own cluster (ports, paths, node ids): remove it",
            id="drill-owned",
        ),
        pytest.param(
            "nodes:\n  pg-9:\n    priority: 10\n",
            "nodes.pg-9: no such node; use one of *",
            id="node",
        ),
        pytest.param(
            "nodes:\n  pg-sync:\n    priority: -1\n",
            "nodes.pg-sync.priority: int -1 is not allowed: use a whole number >= 0",
            id="node-priority",
        ),
        pytest.param("- 1\n- 2\n", "the file must be a mapping of settings, not list*", id="list"),
    ],
)
def test_bad_repmgr_settings_file_is_a_usage_error(
    pytester: pytest.Pytester, targets_yaml: Path, content: str, message: str
) -> None:
    """The error names the option, the file, the key and the fix, before any drill starts."""
    settings = pytester.path / "repmgr.yml"
    settings.write_text(content)
    pytester.makepyfile(DRILL)
    result = pytester.runpytest(
        "--drill=daily", "--drill-postgres-failover=repmgr", f"--drill-repmgr-config={settings}"
    )
    result.stderr.fnmatch_lines(
        [f"ERROR: --drill-repmgr-config / ini drill_repmgr_config: {settings}: {message}"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_unreadable_repmgr_settings_file_names_the_option(
    pytester: pytest.Pytester, targets_yaml: Path
) -> None:
    """A path that is not there says so, with the option to check."""
    pytester.makepyfile(DRILL)
    result = pytester.runpytest("--drill=daily", "--drill-repmgr-config=nowhere.conf")
    result.stderr.fnmatch_lines(
        [
            "ERROR: --drill-repmgr-config / ini drill_repmgr_config: *nowhere.conf: cannot read "
            "the repmgr settings file (No such file or directory). Check the path given to "
            "--drill-repmgr-config."
        ]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_good_file_reaches_the_provider(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """A good file passes configuration and the repmgr provider gets its settings per node."""
    settings = pytester.path / "repmgr.conf"
    settings.write_text(
        "# the team's repmgr.conf, as its servers run it\n"
        "reconnect_attempts=4\nreconnect_interval=2\nmonitor_interval_secs=2\n"
        "failover='automatic'\nlog_level='NOTICE'\n"
    )
    pytester.makepyfile(
        """
        import pytest
        from pytest_drdrill import assembly
        from pytest_drdrill.stash import config_key, repmgr_settings_key

        @pytest.mark.drdrill(cadence="daily", tier="tier_1_critical")
        def test_provider(pytestconfig):
            ha = assembly.postgres_ha(
                pytestconfig.stash[config_key],
                repmgr_settings=pytestconfig.stash[repmgr_settings_key],
            )
            print("SETTINGS", ha.name, sorted(ha.settings["*"].items()))
        """
    )
    result = pytester.runpytest(
        "-s",
        "--drill=daily",
        "--drill-postgres-failover=repmgr",
        f"--drill-repmgr-config={settings}",
    )
    assert (
        "SETTINGS repmgr [('failover', 'automatic'), ('log_level', 'NOTICE'), "
        "('monitor_interval_secs', 2), ('reconnect_attempts', 4), ('reconnect_interval', 2)]"
    ) in result.stdout.str()
    assert result.ret == pytest.ExitCode.OK
