"""Benchmark: the built-in backups, pgBackRest and Barman side by side on one database.

Run from the repository root (as root: servers run as the unprivileged account)::

    PYTHONPATH=src python bench/bench_backup_tools.py [--scale 30] [--runs 3]

One local two-region topology; its primary is filled with ``pgbench -i`` at ``--scale``
(30 is about 450 MB of database). Each tool in turn is opened on that topology, as a
drill opens it (built-in first: pgBackRest then owns every server's ``archive_command``),
and ``--runs`` times:

- **backup**: a full backup into every repository the tool keeps (built-in: the primary
  region's object store, AES-256-GCM; pgBackRest: repo1 and repo2, aes-256-cbc, one
  backup command each; Barman: ``barman backup`` of the primary region), timed from the
  call to its return; MB/s of database bytes (10^6);
- **PITR to writable**: ``archive_now`` then a point-in-time restore to a target taken
  just before it, timed from the call until the restored server is promoted and accepts
  writes; restore MB/s is database bytes over that time.

Median and p95 over the runs, and each tool's ratio to the built-in's median measured in
the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
from pathlib import Path

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.backup.keys import KeyRing, generate_key
from pytest_drdrill.backup.pitr import RestoreResult, restore_to_time
from pytest_drdrill.backup.site import BackupSite
from pytest_drdrill.backup.tools import make_tool
from pytest_drdrill.record import DrillRecord
from pytest_drdrill.servers import processes
from pytest_drdrill.topology.local import LocalBackend

TOOLS = ("builtin", "pgbackrest", "barman")


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _database_bytes(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT sum(pg_database_size(datname)) FROM pg_database").fetchone()
    assert row is not None
    return int(row[0])


def _writable(result: RestoreResult) -> None:
    with psycopg.connect(result.node.dsn(app="bench"), autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_written (i int)")


def main() -> None:
    """Print backup and restore MB/s and time to a writable server per tool."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=30, help="pgbench scale (30: ~450 MB)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset")
    args = parser.parse_args()
    tools = [t for t in args.tools.split(",") if t]
    missing = [t for t in tools if t != "builtin" and shutil.which(t) is None]
    if missing:
        raise SystemExit(f"not installed: {', '.join(missing)} (scripts/bootstrap installs them)")
    backup_s: dict[str, list[float]] = {t: [] for t in tools}
    pitr_s: dict[str, list[float]] = {t: [] for t in tools}
    with tempfile.TemporaryDirectory(prefix="drdrill-bench-") as tmp:
        work = Path(tmp)
        (work / "backend").mkdir()
        (work / "topology").mkdir()
        backend = LocalBackend(work / "backend").start()
        topo = None
        opened: dict[str, object] = {}
        try:
            assert backend.dataroot is not None
            topo = backend.topology(work / "topology")
            primary = topo.primary
            started = timing.monotonic()
            processes.run(
                [backend.install.tool("pgbench"), "-i", "-q", "-s", str(args.scale),
                 "-h", primary.host, "-p", str(primary.port), "-U", "postgres", "postgres"],
                run_as=backend.run_as, timeout=1800, what="pgbench -i",
            )  # fmt: skip
            loaded = timing.monotonic() - started
            size = _database_bytes(primary.dsn())
            record = DrillRecord("bench", scenario="bench-backup-tools", cadence="monthly",
                                 target=None, backend="local")  # fmt: skip
            # One tool after the other, each opened as a drill opens it: pgBackRest points
            # every server's archive_command at itself, which ends the built-in shipping.
            for tool in tools:
                workdir = backend.dataroot / f"bench-{tool}"
                if tool == "builtin":
                    opened[tool] = BackupSite(topo, KeyRing.of(generate_key()), workdir).start()
                else:
                    opened[tool] = make_tool(tool).open(topo, workdir, record)
                backups = opened[tool]
                for run in range(args.runs):
                    started = timing.monotonic()
                    backups.base_backup()  # type: ignore[attr-defined]
                    backup_s[tool].append(timing.monotonic() - started)
                    timing.sleep(1.1)  # pgBackRest restores to a second after a backup stopped
                    target = dt.datetime.now(dt.UTC)
                    restore_dir = backend.dataroot / f"restore-{tool}-{run}"
                    started = timing.monotonic()
                    backups.archive_now()  # type: ignore[attr-defined]
                    restored = _restore(tool, backups, target, restore_dir, record)
                    try:
                        _writable(restored)
                        pitr_s[tool].append(timing.monotonic() - started)
                    finally:
                        restored.node.cleanup()
                        shutil.rmtree(restore_dir, ignore_errors=True)
                backups.close()  # type: ignore[attr-defined]
        finally:
            for backups in opened.values():
                backups.close()  # type: ignore[attr-defined]
            if topo is not None:
                topo.close()
            backend.close()
    _print(size, args.scale, loaded, tools, backup_s, pitr_s)


def _restore(
    tool: str, backups: object, target: dt.datetime, workdir: Path, record: DrillRecord
) -> RestoreResult:
    if tool == "builtin":
        assert isinstance(backups, BackupSite)
        primary = backups.topology.primary
        return restore_to_time(
            backups.restore_catalog(), backups.keys, target,
            install=primary.install, run_as=primary.run_as, workdir=workdir,  # type: ignore[attr-defined]
        )  # fmt: skip
    return backups.restore(target, workdir, record)  # type: ignore[attr-defined]


def _print(
    size: int,
    scale: int,
    loaded: float,
    tools: list[str],
    backup_s: dict[str, list[float]],
    pitr_s: dict[str, list[float]],
) -> None:
    mb = size / 1e6
    runs = len(next(iter(backup_s.values())))
    print(f"database: {mb:.0f} MB (pgbench scale {scale}, loaded in {loaded:.0f}s); {runs} runs")
    header = (
        f"{'tool':<12}{'backup MB/s':>12}{'p95':>7}{'PITR to writable s':>20}{'p95':>7}"
        f"{'restore MB/s':>14}"
    )
    print(header)
    base: dict[str, float] = {}
    for tool in tools:
        b, p = statistics.median(backup_s[tool]), statistics.median(pitr_s[tool])
        base.setdefault("backup", b)
        base.setdefault("pitr", p)
        print(
            f"{tool:<12}{mb / b:>12.0f}{mb / _p95(backup_s[tool]):>7.0f}{p:>20.1f}"
            f"{_p95(pitr_s[tool]):>7.1f}{mb / p:>14.0f}"
        )
    if tools[0] == "builtin":
        for tool in tools[1:]:
            b, p = statistics.median(backup_s[tool]), statistics.median(pitr_s[tool])
            print(
                f"{tool} / builtin (medians): backup time x{b / base['backup']:.2f}, "
                f"PITR to writable x{p / base['pitr']:.2f}"
            )


if __name__ == "__main__":
    main()
