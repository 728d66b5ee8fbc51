"""The catalog's side of the bucket: object keys, reads, and entries with their checks.

:class:`CatalogStore` knows the layout described in :mod:`pytest_drdrill.backup.catalog`
and nothing of what a backup is for: it names objects, reads them (turning a missing
object into :class:`~pytest_drdrill.backup.errors.MissingObject`), lists catalog entries,
and loads a manifest only after its entry's SHA-256 (and, given keys, its HMAC) checked
out. :class:`~pytest_drdrill.backup.catalog.Catalog` builds writing, verifying,
restoring and copying on it; keeping the integrity checks of entries apart from those
operations lets each be read on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

import botocore.exceptions
from boto3.s3.transfer import TransferConfig

from pytest_drdrill.backup.errors import InvalidManifest, MissingObject, NoSuchBackup, UnknownKey
from pytest_drdrill.backup.manifest import Manifest, from_json, manifest_hmac
from pytest_drdrill.backup.streamformat import DEFAULT_CHUNK_SIZE

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from pytest_drdrill.backup.keys import BackupKey, KeyRing

ENTRY_FORMAT = 1
#: Multipart part size: with at most two parts in flight, an upload holds ~3 parts in memory.
PART_SIZE = 8 << 20


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class CatalogStore:
    """The layout and checked reads of one catalog; see :class:`~.catalog.Catalog`.

    :param client: an S3 client (``clients.s3.s3_client``); shared between threads.
    :param bucket: the bucket, which must exist.
    :param prefix: the key prefix every object of the catalog lives under.
    :param chunk_size: plaintext bytes per encrypted chunk of new backups.
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str = "drdrill-backups/",
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.chunk_size = chunk_size
        self._transfer = TransferConfig(
            multipart_threshold=PART_SIZE,
            multipart_chunksize=PART_SIZE,
            max_concurrency=2,
            preferred_transfer_client="classic",
        )
        # s3transfer's default (10 parts queued) would hold 80 MiB per upload or download.
        self._transfer.max_in_memory_upload_chunks = 2
        self._transfer.max_in_memory_download_chunks = 2

    @property
    def location(self) -> str:
        """``s3://bucket/prefix``, for messages."""
        return f"s3://{self.bucket}/{self.prefix}"

    def data_key(self, backup_id: str, name: str) -> str:
        """Return the object key of one file of a backup."""
        return f"{self.prefix}data/{backup_id}/{name}"

    def manifest_key(self, backup_id: str) -> str:
        """Return the object key of a backup's manifest."""
        return f"{self.prefix}manifests/{backup_id}.json"

    def entry_key(self, backup_id: str) -> str:
        """Return the object key of a backup's catalog entry."""
        return f"{self.prefix}catalog/{backup_id}.json"

    def _url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # --- low-level object access ------------------------------------------------------------

    def _get(self, key: str, backup_id: str | None) -> Any:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                raise MissingObject(self._url(key), backup_id) from None
            raise

    def _size(self, key: str, backup_id: str) -> int:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                raise MissingObject(self._url(key), backup_id) from None
            raise

    def _exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return False
            raise
        return True

    def backup_ids(self) -> list[str]:
        """The id of every backup listed in the catalog, read from the entries alone.

        Unlike :meth:`list_backups` it reads no manifest, so one damaged backup does not
        hide the others (the verification checks go through them one by one).

        .. versionadded:: 0.3
        """
        ids = []
        paginator = self.client.get_paginator("list_objects_v2")
        start = f"{self.prefix}catalog/"
        for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith(".json"):
                    ids.append(key[len(start) : -len(".json")])
        return ids

    def _read_entry(self, backup_id: str) -> dict[str, Any]:
        key = self.entry_key(backup_id)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                raise NoSuchBackup(
                    f"backup {backup_id}", self.location, self.backup_ids()
                ) from None
            raise
        try:
            entry = json.loads(body)
        except ValueError as exc:
            raise InvalidManifest(
                self._url(key), "", f"catalog entry is not JSON ({exc})"
            ) from None
        expected = {"format", "backup_id", "manifest", "manifest_sha256", "manifest_hmac", "kind"}
        if not isinstance(entry, dict) or set(entry) != expected | {"created_at"}:
            raise InvalidManifest(
                self._url(key),
                "",
                f"catalog entry needs exactly {sorted(expected | {'created_at'})}",
            )
        if entry["format"] != ENTRY_FORMAT or entry["backup_id"] != backup_id:
            raise InvalidManifest(self._url(key), "backup_id", "does not match the entry's name")
        return entry

    def _load(self, backup_id: str, keys: KeyRing | None) -> tuple[Manifest, bytes, dict[str, Any]]:
        """Read a backup's entry and manifest, checking the manifest's digest (and HMAC)."""
        entry = self._read_entry(backup_id)
        key = self.manifest_key(backup_id)
        if entry["manifest"] != key:
            raise InvalidManifest(
                self._url(self.entry_key(backup_id)), "manifest", f"must be {key}"
            )
        raw = self._get(key, backup_id).read()
        if hashlib.sha256(raw).hexdigest() != entry["manifest_sha256"]:
            raise InvalidManifest(
                self._url(key), "", "its SHA-256 differs from the one its catalog entry records"
            )
        manifest = from_json(raw, object_name=self._url(key))
        if manifest.backup_id != backup_id:
            raise InvalidManifest(self._url(key), "backup_id", f"is not {backup_id}")
        if keys is not None:
            signer = keys.get(manifest.key_id)
            if signer is None:
                raise UnknownKey(self._url(key), manifest.key_id, keys.ids)
            if not hmac.compare_digest(manifest_hmac(signer, raw), str(entry["manifest_hmac"])):
                raise InvalidManifest(
                    self._url(key), "", "its HMAC does not verify: it was altered after writing"
                )
        return manifest, raw, entry

    def _put_entry(self, manifest: Manifest, raw: bytes, key: BackupKey) -> None:
        entry = {
            "format": ENTRY_FORMAT,
            "backup_id": manifest.backup_id,
            "kind": manifest.kind,
            "created_at": manifest.created_at,
            "manifest": self.manifest_key(manifest.backup_id),
            "manifest_sha256": hashlib.sha256(raw).hexdigest(),
            "manifest_hmac": manifest_hmac(key, raw),
        }
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.entry_key(manifest.backup_id),
            Body=json.dumps(entry, sort_keys=True).encode(),
        )
