"""pgBackRest as the restore drills' backup tool, on a real repository per region.

The shipped point-in-time drill runs with ``--drill-backup-tool=pgbackrest`` and is judged
by the same ledger check as the built-in tool; a byte flipped in a backup file of repo1 is
named by ``pgbackrest verify`` and makes a restore from that repository fail, while the DR
region's repository still restores.

Heavy (local topology and pgBackRest): run under ``flock /tmp/drdrill-heavy.lock``.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import psycopg
import pytest

from pytest_drdrill import timing
from pytest_drdrill.backup.tools.pgbackrest import PgBackRestTool
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.record import DrillRecord

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    shutil.which("pgbackrest") is None, reason="apt-get install pgbackrest (scripts/bootstrap)"
)


def test_the_shipped_pitr_drill_passes_with_pgbackrest(
    pytester: pytest.Pytester, drill_args: list[str]
) -> None:
    shutil.copy(ROOT / "scenarios" / "test_backups.py", pytester.path / "test_backups.py")
    result = pytester.runpytest_subprocess(
        *drill_args, "--drill-backup-tool=pgbackrest", "-k", "dropped_table"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["drdrill: postgres failover reference, backup tool pgbackrest"])
    (report,) = (pytester.path / "reports").glob("*/drill.json")
    (drill,) = json.loads(report.read_text())["drills"]
    assert drill["verdict"] == "pass", drill["reason"]
    phases = {p["name"]: p for p in drill["phases"]}
    assert {"restore", "start", "replay", "validate"} <= set(phases), phases
    assert phases["restore"]["detail"] == "pgbackrest restore from repo1 (primary region)"


def _count(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM drill_probe").fetchone()
    assert row is not None
    return int(row[0])


def test_a_flipped_byte_in_repo1_is_named_and_the_dr_repository_still_restores(
    topology,
) -> None:
    backend, topo = topology
    # Under the data root: the server account must reach the restored data directory.
    scratch = backend.dataroot / "pgbackrest-restores"
    record = DrillRecord("t", scenario="pgbackrest-corruption", cadence="monthly", target=None,
                         backend="local")  # fmt: skip
    backups = PgBackRestTool().open(topo, backend.dataroot / "pgbackrest-test", record)
    with psycopg.connect(topo.primary.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS drill_probe (i int)")
        conn.execute("INSERT INTO drill_probe SELECT generate_series(1, 50)")
    (full,) = [b.backup_id for b in backups.base_backup() if b.location == "repo1"]
    assert {b.location for b in backups.backups()} == {"repo1", "repo2"}
    timing.sleep(1.1)  # pgBackRest restores to targets a whole second after a backup stopped
    target = dt.datetime.now(dt.UTC)
    backups.archive_now()
    assert backups.verify() == []

    files = sorted((backups.repos[1] / "backup" / "drill" / full / "pg_data").rglob("*"))
    victim = max((f for f in files if f.is_file()), key=lambda f: f.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))

    findings = backups.verify()
    assert findings, "pgbackrest verify did not notice the flipped byte"
    assert all(f.location == "repo1" for f in findings), findings
    assert any(victim.name in f.path or victim.name in f.problem for f in findings), findings

    with pytest.raises(TopologyError, match="pgbackrest restore"):
        backups.restore(target, scratch / "from-repo1", record)
    shutil.rmtree(backups.repos[1])  # the primary region's storage is lost with it
    restored = backups.restore(target, scratch / "from-repo2", record)
    try:
        assert restored.source.startswith("pgbackrest repo2")
        assert _count(restored.node.dsn()) == 50
    finally:
        restored.node.cleanup()
