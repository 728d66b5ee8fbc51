"""Backups of a workload bucket's objects into the catalog, and their restore.

A backup holds the current version of every object: its body as one encrypted file of
the backup, its key, version id, content type, user metadata and the standard headers
in the manifest's ``extra``. The manifest is authenticated (its HMAC), so a restore puts
back exactly the headers that were recorded.

Object keys are free text (spaces, ``..``, trailing slashes) while backup file names are
plain relative paths, so each body is stored under a numbered name (``objects/000000``)
and ``extra["objects"]`` maps names to keys.

Each body is fetched by the version id its ``HEAD`` reported, so body and headers belong
to the same version even while the workload overwrites the object. A restore first
decrypts and checks every body (:meth:`Catalog.restore_backup`, all or nothing) and only
then writes to the bucket: a damaged backup writes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from pytest_drdrill.backup.errors import InvalidManifest, NoSuchBackup
from pytest_drdrill.backup.manifest import Manifest, utc_now

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from pytest_drdrill.backup.catalog import Catalog
    from pytest_drdrill.backup.keys import BackupKey, KeyRing

logger = logging.getLogger(__name__)

#: The data category of object backups (fixtures/targets.yaml, section 2.2).
OBJECTS_CATEGORY = "video_content"
#: Response headers of HEAD recorded and given back to PUT, with their PUT parameter.
_HEADERS = ("CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage")


@dataclasses.dataclass(frozen=True)
class StoredObject:
    """One object of an ``objects`` backup, as recorded in the manifest's ``extra``.

    :param file: the file of the backup holding its body.
    :param key: the object key.
    :param version_id: the version backed up (``None`` in an unversioned bucket).
    :param content_type: its ``Content-Type``.
    :param metadata: its user metadata (``x-amz-meta-*``).
    :param headers: other standard headers it had, by PUT parameter name.

    .. versionadded:: 0.3
    """

    file: str
    key: str
    version_id: str | None
    content_type: str
    metadata: dict[str, str] = dataclasses.field(default_factory=dict, hash=False)
    headers: dict[str, str] = dataclasses.field(default_factory=dict, hash=False)


class _VersionBody:
    """Reads one object version's body, opening the GET only when first read."""

    def __init__(self, client: S3Client, bucket: str, key: str, pin: dict[str, str]) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.pin = pin
        self._body: Any = None

    def read(self, size: int = -1, /) -> bytes:
        if self._body is None:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key, **self.pin)  # type: ignore[arg-type]
            self._body = response["Body"]
        data: bytes = self._body.read(None if size < 0 else size)
        if not data:
            self._body.close()
        return data


def _current_objects(client: S3Client, bucket: str) -> list[tuple[StoredObject, dict[str, str]]]:
    """Each current object with the GET arguments that pin its body to the version seen."""
    found: list[tuple[StoredObject, dict[str, str]]] = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            try:
                head: Any = client.head_object(Bucket=bucket, Key=item["Key"])
            except botocore.exceptions.ClientError as exc:
                # Deleted since the listing: it has no current version left to back up.
                if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey"):
                    continue
                raise
            version = head.get("VersionId")
            version = None if version in (None, "null") else str(version)
            obj = StoredObject(
                file=f"objects/{len(found):06d}",
                key=item["Key"],
                version_id=version,
                content_type=head.get("ContentType", "binary/octet-stream"),
                metadata=dict(head.get("Metadata", {})),
                headers={name: str(head[name]) for name in _HEADERS if head.get(name)},
            )
            # An unversioned bucket has no version to ask for; its ETag pins the body.
            pin = {"VersionId": version} if version else {"IfMatch": str(head["ETag"])}
            found.append((obj, pin))
    return found


def backup_objects(
    s3_client: S3Client,
    bucket: str,
    catalog: Catalog,
    key: BackupKey,
    *,
    source: str,
    data_category: str = OBJECTS_CATEGORY,
) -> Manifest:
    """Back up the current version of every object of ``bucket`` into ``catalog``.

    :param s3_client: a client of the store holding the bucket.
    :param bucket: the workload's bucket.
    :param catalog: where the backup goes.
    :param key: the key to encrypt with.
    :param source: names the store and region in the manifest, e.g. ``s3-primary (primary)``.
    :param data_category: the targets file's data category of the objects.
    :returns: the stored manifest, kind ``objects``; ``extra["objects"]`` lists each
        object as a :class:`StoredObject` dictionary, ``time_start``/``time_end`` span
        the listing.

    .. versionadded:: 0.3
    """
    time_start = utc_now()
    found = _current_objects(s3_client, bucket)
    time_end = utc_now()
    files = {obj.file: _VersionBody(s3_client, bucket, obj.key, pin) for obj, pin in found}
    manifest = Manifest.new(
        "objects",
        source,
        time_start=time_start,
        time_end=time_end,
        data_category=data_category,
        extra={"bucket": bucket, "objects": [dataclasses.asdict(obj) for obj, _ in found]},
    )
    stored = catalog.put_backup(manifest, files, key)  # type: ignore[arg-type]
    logger.info("backup %s: %d objects of bucket %s", stored.backup_id, len(found), bucket)
    return stored


def stored_objects(manifest: Manifest, *, where: str = "<manifest>") -> list[StoredObject]:
    """Return the objects an ``objects`` backup records, checked against its files.

    :param manifest: the backup's manifest.
    :param where: names the manifest in errors.
    :raises InvalidManifest: when ``extra["objects"]`` is malformed or does not list
        exactly the backup's files.

    .. versionadded:: 0.3
    """
    records = manifest.extra.get("objects")
    if not isinstance(records, list):
        raise InvalidManifest(where, "extra.objects", "must be a list of objects")
    fields = {field.name for field in dataclasses.fields(StoredObject)}
    objects = []
    for number, record in enumerate(records):
        if not isinstance(record, dict) or set(record) != fields:
            raise InvalidManifest(
                where, f"extra.objects[{number}]", f"needs exactly {sorted(fields)}"
            )
        objects.append(StoredObject(**record))
    if sorted(obj.file for obj in objects) != sorted(f.name for f in manifest.files):
        raise InvalidManifest(where, "extra.objects", "does not list exactly the backup's files")
    return objects


def restore_objects(
    catalog: Catalog,
    keys: KeyRing | BackupKey,
    backup_id: str,
    s3_client: S3Client,
    bucket: str,
    *,
    workdir: Path | None = None,
) -> list[str]:
    """Put the objects of an ``objects`` backup into ``bucket``, bodies and headers.

    Every body is decrypted and checked first, into a staging directory; the bucket is
    written only when all of them checked out. Objects of the bucket that the backup does
    not hold are left alone.

    :param catalog: where the backup is.
    :param keys: the key ring.
    :param backup_id: an ``objects`` backup.
    :param s3_client: a client of the store to restore into.
    :param bucket: the bucket to restore into; it must exist.
    :param workdir: where the staging directory goes (the system's temp dir by default);
        it needs room for every body.
    :returns: the object keys written, in backup order.
    :raises NoSuchBackup: when ``backup_id`` is not an ``objects`` backup in ``catalog``.
    :raises BackupError: when any stored object fails verification; nothing was written.

    .. versionadded:: 0.3
    """
    manifest = catalog.manifest(backup_id, keys)
    if manifest.kind != "objects":
        choices = [m.backup_id for m in catalog.list_backups("objects")]
        raise NoSuchBackup(
            f"object backup {backup_id} (it is {manifest.kind})", catalog.location, choices
        )
    objects = stored_objects(manifest, where=catalog.manifest_key(backup_id))
    with tempfile.TemporaryDirectory(prefix="drdrill-objects-", dir=workdir) as staging:
        catalog.restore_backup(backup_id, Path(staging), keys)
        for obj in objects:
            with open(Path(staging, obj.file), "rb") as body:
                s3_client.put_object(
                    Bucket=bucket,
                    Key=obj.key,
                    Body=body,
                    ContentType=obj.content_type,
                    Metadata=obj.metadata,
                    **obj.headers,  # type: ignore[arg-type]
                )
    logger.info("restored %d objects of backup %s into %s", len(objects), backup_id, bucket)
    return [obj.key for obj in objects]
