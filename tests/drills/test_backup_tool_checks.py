"""The daily checks of a team's backup tool go red when they should, on real repositories.

Each tool (pgBackRest, Barman) backs up the running topology; then:

* freshness passes now, and fails when judged a little more than the strictest RPO after
  the newest point the tool's own catalogue lists (as a day without archiving would),
  saying how stale each region is;
* retention passes against the requirements and fails, naming the tool's setting, when
  the targets file asks for longer than the tool keeps;
* the daily drill (pgBackRest's) fails its retention check when run with such a targets file.

Heavy (local topology and the tools): run under ``flock /tmp/drdrill-heavy.lock``.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import psycopg
import pytest

from pytest_drdrill.backup.tool_checks import (
    check_tool_freshness,
    check_tool_retention,
    check_tool_verification,
)
from pytest_drdrill.backup.tools import make_tool
from pytest_drdrill.record import DrillRecord
from pytest_drdrill.targets import load_targets

ROOT = Path(__file__).resolve().parents[2]
TOOLS = [
    pytest.param(
        name,
        marks=pytest.mark.skipif(shutil.which(name) is None, reason=f"{name} not installed"),
    )
    for name in ("pgbackrest", "barman")
]
#: What each tool's retention message names for the local full-backup retention.
SETTING = {"pgbackrest": "repo1-retention-full", "barman": "retention_policy"}


def _targets(tmp_path: Path, full_local: str) -> Path:
    text = (ROOT / "fixtures" / "targets.yaml").read_text()
    assert "full_local: 30_days" in text
    path = tmp_path / "targets.yaml"
    path.write_text(text.replace("full_local: 30_days", f"full_local: {full_local}"))
    return path


@pytest.fixture
def tool_backups(request, topology):
    """A tool opened on the module's topology, one backup and its WAL archived; closed after."""
    backend, topo = topology
    name = request.param
    record = DrillRecord("t", scenario=f"{name}-checks", cadence="daily", target=None,
                         backend="local")  # fmt: skip
    backups = make_tool(name).open(topo, backend.dataroot / f"{name}-checks", record)
    try:
        with psycopg.connect(topo.primary.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS drill_probe (i int)")
            conn.execute("INSERT INTO drill_probe SELECT generate_series(1, 50)")
        backups.base_backup()
        backups.archive_now()
        backups.replicate()
        yield backups
    finally:
        backups.close()


@pytest.mark.parametrize("tool_backups", TOOLS, indirect=True)
def test_freshness_and_retention_go_red_when_they_should(tool_backups, tmp_path) -> None:
    targets = load_targets(ROOT / "fixtures" / "targets.yaml")
    assert check_tool_verification(tool_backups).ok

    fresh = check_tool_freshness(tool_backups, targets)
    assert fresh.ok, fresh.detail
    newest = min(tool_backups.newest_restorable(r) for r in ("primary", "dr"))
    strictest = targets.data_categories["critical_user_data"].target
    later = newest + dt.timedelta(seconds=strictest + 60)
    stale = check_tool_freshness(tool_backups, targets, now=later)
    assert not stale.ok
    assert "the primary region's newest restorable point is 6m" in stale.detail, stale.detail
    assert "over critical_user_data's RPO target 5m00s" in stale.detail, stale.detail

    kept = check_tool_retention(tool_backups, targets)
    assert kept.ok, kept.detail
    longer = load_targets(_targets(tmp_path, "60_days"))
    short = check_tool_retention(tool_backups, longer)
    assert not short.ok
    assert "backup_retention.full_local wants 60d00h00m" in short.detail, short.detail
    assert f"keeps 30d00h00m: raise {SETTING[tool_backups.tool]}" in short.detail, short.detail


@pytest.mark.skipif(shutil.which("pgbackrest") is None, reason="pgbackrest not installed")
def test_the_daily_drill_fails_naming_the_retention_setting(
    pytester: pytest.Pytester, drill_args: list[str]
) -> None:
    """The drill, not only the check: its verdict is fail (one tool; the check covers both)."""
    tool = "pgbackrest"
    shutil.copy(ROOT / "scenarios" / "test_backup_verification.py", pytester.path)
    _targets(pytester.path, "60_days")  # over the copy drill_args points at
    result = pytester.runpytest_subprocess(
        *[a for a in drill_args if not a.startswith("--drill=")],
        "--drill=daily", f"--drill-backup-tool={tool}", "-k", "tool_verification",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    (report,) = (pytester.path / "reports").glob("*/drill.json")
    (drill,) = json.loads(report.read_text())["drills"]
    assert drill["verdict"] == "fail"
    phases = {p["name"]: p for p in drill["phases"]}
    assert phases["tool-freshness"]["ok"], phases["tool-freshness"]
    assert not phases["tool-retention"]["ok"]
    assert SETTING[tool] in phases["tool-retention"]["detail"]
