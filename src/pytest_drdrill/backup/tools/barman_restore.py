"""A point-in-time restore with ``barman recover``, timed by Barman's own steps.

Barman does not check a backup when it recovers it, so the restore runs Barman's own
``verify-backup`` first (verify) and refuses a damaged backup, naming the file, before
any data directory exists. Then ``barman recover --target-time --target-action promote``
copies the backup and the WAL it needs into a new data directory (copy), the server
starts in archive recovery (start) and replays until it promotes itself (replay).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.backup.pitr import RestoreResult
from pytest_drdrill.backup.tools.barman_config import SERVER
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.results import Phase
from pytest_drdrill.topology.postgres import LocalPostgresNode

if TYPE_CHECKING:
    import datetime as dt
    from pathlib import Path

    from pytest_drdrill.backup.tools.barman import BarmanBackups


def restore_with_barman(
    tool: BarmanBackups,
    target: dt.datetime,
    workdir: Path,
    *,
    name: str = "pg-restored",
    region: str = "dr",
    source: str | None = None,
    timeout: float = 300.0,
) -> RestoreResult:
    """Restore to ``target`` from the primary region's Barman, or the DR one's when lost.

    :param source: the region whose Barman to restore from; ``None`` to choose as above.

    :raises NoSuchBackup: when no backup ended before ``target``.
    :raises CorruptBackup: when ``verify-backup`` rejects the backup, naming the file.
    :raises TopologyError: when recovery or replay fails (the server's log attached).
    """
    if target.tzinfo is None:
        raise ValueError(f"target {target!r} has no time zone; give an aware datetime")
    phases: list[Phase] = []

    def timed(phase: str, started: float, detail: str) -> None:
        phases.append(Phase(phase, started, timing.monotonic(), ok=True, detail=detail))

    site = tool.sites[source] if source is not None else tool.restore_site()
    if site.region == "primary":
        tool.archive_wal(site)
    backup = tool.choose(site, target)
    started = timing.monotonic()
    tool.check_backup(site, backup)
    timed("verify", started, f"barman verify-backup {SERVER} {backup.backup_id} ({site.region})")

    workdir.mkdir(parents=True, exist_ok=True)
    if tool.run_as is not None:
        tool.run_as.own(workdir)
    datadir = workdir / "data"
    started = timing.monotonic()
    done = tool.run_barman(
        site, "recover", "--target-time", target.isoformat(), "--target-action", "promote",
        SERVER, backup.backup_id, str(datadir), timeout=timeout,
    )  # fmt: skip
    wal = (
        sum(1 for _ in (datadir / "barman_wal").iterdir())
        if (datadir / "barman_wal").is_dir()
        else 0
    )
    said = " ".join(done.stdout.strip().splitlines()[-1:])
    timed("copy", started, f"barman recover of {backup.backup_id} from {site.home}: "
          f"{backup.size / 1e6:.1f} MB, {wal} WAL segments; {said}")  # fmt: skip
    datadir.chmod(0o700)

    node = LocalPostgresNode(name, region, datadir, tool.node.install, tool.run_as,
                             log=workdir / f"{name}.log")  # fmt: skip
    started = timing.monotonic()
    try:
        node.start(timeout=timeout)
    except TopologyError:
        node.cleanup()
        raise
    timed("start", started, f"{name} accepting connections in archive recovery")

    started = timing.monotonic()
    deadline = started + timeout
    while True:
        with psycopg.connect(node.dsn(app="drdrill-restore"), autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        if row is not None and not row[0]:
            break
        if timing.monotonic() > deadline:
            node.cleanup()
            raise TopologyError(f"{name} did not finish replaying to {target} within {timeout}s")
        timing.sleep(0.02)
    timed("replay", started, f"replayed to {target.isoformat()} and promoted")
    return RestoreResult(
        node, backup, wal, backup.size, backup.size, tuple(phases),
        source=f"barman {SERVER} at {site.home} ({site.region})",
    )  # fmt: skip
