"""The team's own restore code through ``pytest_drdrill_restore``, judged like the reference."""

from __future__ import annotations

import json

from drill_helpers import ROOT

SCENARIO = (
    f"{ROOT / 'scenarios' / 'test_backups.py'}::test_dropped_table_restored_to_the_moment_before"
)

TEAM_RESTORE = """
import datetime as dt
import pytest
from pytest_drdrill.backup.pitr import restore_to_time

SHIFT = {shift}

@pytest.hookimpl
def pytest_drdrill_restore(backups, target, workdir, record):
    primary = backups.topology.primary
    print(f"HOOK: team restore to {{target.isoformat()}} shifted by {{SHIFT}}s")
    return restore_to_time(
        backups.catalog, backups.keys, target - dt.timedelta(seconds=SHIFT),
        install=primary.install, run_as=primary.run_as, workdir=workdir,
    )
"""


def _run(pytester, drill_args, shift: float):
    # The scenario lives under the project's rootdir, so the hook comes as a -p plugin.
    pytester.syspathinsert()
    pytester.makepyfile(team_restore=TEAM_RESTORE.format(shift=shift))
    return pytester.runpytest(
        "-s", "-p", "team_restore", SCENARIO, f"--rootdir={ROOT}", *drill_args
    )


def _drill(result):
    path = result.stdout.str().split("generated drdrill json: ")[1].split()[0]
    return json.loads(open(path).read())["drills"][0]


def test_team_restore_replaces_the_reference_and_is_measured(pytester, drill_args):
    """A conftest restore hook runs instead of the reference one and passes when it is right."""
    result = _run(pytester, drill_args, shift=0)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*HOOK: team restore to * shifted by 0s*"])
    drill = _drill(result)
    assert drill["verdict"] == "pass"
    assert [p["name"] for p in drill["phases"]][-6:] == [
        "fetch", "verify", "decrypt", "start", "replay", "validate",
    ]  # fmt: skip


def test_restore_to_the_wrong_time_goes_red(pytester, drill_args):
    """A restore that stops 1 s early lacks acknowledged writes: the drill fails, naming them."""
    result = _run(pytester, drill_args, shift=1.0)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*drill pitr-dropped-table FAILED: the restore is not the state at *write(s) "
         "acknowledged before it missing*"]
    )  # fmt: skip
    assert _drill(result)["verdict"] == "fail"
