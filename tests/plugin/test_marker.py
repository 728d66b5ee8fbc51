"""The ``drdrill`` marker: which drills a cadence selects, and how bad markers are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

# Plain marked tests: selection needs neither PostgreSQL nor the drdrill fixtures.
DRILLS = """
import pytest


@pytest.mark.drdrill(cadence="daily", tier="tier_1_critical")
def test_daily():
    pass


@pytest.mark.drdrill(cadence="weekly", tier="tier_2_high", data="video_content")
def test_weekly():
    pass


@pytest.mark.drdrill(tier="tier_3_medium")
def test_monthly():
    pass


@pytest.mark.drdrill(cadence="quarterly", function="user_authentication")
def test_quarterly():
    pass


def test_unmarked():
    pass
"""

NEGATIVE_CONTROLS = """
import pytest


@pytest.mark.drdrill(cadence="daily", tier="tier_1_critical")
def test_positive():
    pass


@pytest.mark.drdrill(cadence="daily", tier="tier_1_critical", negative_control=True)
def test_negative():
    pass


@pytest.mark.drdrill(cadence="quarterly", tier="tier_1_critical", negative_control=True)
def test_negative_quarterly():
    pass
"""


def run_drills(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run the DRILLS module verbosely, with skip reasons in the summary."""
    pytester.makepyfile(test_drills=DRILLS)
    return pytester.runpytest("-v", "-rs", *args)


def ini(**keys: str) -> str:
    """Return an ini file's ``[pytest]`` section setting ``keys``."""
    return "[pytest]\n" + "".join(f"{key} = {value}\n" for key, value in keys.items())


# --- selection by cadence -------------------------------------------------------------------------


def test_without_drill_marked_tests_are_skipped(pytester: pytest.Pytester) -> None:
    """Without ``--drill`` every drill is skipped with how to run it; unmarked tests run."""
    result = run_drills(pytester)
    result.assert_outcomes(passed=1, skipped=4)
    result.stdout.fnmatch_lines(
        [
            "*::test_daily SKIPPED*",
            "*::test_weekly SKIPPED*",
            "*::test_monthly SKIPPED*",
            "*::test_quarterly SKIPPED*",
            "*::test_unmarked PASSED*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "SKIPPED * daily disaster-recovery drill: run with --drill=daily "
            "(or a less frequent cadence) to execute it",
            "SKIPPED * monthly disaster-recovery drill: run with --drill=monthly "
            "(or a less frequent cadence) to execute it",
        ]
    )


def test_drill_monthly_runs_daily_weekly_and_monthly(
    pytester: pytest.Pytester, targets_yaml: Path
) -> None:
    """``--drill=monthly`` runs daily, weekly and monthly drills and skips quarterly ones."""
    result = run_drills(pytester, "--drill=monthly")
    result.assert_outcomes(passed=4, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*::test_daily PASSED*",
            "*::test_weekly PASSED*",
            "*::test_monthly PASSED*",
            "*::test_quarterly SKIPPED*",
            "*::test_unmarked PASSED*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "SKIPPED * quarterly drill not selected by --drill=monthly; "
            "run with --drill=quarterly to include it"
        ]
    )


def test_drill_daily_runs_only_daily(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """``--drill=daily`` runs only daily drills (and unmarked tests)."""
    result = run_drills(pytester, "--drill=daily")
    result.assert_outcomes(passed=2, skipped=3)
    result.stdout.fnmatch_lines(
        [
            "*::test_daily PASSED*",
            "*::test_weekly SKIPPED*",
            "*::test_monthly SKIPPED*",
            "*::test_quarterly SKIPPED*",
            "*::test_unmarked PASSED*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["SKIPPED * weekly drill not selected by --drill=daily; run with --drill=weekly*"]
    )


def test_drill_quarterly_runs_everything(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """``--drill=quarterly`` runs drills of every cadence."""
    result = run_drills(pytester, "--drill=quarterly")
    result.assert_outcomes(passed=5)


def test_ini_drill_selects_like_cli(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """The ini key ``drill = weekly`` runs daily and weekly drills and skips the rest."""
    pytester.makeini(ini(drill="weekly"))
    result = run_drills(pytester)
    result.assert_outcomes(passed=3, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*::test_daily PASSED*",
            "*::test_weekly PASSED*",
            "*::test_monthly SKIPPED*",
            "*::test_quarterly SKIPPED*",
            "*::test_unmarked PASSED*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["SKIPPED * monthly drill not selected by --drill=weekly; run with --drill=monthly*"]
    )


def test_cli_drill_overrides_ini(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """``--drill`` on the command line wins over the ``drill`` ini key."""
    pytester.makeini(ini(drill="daily"))
    result = run_drills(pytester, "--drill=quarterly")
    result.assert_outcomes(passed=5)


def test_closest_marker_wins(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """A function's own marker overrides a module-level ``pytestmark`` drill marker."""
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.drdrill(cadence="quarterly", tier="tier_4_low")


        def test_module_cadence():
            pass


        @pytest.mark.drdrill(cadence="daily", tier="tier_1_critical")
        def test_own_cadence():
            pass
        """
    )
    result = pytester.runpytest("-v", "--drill=daily")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*::test_module_cadence SKIPPED*", "*::test_own_cadence PASSED*"])


# --- negative controls ----------------------------------------------------------------------------


def test_negative_controls_run_by_default(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """A selected negative-control drill runs by default: it is the evidence drills can fail."""
    pytester.makepyfile(test_neg=NEGATIVE_CONTROLS)
    result = pytester.runpytest("-v", "-rs", "--drill=monthly")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*::test_positive PASSED*",
            "*::test_negative PASSED*",
            "*::test_negative_quarterly SKIPPED*",
        ]
    )
    result.stdout.fnmatch_lines(["SKIPPED * quarterly drill not selected by --drill=monthly*"])


def test_negative_controls_skipped_from_cli(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """``--drill-skip-negative-controls`` skips them, saying which flag did."""
    pytester.makepyfile(test_neg=NEGATIVE_CONTROLS)
    result = pytester.runpytest("-v", "-rs", "--drill=monthly", "--drill-skip-negative-controls")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED * negative control (recovery deliberately broken; it must go red) skipped "
            "by --drill-skip-negative-controls / ini drill_skip_negative_controls"
        ]
    )


def test_negative_controls_skipped_from_ini(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """``drill_skip_negative_controls = true`` skips them."""
    pytester.makeini(ini(drill_skip_negative_controls="true"))
    pytester.makepyfile(test_neg=NEGATIVE_CONTROLS)
    result = pytester.runpytest("-v", "--drill=monthly")
    result.assert_outcomes(passed=1, skipped=2)


def test_negative_controls_without_drill_are_skipped(pytester: pytest.Pytester) -> None:
    """Without ``--drill`` no drill runs, negative controls included."""
    pytester.makepyfile(test_neg=NEGATIVE_CONTROLS)
    result = pytester.runpytest()
    result.assert_outcomes(skipped=3)


# --- marker validation ----------------------------------------------------------------------------

BAD_MARKERS = [
    pytest.param(
        "tier='tier_9_imaginary'",
        "ERROR: @pytest.mark.drdrill on test_drill.py::test_x: unknown tier 'tier_9_imaginary': "
        "* defines these under tiers: tier_1_critical, tier_2_high, tier_3_medium, tier_4_low*",
        id="unknown-tier",
    ),
    pytest.param(
        "function='user_auth'",
        "ERROR: @pytest.mark.drdrill on test_drill.py::test_x: unknown business function "
        "'user_auth': *under business_functions: user_authentication, *"
        "(did you mean 'user_authentication'?)*",
        id="unknown-function",
    ),
    pytest.param(
        "tier='tier_1_critical', data='critical_data'",
        "ERROR: @pytest.mark.drdrill on test_drill.py::test_x: unknown data category "
        "'critical_data': *under data_categories: critical_user_data, *",
        id="unknown-data-category",
    ),
    pytest.param(
        "tier='tier_1_critical', function='user_authentication'",
        "ERROR: @pytest.mark.drdrill on test_drill.py::test_x: name exactly one of tier= "
        "(e.g. 'tier_1_critical') or function= (e.g. 'user_authentication') "
        "from */fixtures/targets.yaml",
        id="tier-and-function",
    ),
    pytest.param(
        "cadence='daily'",
        "ERROR: @pytest.mark.drdrill on test_drill.py::test_x: name exactly one of tier= *",
        id="neither-tier-nor-function",
    ),
    pytest.param(
        "tiers='tier_1_critical'",
        "ERROR: @pytest.mark.drdrill on test_drill.py::test_x: unknown argument(s) ['tiers']; "
        "valid: ['backup_tool', 'cadence', 'data', 'function', 'guardrails', 'max_lost_writes', "
        "'negative_control', 'observe', 'patroni', 'postgres_failover', 'redis_failover', "
        "'scenario', 'service', 'tier']",
        id="unknown-argument",
    ),
    pytest.param(
        "cadence='yearly', tier='tier_1_critical'",
        "ERROR: @pytest.mark.drdrill on test_drill.py::test_x: cadence='yearly'; "
        "valid cadences: daily, weekly, monthly, quarterly",
        id="bad-cadence",
    ),
    pytest.param(
        "'monthly', tier='tier_1_critical'",
        "ERROR: @pytest.mark.drdrill on test_drill.py::test_x: pass keyword arguments only, "
        "e.g. cadence='monthly', tier='tier_1_critical'",
        id="positional-args",
    ),
    pytest.param(
        "function='user_authentication', data='critical_user_data'",
        "ERROR: *test_x: data='critical_user_data' was given with function='user_authentication'*",
        id="data-with-function",
    ),
    pytest.param(
        "tier='tier_1_critical', max_lost_writes=-1",
        "ERROR: *test_x: max_lost_writes=-1; give a whole number of writes*",
        id="negative-max-lost-writes",
    ),
]


def make_drill(pytester: pytest.Pytester, marker_args: str) -> None:
    """Write ``test_drill.py`` with one test marked ``drdrill(marker_args)``."""
    pytester.makepyfile(
        test_drill=f"""
        import pytest


        @pytest.mark.drdrill({marker_args})
        def test_x():
            pass
        """
    )


@pytest.mark.parametrize(("marker_args", "message"), BAD_MARKERS)
def test_bad_marker_is_usage_error(
    pytester: pytest.Pytester, targets_yaml: Path, marker_args: str, message: str
) -> None:
    """With ``--drill``, a bad drdrill marker stops the run naming the test and the fix."""
    make_drill(pytester, marker_args)
    result = pytester.runpytest("--drill=monthly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_bad_marker_refused_even_when_cadence_skips_it(
    pytester: pytest.Pytester, targets_yaml: Path
) -> None:
    """A typo in a quarterly drill's tier is caught by ``--drill=daily`` too."""
    make_drill(pytester, "cadence='quarterly', tier='tier_1_critcal'")
    result = pytester.runpytest("--drill=daily")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: *test_x: unknown tier 'tier_1_critcal'*(did you mean 'tier_1_critical'?)*"]
    )


@pytest.mark.parametrize(
    ("marker_args", "message"),
    [p for p in BAD_MARKERS if p.id in ("unknown-argument", "bad-cadence", "positional-args")],
)
def test_malformed_marker_refused_without_drill(
    pytester: pytest.Pytester, marker_args: str, message: str
) -> None:
    """Without ``--drill``, a marker with bad arguments or cadence is still a usage error."""
    make_drill(pytester, marker_args)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_target_names_unchecked_without_drill(pytester: pytest.Pytester) -> None:
    """Without ``--drill`` the targets file is not read, so an unknown tier is only skipped."""
    make_drill(pytester, "tier='tier_9_imaginary'")
    result = pytester.runpytest()
    result.assert_outcomes(skipped=1)


def test_marker_observe_accepts_a_duration(pytester: pytest.Pytester, targets_yaml: Path) -> None:
    """``observe='90s'`` on the marker is read as a duration, as ``--drill-observe`` is."""
    make_drill(pytester, "tier='tier_1_critical', observe='90s'")
    result = pytester.runpytest("--drill=monthly")
    result.assert_outcomes(passed=1)
