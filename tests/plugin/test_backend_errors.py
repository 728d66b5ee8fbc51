"""Errors of the local backend reach the user as one clear line naming the setting to change."""

from __future__ import annotations


def test_missing_postgresql_binaries_name_the_flag_and_the_package(pytester, targets_yaml):
    """A wrong --drill-pg-bin fails the drill's setup with the remedy, not a traceback."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.drdrill(cadence="daily", tier="tier_1_critical")
        def test_drill(drdrill):
            pass
        """
    )
    result = pytester.runpytest(
        "--drill=daily",
        "--drill-backend=local",
        f"--drill-pg-bin={pytester.path / 'nowhere'}",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "drill backend 'local' could not start: PostgreSQL binaries initdb, postgres, "
            "pg_basebackup not found in */nowhere. Install PostgreSQL server binaries "
            "(Debian: apt-get install postgresql-15) or point --drill-pg-bin / drill_pg_bin*",
        ]
    )
    result.stdout.no_fnmatch_line("*During handling of the above exception*")


def test_drdrill_fixture_without_marker_says_which_marker_to_add(pytester, targets_yaml):
    """Using the drdrill fixture in an unmarked test explains the marker it needs."""
    pytester.makepyfile(
        """
        def test_unmarked(drdrill):
            pass
        """
    )
    result = pytester.runpytest("--drill=daily", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*uses a drdrill fixture but has no @pytest.mark.drdrill(...)*"])
