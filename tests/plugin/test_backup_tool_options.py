"""``--drill-backup-tool`` and the marker key ``backup_tool=``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

BUILTIN_DRILL = """
import pytest

@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", backup_tool=("builtin",))
def test_builtin_only(drdrill):
    raise AssertionError("must be skipped before any topology is built")
"""


@pytest.fixture
def targets(pytester: pytest.Pytester) -> str:
    shutil.copy(ROOT / "fixtures" / "targets.yaml", pytester.path / "targets.yaml")
    return f"--drill-targets={pytester.path / 'targets.yaml'}"


def test_an_unknown_tool_is_a_usage_error(pytester: pytest.Pytester, targets: str) -> None:
    pytester.makepyfile("def test_never(): pass")
    result = pytester.runpytest("--drill=monthly", targets, "--drill-backup-tool=wal-g")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --drill-backup-tool*'wal-g'*builtin*pgbackrest*"])


def test_the_header_names_a_tool_other_than_builtin(
    pytester: pytest.Pytester, targets: str
) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    plain = pytester.runpytest("--drill=monthly", targets)
    plain.stdout.fnmatch_lines(["drdrill: postgres failover reference"])
    chosen = pytester.runpytest("--drill=monthly", targets, "--drill-backup-tool=pgbackrest")
    chosen.stdout.fnmatch_lines(["drdrill: postgres failover reference, backup tool pgbackrest"])


def test_a_drill_of_other_tools_is_skipped_naming_the_flag(
    pytester: pytest.Pytester, targets: str
) -> None:
    pytester.makepyfile(test_drill=BUILTIN_DRILL)
    result = pytester.runpytest("--drill=monthly", targets, "--drill-backup-tool=pgbackrest", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*drill of builtin backups, not run under --drill-backup-tool=pgbackrest: run with "
            "--drill-backup-tool=builtin"
        ]
    )


def test_a_bad_marker_value_names_the_choices(pytester: pytest.Pytester, targets: str) -> None:
    pytester.makepyfile(test_drill=BUILTIN_DRILL.replace('("builtin",)', '"tar"'))
    result = pytester.runpytest("--drill=monthly", targets)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*backup_tool='tar'; give one of builtin, pgbackrest, barman or a tuple*"]
    )
