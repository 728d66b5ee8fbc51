"""PostgreSQL backups into the catalog: base backups with ``pg_basebackup`` and shipped WAL.

The servers archive each finished WAL segment into a spool directory with a plain
``archive_command`` (``cp``, see ``topology.local.archive_settings``); a
:class:`WalShipper` thread encrypts every spooled segment into the catalog as a
``postgres-wal`` backup and removes it from the spool once it is stored. The spool
decouples the server from object storage, as pgBackRest's asynchronous archiving does:
a slow or unreachable store delays shipping (and shows as backup staleness) but never
blocks the server's ``archive_command``.

Base backups are ``pg_basebackup -Ft -X none``: a tar of the data directory, its WAL
left to the archive. pg_basebackup itself waits until the segment that ends the backup
is archived, so a base backup is restorable once the shipper has caught up.

pgBackRest (a Debian package) would do all of this; it is not used because its
repository format cannot carry this project's encrypted-stream format and manifests,
which the restore drill verifies before it touches the target. Its design is followed:
archive-push through a spool, base backups whose WAL comes from the archive.
"""

from __future__ import annotations

import logging
import re
import tarfile
import threading
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.backup.manifest import Manifest, utc_now
from pytest_drdrill.clients.postgres import parse_lsn
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.servers import processes

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_drdrill.backup.catalog import Catalog
    from pytest_drdrill.backup.keys import BackupKey
    from pytest_drdrill.topology.postgres import LocalPostgresNode

logger = logging.getLogger(__name__)

SEGMENT_SIZE = 16 * 1024 * 1024
_SEGMENT = re.compile(r"[0-9A-F]{24}")
_START = re.compile(r"START WAL LOCATION: ([0-9A-F]+/[0-9A-F]+) \(file ([0-9A-F]{24})\)")
_STOP = re.compile(r"STOP WAL LOCATION: ([0-9A-F]+/[0-9A-F]+)")


def segment_range(name: str) -> tuple[str, str]:
    """The first and last LSN a WAL segment file holds, as ``X/Y`` texts.

    .. versionadded:: 0.3
    """
    log, seg = int(name[8:16], 16), int(name[16:24], 16)
    start = log * 2**32 + seg * SEGMENT_SIZE
    end = start + SEGMENT_SIZE - 1
    return _lsn(start), _lsn(end)


def _lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


class WalShipper:
    """Ships spooled WAL segments into the catalog, encrypted, one backup per segment.

    :param spool: the directory ``archive_command`` copies segments into.
    :param catalog: where segments go.
    :param key: the key they are encrypted with.
    :param source: names the cluster in each manifest.
    :param interval: seconds between looks at the spool.

    .. versionadded:: 0.3
    """

    def __init__(
        self,
        spool: Path,
        catalog: Catalog,
        key: BackupKey,
        *,
        source: str,
        interval: float = 0.2,
        data_category: str = "critical_user_data",
    ) -> None:
        self.spool = spool
        self.catalog = catalog
        self.key = key
        self.source = source
        self.interval = interval
        self.data_category = data_category
        self.shipped: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> WalShipper:
        """Ship in a background thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="drdrill-wal-shipper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the current segment; ship nothing more."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.ship_once()
            except Exception as exc:  # the store may be down: retry, and say so
                message = f"{type(exc).__name__}: {exc}"
                if not self.errors or self.errors[-1] != message:
                    logger.warning("shipping WAL failed (will retry): %s", message)
                    self.errors.append(message)
            self._stop.wait(self.interval)

    def ship_once(self) -> int:
        """Ship every finished segment now in the spool, oldest first; return how many."""
        shipped = 0
        for path in sorted(self.spool.iterdir()):
            if not _SEGMENT.fullmatch(path.name):
                continue  # a copy in progress (.name.part) or a history/backup file
            start, end = segment_range(path.name)
            manifest = Manifest.new(
                "postgres-wal",
                self.source,
                wal_start=start,
                wal_end=end,
                data_category=self.data_category,
            )
            self.catalog.put_backup(manifest, {path.name: path}, self.key)
            path.unlink()
            self.shipped.append(path.name)
            shipped += 1
        return shipped

    def wait_for(self, segment: str, timeout: float = 60.0) -> bool:
        """Wait until ``segment`` (a WAL file name) has been shipped."""
        deadline = timing.monotonic() + timeout
        while timing.monotonic() < deadline:
            if segment in self.shipped:
                return True
            timing.sleep(0.05)
        return False


def take_base_backup(
    node: LocalPostgresNode,
    catalog: Catalog,
    key: BackupKey,
    workdir: Path,
    *,
    data_category: str = "critical_user_data",
) -> Manifest:
    """Take a base backup of ``node`` with ``pg_basebackup`` and store it, encrypted.

    :param node: a running primary (or standby) reachable directly.
    :param catalog: where it goes.
    :param key: the encryption key.
    :param workdir: an empty directory for the tar (owned by the server account here).
    :returns: the stored backup's manifest: ``wal_start``/``wal_end`` from the backup's
        own label and end point, ``time_start``/``time_end`` around it.

    .. versionadded:: 0.3
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if node.run_as is not None:
        node.run_as.own(workdir)
    started = utc_now()
    done = processes.run(
        [node.install.tool("pg_basebackup"), "-h", node.host, "-p", str(node.port),
         "-U", "postgres", "-D", str(workdir), "-Ft", "-X", "none", "-c", "fast",
         "--no-manifest", "-v"],
        run_as=node.run_as, timeout=600, what=f"pg_basebackup of {node.name}",
    )  # fmt: skip
    ended = utc_now()
    tar_path = workdir / "base.tar"
    with tarfile.open(tar_path) as tar:
        member = tar.extractfile("backup_label")
        label = member.read().decode() if member is not None else ""
    start = _START.search(label)
    if start is None:
        raise TopologyError(
            f"the base backup of {node.name} has no readable backup_label: {label!r}"
        )
    # With -X none pg_basebackup does not print where the backup ended; the server's
    # backup history file (pg_wal/<segment>.<offset>.backup) says so.
    offset = parse_lsn(start.group(1)) % SEGMENT_SIZE
    history_file = node.datadir / "pg_wal" / f"{start.group(2)}.{offset:08X}.backup"
    try:
        stop = _STOP.search(history_file.read_text())
    except OSError as exc:
        raise TopologyError(
            f"cannot read {history_file} to learn where the base backup of {node.name} "
            f"ended: {exc} ({done.stderr.strip()[-300:]})"
        ) from exc
    if stop is None:
        raise TopologyError(f"{history_file} has no STOP WAL LOCATION")
    manifest = Manifest.new(
        "postgres-base",
        f"{node.name} ({node.region})",
        wal_start=start.group(1),
        wal_end=stop.group(1),
        time_start=started,
        time_end=ended,
        data_category=data_category,
    )
    return catalog.put_backup(manifest, {"base.tar": tar_path}, key)
