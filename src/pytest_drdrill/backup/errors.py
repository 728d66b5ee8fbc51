"""Errors of the backup storage format: keys, encrypted streams, manifests and the catalog.

Every message names the object (``s3://bucket/key`` or a local path) or the setting at
fault and says how to fix it. No message ever contains key material: keys are named by
their key id only.
"""

from __future__ import annotations

from collections.abc import Iterable

from pytest_drdrill.errors import DrillError

_KEY_SETTINGS = (
    "the DRDRILL_BACKUP_KEY environment variable or the key file given by "
    "--drill-backup-key-file / drill_backup_key_file"
)


class BackupError(DrillError):
    """Root of the errors raised while writing, reading or restoring backups.

    .. versionadded:: 0.3
    """


class KeyNotConfigured(BackupError, LookupError):
    """No backup key was configured where one was looked for.

    .. versionadded:: 0.3
    """


class InvalidKey(BackupError, ValueError):
    """Key material is malformed (encoding, length) or its key file is unsafe.

    .. versionadded:: 0.3
    """


class CorruptBackup(BackupError, ValueError):
    """A stored object is damaged, truncated, reordered or extended: it fails authentication.

    :param object_name: the object (``s3://bucket/key``) or file that failed.
    :param reason: what was found wrong.
    :param chunk_index: the chunk where the problem was found, when it is one chunk.

    .. versionadded:: 0.3
    """

    def __init__(self, object_name: str, reason: str, chunk_index: int | None = None) -> None:
        self.object_name = object_name
        self.reason = reason
        self.chunk_index = chunk_index
        where = f" (chunk {chunk_index})" if chunk_index is not None else ""
        super().__init__(
            f"{object_name}: {reason}{where}. The stored object is damaged or incomplete and "
            f"was refused; nothing was restored from it. Restore from the other region's copy "
            f"or from an earlier backup, and check the bucket for partial or overwritten objects."
        )


class WrongKey(BackupError, ValueError):
    """The stream was encrypted with a different key than the one given.

    :param object_name: the object that could not be decrypted.
    :param key_id: the id of the key the object needs.
    :param given_id: the id of the key that was given.

    .. versionadded:: 0.3
    """

    def __init__(self, object_name: str, key_id: str, given_id: str) -> None:
        self.object_name = object_name
        self.key_id = key_id
        self.given_id = given_id
        super().__init__(
            f"{object_name} was encrypted with key id {key_id}, but the key given has id "
            f"{given_id}. Provide the key with id {key_id} through {_KEY_SETTINGS} (older keys "
            f"stay needed after a rotation for as long as their backups are kept)."
        )


class UnknownKey(BackupError, LookupError):
    """The key a stream or manifest names is not in the key ring.

    :param object_name: the object that could not be decrypted.
    :param key_id: the id of the key the object needs.
    :param known_ids: the ids the key ring holds.

    .. versionadded:: 0.3
    """

    def __init__(self, object_name: str, key_id: str, known_ids: Iterable[str]) -> None:
        self.object_name = object_name
        self.key_id = key_id
        self.known_ids = tuple(known_ids)
        known = ", ".join(self.known_ids) or "none"
        super().__init__(
            f"{object_name} was encrypted with key id {key_id}, which is not among the loaded "
            f"keys (ids: {known}). Add the key with id {key_id} to {_KEY_SETTINGS}; "
            f"'python -m pytest_drdrill.backup.keys id' prints the id of a key."
        )


class InvalidManifest(BackupError, ValueError):
    """A manifest or catalog entry is malformed, or does not match what was recorded for it.

    :param object_name: the manifest's object or file.
    :param key: the JSON key at fault (dotted path), or ``""`` for the whole document.
    :param problem: what is wrong with it.

    .. versionadded:: 0.3
    """

    def __init__(self, object_name: str, key: str, problem: str) -> None:
        self.object_name = object_name
        self.key = key
        self.problem = problem
        at = f" at key {key!r}" if key else ""
        super().__init__(
            f"{object_name}: invalid manifest{at}: {problem}. Manifests are written only by "
            f"pytest-drdrill's Catalog.put_backup; a hand-edited or damaged one must be "
            f"restored from the other region's copy."
        )


class MissingObject(BackupError, LookupError):
    """An object a backup's manifest lists is not in the bucket.

    :param object_name: the missing object, ``s3://bucket/key``.
    :param backup_id: the backup that lists it, when known.

    .. versionadded:: 0.3
    """

    def __init__(self, object_name: str, backup_id: str | None = None) -> None:
        self.object_name = object_name
        self.backup_id = backup_id
        of = f" of backup {backup_id}" if backup_id else ""
        super().__init__(
            f"{object_name}{of} is missing from the bucket. The backup cannot be restored "
            f"from this region; restore it from the other region's copy (Catalog.copy_to keeps "
            f"one) or choose another backup with Catalog.list_backups()."
        )


class NoSuchBackup(BackupError, LookupError):
    """A backup id, or a file name within a backup, is not in the catalog.

    :param what: what was asked for.
    :param where: the catalog (bucket and prefix) or backup searched.
    :param available: what is there instead, to choose from.

    .. versionadded:: 0.3
    """

    def __init__(self, what: str, where: str, available: Iterable[str] = ()) -> None:
        self.what = what
        self.where = where
        self.available = tuple(available)
        shown = ", ".join(self.available[:10]) + (" ..." if len(self.available) > 10 else "")
        super().__init__(
            f"{what} is not in {where}. It holds: {shown or 'nothing'}. Use "
            f"Catalog.list_backups() to choose one."
        )


class MissingWalSegment(BackupError, LookupError):
    """A WAL segment needed to reach a recovery point is in no backup of the catalog.

    :param segment: the 24-character WAL file name that is missing.
    :param needed: the LSN range the recovery needs, ``start..end``.
    :param where: the catalog searched (bucket and prefix).

    .. versionadded:: 0.3
    """

    def __init__(self, segment: str, needed: str, where: str) -> None:
        self.segment = segment
        self.needed = needed
        self.where = where
        super().__init__(
            f"WAL segment {segment} is missing from {where}: recovery over {needed} needs every "
            f"segment of that range, so it cannot go past the segment before it. Check WAL "
            f"archiving (archive_command) on the source, or recover to an earlier point."
        )
