"""Backup manifests: what one backup holds, as strictly validated JSON.

A manifest lists every file of a backup with its plaintext and stored sizes and
SHA-256 digests, the key id that encrypted it, where it came from and the WAL/time range
it covers. It is written by :meth:`Catalog.put_backup` after every data object is in the
bucket.

A manifest is not encrypted (it holds no data, and listing backups must work without a
key) but it is protected twice: the catalog entry that lists a backup records the
manifest's SHA-256, checked on every read, and an HMAC-SHA256 under a subkey of the
backup key (see :func:`manifest_hmac`), checked whenever a key is at hand (verify,
restore, copy). A damaged manifest is therefore refused everywhere, and a forged one
wherever the key is present.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import hmac
import json
import re
import secrets
from typing import TYPE_CHECKING, Any, Literal, NoReturn, get_args

from pytest_drdrill import timing
from pytest_drdrill.backup.errors import InvalidManifest
from pytest_drdrill.clients.postgres import parse_lsn

if TYPE_CHECKING:
    from pytest_drdrill.backup.keys import BackupKey

MANIFEST_FORMAT = 1
BackupKind = Literal["postgres-base", "postgres-wal", "redis-snapshot", "objects"]
KINDS: tuple[str, ...] = get_args(BackupKind)
_BACKUP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_NAME_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*|\.[A-Za-z0-9_-][A-Za-z0-9._-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_LSN = re.compile(r"[0-9A-F]{1,8}/[0-9A-F]{1,8}")
_HMAC_INFO = b"pytest-drdrill manifest hmac v1"


def utc_now() -> str:
    """Return the current time as an ISO 8601 UTC string (microseconds, ``+00:00``).

    .. versionadded:: 0.3
    """
    return _dt.datetime.fromtimestamp(timing.wall(), tz=_dt.UTC).isoformat(timespec="microseconds")


def new_backup_id(kind: str, created_at: str) -> str:
    """Return a fresh backup id: UTC time stamp, kind and 8 random hex characters.

    Ids sort by creation time, and two writers never pick the same one.

    :param kind: the backup kind.
    :param created_at: the ISO UTC creation time.

    .. versionadded:: 0.3
    """
    stamp = _dt.datetime.fromisoformat(created_at).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{kind}-{secrets.token_hex(4)}"


def check_file_name(name: str) -> str | None:
    """Return why ``name`` cannot name a file in a backup, or ``None`` when it can.

    Names are relative POSIX paths (``base/16384/2619``) of plain parts: no ``..``, no
    empty parts, nothing an object key or a restore path could misread.

    :param name: the candidate.

    .. versionadded:: 0.3
    """
    if not name or len(name) > 1024:
        return "must be 1 to 1024 characters"
    for part in name.split("/"):
        if not _NAME_PART.fullmatch(part):
            return f"has the path part {part!r}; parts are letters, digits, '.', '_', '-'"
    return None


@dataclasses.dataclass(frozen=True)
class BackupFile:
    """One file of a backup, as stored.

    :param name: its relative path within the backup.
    :param size: plaintext bytes.
    :param sha256: hex SHA-256 of the plaintext.
    :param stored_size: bytes of the stored (encrypted) object.
    :param stored_sha256: hex SHA-256 of the stored object.

    .. versionadded:: 0.3
    """

    name: str
    size: int
    sha256: str
    stored_size: int
    stored_sha256: str


@dataclasses.dataclass(frozen=True)
class Manifest:
    """What one backup holds and where it came from.

    :param backup_id: unique id; also names its objects (see :func:`new_backup_id`).
    :param kind: ``postgres-base``, ``postgres-wal``, ``redis-snapshot`` or ``objects``.
    :param source: the node and region it was taken from, e.g. ``pg-primary/primary``.
    :param created_at: ISO 8601 UTC time it was taken.
    :param key_id: id of the key its files are encrypted with.
    :param files: the files, in the order they were stored.
    :param wal_start: first LSN covered (``X/Y``), for PostgreSQL backups.
    :param wal_end: LSN up to which it is consistent / WAL reaches.
    :param time_start: ISO UTC time of the first change covered.
    :param time_end: ISO UTC time of the last change covered.
    :param data_category: the data classification, e.g. ``pii`` or ``unclassified``.
    :param extra: further JSON values (tool versions, labels).

    .. versionadded:: 0.3
    """

    backup_id: str
    kind: BackupKind
    source: str
    created_at: str
    key_id: str = ""
    files: tuple[BackupFile, ...] = ()
    wal_start: str | None = None
    wal_end: str | None = None
    time_start: str | None = None
    time_end: str | None = None
    data_category: str = "unclassified"
    extra: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False)

    @classmethod
    def new(cls, kind: BackupKind, source: str, **fields: Any) -> Manifest:
        """Start the manifest of a new backup; :meth:`Catalog.put_backup` fills in the files.

        :param kind: the backup kind.
        :param source: the node and region it is taken from.
        :param fields: any other field (``wal_start``, ``time_end``, ``extra`` ...).
        :returns: a manifest with a fresh id and creation time.
        """
        created_at = fields.pop("created_at", None) or utc_now()
        backup_id = fields.pop("backup_id", None) or new_backup_id(kind, created_at)
        return cls(backup_id=backup_id, kind=kind, source=source, created_at=created_at, **fields)

    def file(self, name: str) -> BackupFile | None:
        """Return the record of the file called ``name``, or ``None``."""
        for record in self.files:
            if record.name == name:
                return record
        return None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON document, with its format version."""
        document = dataclasses.asdict(self)
        document["files"] = [dataclasses.asdict(record) for record in self.files]
        return {"format": MANIFEST_FORMAT, **document}

    def to_json(self) -> str:
        """Return the manifest as JSON text (keys sorted, so equal manifests are equal bytes).

        :raises InvalidManifest: when a field is invalid (it would not read back).
        """
        text = json.dumps(self.to_dict(), sort_keys=True, indent=1, ensure_ascii=True)
        from_json(text, object_name=f"manifest of {self.backup_id}")
        return text


def manifest_hmac(key: BackupKey, manifest_bytes: bytes) -> str:
    """Return the hex HMAC-SHA256 of a manifest's bytes under a subkey of ``key``.

    :param key: the backup key named by the manifest.
    :param manifest_bytes: the manifest as stored.

    .. versionadded:: 0.3
    """
    return hmac.new(key.derive(_HMAC_INFO), manifest_bytes, hashlib.sha256).hexdigest()


class _Reader:
    """Typed access to one JSON object, raising InvalidManifest naming the key."""

    def __init__(self, document: object, object_name: str, path: str = "") -> None:
        self.object_name = object_name
        self.path = path
        if not isinstance(document, dict):
            self.fail("", f"must be a JSON object, not {type(document).__name__}")
        self.document: dict[str, Any] = document

    def fail(self, key: str, problem: str) -> NoReturn:
        where = f"{self.path}.{key}" if self.path and key else (key or self.path)
        raise InvalidManifest(self.object_name, where, problem)

    def exactly(self, keys: set[str]) -> None:
        present = set(self.document)
        for key in sorted(keys - present):
            self.fail(key, "is missing")
        for key in sorted(present - keys):
            self.fail(key, "is not a manifest key (a newer format, or a typo)")

    def text(self, key: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self.document[key]
        if not isinstance(value, str):
            self.fail(key, f"must be a string, not {json.dumps(value)[:40]}")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(key, f"{value[:80]!r} does not match {pattern.pattern}")
        return value

    def maybe_text(self, key: str, pattern: re.Pattern[str] | None = None) -> str | None:
        return None if self.document[key] is None else self.text(key, pattern)

    def integer(self, key: str) -> int:
        value = self.document[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(key, f"must be a non-negative integer, not {json.dumps(value)[:40]}")
        return value

    def time(self, key: str) -> str:
        value = self.text(key)
        try:
            parsed = _dt.datetime.fromisoformat(value)
        except ValueError:
            self.fail(key, f"{value[:40]!r} is not an ISO 8601 time")
        if parsed.utcoffset() != _dt.timedelta(0):
            self.fail(key, f"{value!r} must be in UTC (+00:00 or Z)")
        return value

    def maybe_time(self, key: str) -> str | None:
        return None if self.document[key] is None else self.time(key)


def from_dict(document: object, *, object_name: str = "<manifest>") -> Manifest:
    """Build a manifest from its JSON document, validating every key.

    :param document: the parsed JSON.
    :param object_name: names the manifest in errors.
    :raises InvalidManifest: naming the first key at fault.

    .. versionadded:: 0.3
    """
    top = _Reader(document, object_name)
    fmt = top.document.get("format")
    if fmt != MANIFEST_FORMAT:
        top.fail("format", f"is {fmt!r}; this pytest-drdrill reads format {MANIFEST_FORMAT}")
    names = {field.name for field in dataclasses.fields(Manifest)}
    top.exactly(names | {"format"})
    kind = top.text("kind")
    if kind not in KINDS:
        top.fail("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    source = top.text("source")
    category = top.text("data_category")
    for key, value in (("source", source), ("data_category", category)):
        if not value.strip():
            top.fail(key, "must not be empty")
    if not isinstance(top.document["files"], list):
        top.fail("files", "must be a list")
    files = []
    for number, item in enumerate(top.document["files"]):
        entry = _Reader(item, object_name, f"files[{number}]")
        entry.exactly({field.name for field in dataclasses.fields(BackupFile)})
        name = entry.text("name")
        if (why := check_file_name(name)) is not None:
            entry.fail("name", f"{name[:80]!r} {why}")
        files.append(
            BackupFile(
                name=name,
                size=entry.integer("size"),
                sha256=entry.text("sha256", _SHA256),
                stored_size=entry.integer("stored_size"),
                stored_sha256=entry.text("stored_sha256", _SHA256),
            )
        )
    seen: set[str] = set()
    for record in files:
        if record.name in seen:
            top.fail("files", f"lists {record.name!r} twice")
        seen.add(record.name)
    wal_start = top.maybe_text("wal_start", _LSN)
    wal_end = top.maybe_text("wal_end", _LSN)
    if (wal_start is None) != (wal_end is None):
        top.fail("wal_end", "wal_start and wal_end are both set or both null")
    if wal_start and wal_end and parse_lsn(wal_start) > parse_lsn(wal_end):
        top.fail("wal_end", f"{wal_end} is before wal_start {wal_start}")
    time_start = top.maybe_time("time_start")
    time_end = top.maybe_time("time_end")
    if (
        time_start is not None
        and time_end is not None
        and _dt.datetime.fromisoformat(time_start) > _dt.datetime.fromisoformat(time_end)
    ):
        top.fail("time_end", f"{time_end} is before time_start {time_start}")
    extra = top.document["extra"]
    if not isinstance(extra, dict):
        top.fail("extra", "must be a JSON object")
    return Manifest(
        backup_id=top.text("backup_id", _BACKUP_ID),
        kind=kind,  # type: ignore[arg-type]  # checked against KINDS above
        source=source,
        created_at=top.time("created_at"),
        key_id=top.text("key_id", _KEY_ID),
        files=tuple(files),
        wal_start=wal_start,
        wal_end=wal_end,
        time_start=time_start,
        time_end=time_end,
        data_category=category,
        extra=dict(extra),
    )


def from_json(text: str | bytes, *, object_name: str = "<manifest>") -> Manifest:
    """Parse and validate a manifest written by :meth:`Manifest.to_json`.

    :param text: the JSON text or bytes.
    :param object_name: names the manifest in errors.
    :raises InvalidManifest: when it is not JSON or a key is missing, unknown or invalid.

    .. versionadded:: 0.3
    """
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidManifest(object_name, "", f"it is not JSON ({exc})") from None
    return from_dict(document, object_name=object_name)
