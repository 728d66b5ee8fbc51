"""Point-in-time recovery of PostgreSQL from the catalog, timed phase by phase.

The restore never trusts a byte it has not authenticated: every object is fetched to a
staging directory and checked against the manifest's stored digest (fetch), then
authenticated chunk by chunk with the key (verify), and only then decrypted into the new
data directory and WAL directory (decrypt). A damaged or missing object therefore stops
the restore before the target directory exists. Then the server starts in archive
recovery with ``recovery_target_time`` (start) and replays until it promotes itself at
the target (replay). Validation against the client's ledger is the drill's job.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import shutil
import tarfile
from typing import TYPE_CHECKING

import psycopg
import pytest

from pytest_drdrill import timing
from pytest_drdrill.backup.errors import CorruptBackup, MissingWalSegment, NoSuchBackup
from pytest_drdrill.backup.keys import KeyRing
from pytest_drdrill.backup.stream import decrypt_stream, verify_stream
from pytest_drdrill.backup.wal import segment_name
from pytest_drdrill.clients.postgres import parse_lsn
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.results import Phase
from pytest_drdrill.topology.postgres import LocalPostgresNode

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_drdrill.backup.catalog import Catalog
    from pytest_drdrill.backup.keys import BackupKey
    from pytest_drdrill.backup.manifest import BackupFile, Manifest
    from pytest_drdrill.backup.site import BackupSite
    from pytest_drdrill.backup.tools._protocol import ToolBackup
    from pytest_drdrill.servers.processes import RunAs
    from pytest_drdrill.topology.postgres import PostgresInstall


@dataclasses.dataclass(frozen=True)
class RestoreResult:
    """A finished point-in-time restore.

    :param node: the restored server, running and promoted (the caller stops it).
    :param base: the base backup it started from (a tool's :class:`ToolBackup` since 0.7).
    :param segments: WAL segments fetched.
    :param stored_bytes: bytes fetched from object storage.
    :param plain_bytes: bytes after decryption.
    :param phases: fetch, verify, decrypt, start and replay, timed.
    :param source: where the backups came from (``s3://bucket/prefix`` of the catalog);
        new in 0.4.

    .. versionadded:: 0.3
    """

    node: LocalPostgresNode
    base: Manifest | ToolBackup
    segments: int
    stored_bytes: int
    plain_bytes: int
    phases: tuple[Phase, ...]
    source: str = ""


def choose_base(catalog: Catalog, target: dt.datetime) -> Manifest:
    """The newest base backup that finished before ``target``.

    :raises NoSuchBackup: when none did, listing the base backups there are.

    .. versionadded:: 0.3
    """
    bases = catalog.list_backups("postgres-base")
    usable = [b for b in bases if b.time_end and dt.datetime.fromisoformat(b.time_end) < target]
    if not usable:
        raise NoSuchBackup(
            f"a base backup finished before {target.isoformat()}",
            catalog.location,
            [f"{b.backup_id} (ended {b.time_end})" for b in bases],
        )
    return usable[0]


def _wal_chain(
    catalog: Catalog, base: Manifest, target: dt.datetime
) -> list[tuple[Manifest, BackupFile]]:
    """Every shipped segment from the base backup's start, as far as the archive goes.

    :raises MissingWalSegment: for a gap in the chain, or when the newest shipped segment
        was stored before ``target``, so the archive cannot reach it; either way the
        first segment that is missing is named.
    """
    assert base.wal_start is not None and base.wal_end is not None
    wal = catalog.list_backups("postgres-wal")
    ends = [m.wal_end for m in wal if m.wal_end is not None]
    last = max(ends, key=parse_lsn, default=base.wal_end)
    # The chain must reach at least the base backup's end point, or it is not consistent.
    last = max(last, base.wal_end, key=parse_lsn)
    chain = catalog.find_wal(base.wal_start, last)
    newest = max((dt.datetime.fromisoformat(m.created_at) for m, _ in chain), default=None)
    if newest is None or newest < target:
        following = segment_name(1, parse_lsn(last) + 1)
        raise MissingWalSegment(
            following,
            f"WAL up to {target.isoformat()} (the newest segment stored, ending at {last}, "
            f"was stored at {newest.isoformat() if newest else 'never'})",
            catalog.location,
        )
    return chain


def _fetch(catalog: Catalog, backup_id: str, record: BackupFile, staging: Path) -> Path:
    """Download one stored object and check its size and digest against the manifest."""
    key = catalog.data_key(backup_id, record.name)
    url = f"s3://{catalog.bucket}/{key}"
    path = staging / f"{backup_id}--{record.name.replace('/', '--')}"
    digest = hashlib.sha256()
    size = 0
    try:
        body = catalog.client.get_object(Bucket=catalog.bucket, Key=key)["Body"]
    except catalog.client.exceptions.NoSuchKey:
        from pytest_drdrill.backup.errors import MissingObject

        raise MissingObject(url, backup_id) from None
    with open(path, "wb") as out:
        for chunk in iter(lambda: body.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if size != record.stored_size or digest.hexdigest() != record.stored_sha256:
        raise CorruptBackup(
            url,
            f"fetched {size} bytes with sha256 {digest.hexdigest()[:16]}…; the manifest "
            f"says {record.stored_size} bytes, sha256 {record.stored_sha256[:16]}…",
        )
    return path


def restore_to_time(
    catalog: Catalog,
    keys: KeyRing | BackupKey,
    target: dt.datetime,
    *,
    install: PostgresInstall,
    run_as: RunAs | None,
    workdir: Path,
    name: str = "pg-restored",
    region: str = "dr",
    timeout: float = 300.0,
) -> RestoreResult:
    """Restore the cluster in ``catalog`` to the state at ``target``, as a new server.

    :param catalog: where the base backups and WAL are.
    :param keys: the key ring that decrypts them.
    :param target: the point in time (timezone-aware); commits after it are not replayed.
    :param install: PostgreSQL binaries.
    :param run_as: the account the server runs as.
    :param workdir: an empty directory for staging, the WAL and the data directory.
    :param name: the new server's name.
    :param region: where it counts as running.
    :param timeout: seconds replay may take.
    :raises BackupError: a missing, damaged or undecryptable object, before the data
        directory is created.
    :raises TopologyError: when the server does not reach the target (its log attached).

    .. versionadded:: 0.3
    """
    if target.tzinfo is None:
        raise ValueError(f"target {target!r} has no time zone; give an aware datetime")
    ring = KeyRing.of(keys)
    phases: list[Phase] = []

    def timed(phase: str, started: float, detail: str) -> None:
        phases.append(Phase(phase, started, timing.monotonic(), ok=True, detail=detail))

    base = choose_base(catalog, target)
    chain = _wal_chain(catalog, base, target)
    items = [(base.backup_id, f) for f in base.files] + [(m.backup_id, f) for m, f in chain]
    staging = workdir / "staging"
    staging.mkdir(parents=True)

    started = timing.monotonic()
    staged = [(bid, record, _fetch(catalog, bid, record, staging)) for bid, record in items]
    stored = sum(record.stored_size for _, record, _ in staged)
    timed("fetch", started, f"{len(staged)} objects, {stored / 1e6:.1f} MB from {catalog.location}")

    started = timing.monotonic()
    for bid, record, path in staged:
        with open(path, "rb") as src:
            verify_stream(
                src,
                ring,
                object_name=catalog.data_key(bid, record.name),
                context=f"{bid}/{record.name}".encode(),
            )
    timed(
        "verify", started, f"{len(staged)} objects authenticated with key(s) {', '.join(ring.ids)}"
    )

    started = timing.monotonic()
    datadir = workdir / "data"
    waldir = workdir / "wal"
    waldir.mkdir()
    plain = 0
    for bid, record, path in staged:
        context = f"{bid}/{record.name}".encode()
        name_on_disk = waldir / record.name if bid != base.backup_id else staging / "base.tar"
        with open(path, "rb") as src, open(name_on_disk, "wb") as dst:
            plain += decrypt_stream(
                src, dst, ring, object_name=catalog.data_key(bid, record.name), context=context
            ).plain_bytes
        path.unlink()
    datadir.mkdir(mode=0o700)
    with tarfile.open(staging / "base.tar") as tar:
        tar.extractall(datadir, filter="data")
    (staging / "base.tar").unlink()
    (datadir / "recovery.signal").touch()
    if run_as is not None:
        run_as.own(workdir)
    datadir.chmod(0o700)
    timed("decrypt", started, f"{plain / 1e6:.1f} MB: base backup {base.backup_id}, "
          f"{len(chain)} WAL segments")  # fmt: skip

    node = LocalPostgresNode(name, region, datadir, install, run_as, log=workdir / f"{name}.log")
    settings = {
        "restore_command": f"cp {waldir}/%f %p",
        "recovery_target_time": target.isoformat(),
        "recovery_target_action": "promote",
    }
    started = timing.monotonic()
    try:
        node.start(timeout=timeout, extra=settings)
    except TopologyError as exc:
        if "recovery ended before configured recovery target" in "\n".join(
            getattr(exc, "__notes__", [])
        ):
            exc.add_note(
                f"the archive holds no commit after {target.isoformat()}: PostgreSQL stops "
                "a time-targeted recovery only at the first commit past the target. Ship WAL "
                "written after the target (BackupSite.archive_now commits a marker first) or "
                "choose an earlier target."
            )
        node.cleanup()
        raise
    timed("start", started, f"{name} accepting connections in archive recovery")

    started = timing.monotonic()
    wait_promoted(node, target, timeout=timeout)
    timed("replay", started, f"replayed to {target.isoformat()} and promoted")
    shutil.rmtree(staging, ignore_errors=True)
    return RestoreResult(
        node, base, len(chain), stored, plain, tuple(phases), source=catalog.location
    )


def wait_promoted(node: LocalPostgresNode, target: dt.datetime, *, timeout: float) -> None:
    """Wait until a server in archive recovery has replayed to ``target`` and promoted.

    :raises TopologyError: when it has not within ``timeout`` (the server is removed).

    .. versionadded:: 0.7
    """
    deadline = timing.monotonic() + timeout
    while True:
        with psycopg.connect(node.dsn(app="drdrill-restore"), autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        if row is not None and not row[0]:
            return
        if timing.monotonic() > deadline:
            node.cleanup()
            raise TopologyError(
                f"{node.name} did not finish replaying to {target} within {timeout}s"
            )
        timing.sleep(0.02)


class ReferenceRestore:
    """The built-in point-in-time restore, registered as a plugin (``trylast``).

    .. versionadded:: 0.3
    """

    @pytest.hookimpl(trylast=True)
    def pytest_drdrill_restore(
        self, backups: BackupSite, target: dt.datetime, workdir: Path, record: object
    ) -> RestoreResult:
        """Restore with :func:`restore_to_time` from the primary region's catalog.

        When the primary region's object store does not answer, the DR region's copy is
        used instead (:meth:`BackupSite.restore_catalog`).
        """
        from pytest_drdrill.backup.tools._protocol import Backups
        from pytest_drdrill.topology.docker_nodes import DockerPostgresNode

        given: object = backups
        if isinstance(given, Backups):
            # A backup tool's own restore (pgBackRest's), the reference for that tool.
            return given.restore(target, workdir, record)  # type: ignore[arg-type]
        primary = backups.topology.primary
        # Both run restores with the host's binaries, as the account named by --drill-run-as.
        assert isinstance(primary, LocalPostgresNode | DockerPostgresNode)
        return restore_to_time(
            backups.restore_catalog(), backups.keys, target, install=primary.install,
            run_as=primary.run_as, workdir=workdir,
        )  # fmt: skip
