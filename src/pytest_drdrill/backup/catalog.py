"""The backup catalog in an S3 bucket: encrypted data objects, manifests, catalog entries.

Layout under the prefix (``drdrill-backups/`` by default)::

    data/<backup id>/<file name>     one encrypted stream per file (see stream.py)
    manifests/<backup id>.json       the manifest (manifest.py)
    catalog/<backup id>.json         the catalog entry: manifest location, SHA-256, HMAC

There is one catalog entry per backup rather than one shared index file, so concurrent
writers never overwrite each other's entries. The entry is written last: a backup whose
upload failed half way has no entry and is never listed. Each data stream is bound to
``"<backup id>/<file name>"`` (the stream's context), so an object moved or copied under
another name fails authentication.

Restores refuse before they touch their target: every byte is authenticated and every
size and digest compared with the manifest while the plaintext goes to a temporary
file, which replaces the target only when all of it checked out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

from pytest_drdrill.backup.catalogstore import CatalogStore
from pytest_drdrill.backup.errors import BackupError, CorruptBackup, NoSuchBackup
from pytest_drdrill.backup.keys import BackupKey, KeyRing
from pytest_drdrill.backup.manifest import BackupFile, Manifest, check_file_name
from pytest_drdrill.backup.stream import (
    EncryptingReader,
    _check_expected,
    decrypt_to_path,
    verify_stream,
)
from pytest_drdrill.backup.wal import find_wal

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import BinaryIO

    from pytest_drdrill.backup.stream import Readable, StreamInfo

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FileCheck:
    """The verification of one stored file.

    :param name: the file's name in the backup.
    :param object_name: ``s3://bucket/key`` of its object.
    :param error: what was wrong, or ``None`` when it verified.

    .. versionadded:: 0.3
    """

    name: str
    object_name: str
    error: BackupError | None = None

    @property
    def ok(self) -> bool:
        """Whether the file verified."""
        return self.error is None


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    """The verification of one backup in one bucket.

    :param backup_id: the backup.
    :param location: ``s3://bucket/prefix`` of the catalog.
    :param files: one check per file of the manifest.

    .. versionadded:: 0.3
    """

    backup_id: str
    location: str
    files: tuple[FileCheck, ...]

    @property
    def ok(self) -> bool:
        """Whether every file verified."""
        return all(check.ok for check in self.files)

    @property
    def errors(self) -> tuple[BackupError, ...]:
        """The problems found, in manifest order."""
        return tuple(check.error for check in self.files if check.error is not None)

    def raise_if_failed(self) -> None:
        """Raise the first problem found, if any.

        :raises BackupError: the first file's problem.
        """
        if self.errors:
            raise self.errors[0]


class _HashingReader:
    """Passes reads through, hashing them: to check a copy while it streams."""

    def __init__(self, src: Readable) -> None:
        self.src = src
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self.src.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data


class Catalog(CatalogStore):
    """Backups in one bucket of one region: write, list, verify, restore, copy.

    :param client: an S3 client (``clients.s3.s3_client``); shared between threads.
    :param bucket: the bucket, which must exist.
    :param prefix: the key prefix every object of the catalog lives under.
    :param chunk_size: plaintext bytes per encrypted chunk of new backups.

    .. versionadded:: 0.3
    """

    def __repr__(self) -> str:
        return f"<Catalog {self.location}>"

    # --- public API -------------------------------------------------------------------------

    def put_backup(
        self, manifest: Manifest, files: Mapping[str, BinaryIO | Path], key: BackupKey
    ) -> Manifest:
        """Encrypt and upload a backup's files, then its manifest, then its catalog entry.

        :param manifest: the backup's manifest (from :meth:`Manifest.new`); its files and
            key id are filled in here.
        :param files: file name in the backup -> open binary file or path, read to the end.
        :param key: the key to encrypt with (the key ring's current key).
        :returns: the manifest as stored.
        :raises ValueError: when a file name is invalid or the backup id already exists.

        .. versionadded:: 0.3
        """
        backup_id = manifest.backup_id
        for name in files:
            if (why := check_file_name(name)) is not None:
                raise ValueError(f"backup file name {name!r} {why}")
        if self._exists(self.entry_key(backup_id)):
            raise ValueError(f"backup {backup_id} already exists in {self.location}")
        records = []
        for name, source in files.items():
            object_key = self.data_key(backup_id, name)
            with contextlib.ExitStack() as stack:
                src = (
                    stack.enter_context(open(source, "rb")) if isinstance(source, Path) else source
                )
                reader = stack.enter_context(
                    EncryptingReader(
                        src,
                        key,
                        chunk_size=self.chunk_size,
                        context=f"{backup_id}/{name}".encode(),
                    )
                )
                self.client.upload_fileobj(
                    cast("IO[bytes]", reader), self.bucket, object_key, Config=self._transfer
                )
                info = reader.info
            if info is None:
                raise BackupError(f"upload of {self._url(object_key)} stopped before the end")
            logger.debug(
                "stored %s: %d -> %d bytes",
                self._url(object_key),
                info.plain_bytes,
                info.stored_bytes,
            )
            assert info.stored_sha256 is not None  # encrypting always hashes the stored form
            records.append(
                BackupFile(
                    name=name,
                    size=info.plain_bytes,
                    sha256=info.plain_sha256,
                    stored_size=info.stored_bytes,
                    stored_sha256=info.stored_sha256,
                )
            )
        stored = dataclasses.replace(manifest, key_id=key.key_id, files=tuple(records))
        raw = stored.to_json().encode()
        self.client.put_object(Bucket=self.bucket, Key=self.manifest_key(backup_id), Body=raw)
        self._put_entry(stored, raw, key)
        logger.info(
            "backup %s (%s, %d files) listed in %s",
            backup_id,
            stored.kind,
            len(records),
            self.location,
        )
        return stored

    def list_backups(self, kind: str | None = None) -> list[Manifest]:
        """Return the listed backups, newest first, each manifest checked against its entry.

        :param kind: only backups of this kind.
        :raises InvalidManifest: when an entry or manifest is damaged.

        .. versionadded:: 0.3
        """
        manifests = []
        for backup_id in self.backup_ids():
            if kind is not None and self._read_entry(backup_id)["kind"] != kind:
                continue
            manifests.append(self._load(backup_id, None)[0])
        return sorted(manifests, key=lambda m: (m.created_at, m.backup_id), reverse=True)

    def manifest(self, backup_id: str, keys: KeyRing | BackupKey | None = None) -> Manifest:
        """Return one backup's manifest; with keys, its HMAC is checked too.

        :param backup_id: the backup.
        :param keys: the key ring, to authenticate the manifest.
        :raises NoSuchBackup: when the catalog does not list it.
        :raises InvalidManifest: when it is damaged or altered.

        .. versionadded:: 0.3
        """
        return self._load(backup_id, None if keys is None else KeyRing.of(keys))[0]

    def _check_file(self, manifest: Manifest, record: BackupFile, ring: KeyRing) -> FileCheck:
        object_key = self.data_key(manifest.backup_id, record.name)
        url = self._url(object_key)
        try:
            size = self._size(object_key, manifest.backup_id)
            if size != record.stored_size:
                raise CorruptBackup(url, f"is {size} bytes; the manifest says {record.stored_size}")
            info = verify_stream(
                self._get(object_key, manifest.backup_id),
                ring,
                object_name=url,
                context=f"{manifest.backup_id}/{record.name}".encode(),
            )
            _check_expected(info, record, url)
        except BackupError as exc:
            return FileCheck(record.name, url, exc)
        return FileCheck(record.name, url)

    def _verify_manifest(self, manifest: Manifest, ring: KeyRing) -> VerifyReport:
        checks = tuple(self._check_file(manifest, record, ring) for record in manifest.files)
        report = VerifyReport(manifest.backup_id, self.location, checks)
        for check in report.files:
            if check.error is not None:
                logger.warning("verify %s: %s", check.object_name, check.error)
        return report

    def verify(self, backup_id: str, keys: KeyRing | BackupKey) -> VerifyReport:
        """Check a backup completely, discarding the plaintext.

        Checked: the manifest's HMAC, and for every file its object's presence, size,
        SHA-256 and full authenticated decryption.

        :param backup_id: the backup.
        :param keys: the key ring.
        :returns: one check per file.
        :raises NoSuchBackup: when the catalog does not list it.
        :raises InvalidManifest: when the manifest is damaged or altered.
        :raises UnknownKey: when the ring lacks the manifest's key.

        .. versionadded:: 0.3
        """
        ring = KeyRing.of(keys)
        manifest, _, _ = self._load(backup_id, ring)
        return self._verify_manifest(manifest, ring)

    def restore_file(
        self, backup_id: str, name: str, dest_path: Path, keys: KeyRing | BackupKey
    ) -> StreamInfo:
        """Restore one file; ``dest_path`` is replaced only when everything verified.

        The object's size is checked first; then it is decrypted to a temporary file
        beside ``dest_path`` while every chunk is authenticated and the sizes and digests
        are compared with the manifest. Only then is the temporary file renamed.

        :param backup_id: the backup.
        :param name: the file's name in the backup.
        :param dest_path: where to put the plaintext.
        :param keys: the key ring.
        :returns: sizes and digests.
        :raises NoSuchBackup: for an unknown backup or file name.
        :raises MissingObject: when the object is gone.
        :raises CorruptBackup: when it is damaged (``dest_path`` is left untouched).

        .. versionadded:: 0.3
        """
        ring = KeyRing.of(keys)
        manifest, _, _ = self._load(backup_id, ring)
        record = manifest.file(name)
        if record is None:
            raise NoSuchBackup(
                f"file {name!r}",
                f"backup {backup_id} in {self.location}",
                [f.name for f in manifest.files],
            )
        object_key = self.data_key(backup_id, name)
        url = self._url(object_key)
        size = self._size(object_key, backup_id)
        if size != record.stored_size:
            raise CorruptBackup(url, f"is {size} bytes; the manifest says {record.stored_size}")
        return decrypt_to_path(
            self._get(object_key, backup_id),
            Path(dest_path),
            ring,
            object_name=url,
            context=f"{backup_id}/{name}".encode(),
            expect=record,
        )

    def restore_backup(
        self, backup_id: str, dest_dir: Path, keys: KeyRing | BackupKey
    ) -> list[Path]:
        """Restore every file of a backup under ``dest_dir``, all or nothing.

        Files are restored into a staging directory inside ``dest_dir`` and moved into
        place only once all of them verified; on any error the staging directory is
        removed and ``dest_dir`` holds what it held before.

        :param backup_id: the backup.
        :param dest_dir: the directory to restore into (created if missing).
        :param keys: the key ring.
        :returns: the restored paths, in manifest order.
        :raises BackupError: the first problem found; nothing was moved into place.

        .. versionadded:: 0.3
        """
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        manifest = self.manifest(backup_id, keys)
        staging = Path(tempfile.mkdtemp(dir=dest, prefix=f".drdrill-restore-{backup_id}-"))
        try:
            for record in manifest.files:
                target = staging / record.name
                target.parent.mkdir(parents=True, exist_ok=True)
                self.restore_file(backup_id, record.name, target, keys)
            placed = []
            for record in manifest.files:
                final = dest / record.name
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / record.name, final)
                placed.append(final)
            return placed
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def copy_to(
        self,
        other: Catalog,
        keys: KeyRing | BackupKey,
        *,
        backup_ids: Iterable[str] | None = None,
    ) -> list[VerifyReport]:
        """Copy backups to another catalog (the DR region), verifying them there.

        Stored bytes are copied as they are (get, then put: two moto servers cannot copy
        server-side), checked against the manifest while they stream, verified in the
        target by full decryption, and only then listed there. Backups the target already
        lists are skipped.

        :param other: the target catalog.
        :param keys: the key ring, to authenticate manifests and verify copies.
        :param backup_ids: the backups to copy; all listed ones by default.
        :returns: the target's verification of each copied backup.
        :raises BackupError: when a source object is damaged or a copy does not verify;
            that backup is then not listed in the target.

        .. versionadded:: 0.3
        """
        ring = KeyRing.of(keys)
        wanted = list(backup_ids) if backup_ids is not None else self.backup_ids()
        present = set(other.backup_ids())
        reports = []
        for backup_id in wanted:
            if backup_id in present:
                continue
            manifest, raw, entry = self._load(backup_id, ring)
            for record in manifest.files:
                src_key = self.data_key(backup_id, record.name)
                body = _HashingReader(self._get(src_key, backup_id))
                other.client.upload_fileobj(
                    cast("IO[bytes]", body),
                    other.bucket,
                    other.data_key(backup_id, record.name),
                    Config=other._transfer,
                )
                if (body.size, body.digest.hexdigest()) != (
                    record.stored_size,
                    record.stored_sha256,
                ):
                    raise CorruptBackup(
                        self._url(src_key),
                        "does not match its manifest's size and SHA-256 while copied",
                    )
            other.client.put_object(
                Bucket=other.bucket, Key=other.manifest_key(backup_id), Body=raw
            )
            report = other._verify_manifest(manifest, ring)
            report.raise_if_failed()
            signer = ring.get(manifest.key_id)
            assert signer is not None  # _load checked the HMAC with it
            other._put_entry(manifest, raw, signer)
            logger.info("copied backup %s from %s to %s", backup_id, self.location, other.location)
            reports.append(report)
        return reports

    def find_wal(
        self, start: str, end: str, *, timeline: int = 1
    ) -> list[tuple[Manifest, BackupFile]]:
        """Return the stored WAL segments that cover ``start``..``end``, in order.

        :param start: first LSN needed (the base backup's ``wal_start``).
        :param end: the recovery target LSN.
        :param timeline: the timeline id.
        :raises MissingWalSegment: naming the first segment no ``postgres-wal`` backup holds.

        .. versionadded:: 0.3
        """
        return find_wal(
            self.list_backups("postgres-wal"), start, end, where=self.location, timeline=timeline
        )
