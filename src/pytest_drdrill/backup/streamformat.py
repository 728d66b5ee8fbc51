"""The wire format of the encrypted stream: header, chunk cipher, sizes, key choice.

The format itself is specified in :mod:`pytest_drdrill.backup.stream`. This module holds
the pieces both directions share (packing and parsing the header, sealing and opening
chunks, picking the key a header names), apart from the streaming loops, so each side of
the format is read in one place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pytest_drdrill.backup.errors import CorruptBackup, UnknownKey, WrongKey
from pytest_drdrill.backup.keys import BackupKey, KeyRing

MAGIC = b"\x89DRDBAK\n"
FORMAT_VERSION = 1
TAG_SIZE = 16
DEFAULT_CHUNK_SIZE = 1 << 20
MAX_CHUNK_SIZE = 64 << 20
_FIELDS = struct.Struct(">8sBBI16s32s")
_CHECK_SIZE = 8
HEADER_SIZE = _FIELDS.size + _CHECK_SIZE
SALT_SIZE = 32
_STREAM_INFO = b"pytest-drdrill stream v1"
_KEY_ID = re.compile(rb"[0-9a-f]{16}")


@dataclasses.dataclass(frozen=True)
class StreamInfo:
    """Sizes and SHA-256 digests of one stream, plaintext and stored.

    :param plain_bytes: plaintext length.
    :param stored_bytes: length of the stored (encrypted) form.
    :param plain_sha256: hex SHA-256 of the plaintext.
    :param stored_sha256: hex SHA-256 of the stored form; ``None`` when a restore did not
        compute it (:func:`decrypt_to_path` with ``expect``: every chunk authenticated
        and the plaintext digest matched the manifest, which says more).
    :param key_id: the key that encrypted it; ``None`` for an unencrypted copy.
    :param chunk_size: plaintext bytes per chunk; ``None`` for an unencrypted copy.

    .. versionadded:: 0.3
    """

    plain_bytes: int
    stored_bytes: int
    plain_sha256: str
    stored_sha256: str | None
    key_id: str | None = None
    chunk_size: int | None = None


def stored_size(plain_bytes: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """Return the stored length of a stream of ``plain_bytes`` plaintext bytes.

    :param plain_bytes: plaintext length.
    :param chunk_size: the stream's chunk size.

    .. versionadded:: 0.3
    """
    full, rest = divmod(plain_bytes, chunk_size)
    return HEADER_SIZE + full * (chunk_size + TAG_SIZE) + rest + TAG_SIZE


def pack_header(key_id: str, chunk_size: int, salt: bytes) -> bytes:
    """The stream header for ``key_id``: fixed fields, then their check bytes."""
    fields = _FIELDS.pack(MAGIC, FORMAT_VERSION, 0, chunk_size, key_id.encode("ascii"), salt)
    return fields + hashlib.sha256(fields).digest()[:_CHECK_SIZE]


class Chunks:
    """AES-256-GCM for the chunks of one stream (both directions)."""

    def __init__(self, key: BackupKey, header: bytes, salt: bytes, context: bytes) -> None:
        material = key.derive(_STREAM_INFO, salt=salt, length=36)
        self._aead = AESGCM(material[:32])
        self._prefix = material[32:]
        self._header = header
        self._context = bytes(context)

    def _nonce_ad(self, index: int, *, final: bool) -> tuple[bytes, bytes]:
        counter = index.to_bytes(8, "big")
        return self._prefix + counter, b"".join(
            (self._header, counter, b"\x01" if final else b"\x00", self._context)
        )

    def seal(self, index: int, plain: bytes, *, final: bool) -> bytes:
        """Encrypt chunk ``index``; the last chunk is sealed as final, so truncation shows."""
        nonce, ad = self._nonce_ad(index, final=final)
        return self._aead.encrypt(nonce, plain, ad)

    def open(self, index: int, stored: bytes, *, final: bool) -> bytes:
        """Decrypt and authenticate chunk ``index``."""
        nonce, ad = self._nonce_ad(index, final=final)
        return self._aead.decrypt(nonce, stored, ad)


def check_chunk_size(chunk_size: int) -> None:
    """Refuse a chunk size outside 1 byte to :data:`MAX_CHUNK_SIZE`."""
    if not isinstance(chunk_size, int) or not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be 1..{MAX_CHUNK_SIZE} bytes, not {chunk_size!r}")


@dataclasses.dataclass(frozen=True)
class _Header:
    key_id: str
    chunk_size: int
    salt: bytes
    raw: bytes


def parse_header(raw: bytes, name: str) -> _Header:
    """The header fields of ``raw``, checked; :class:`CorruptBackup` naming ``name`` if damaged."""
    if not raw:
        raise CorruptBackup(name, "is empty: even an empty backup has a header and a chunk")
    if raw[: len(MAGIC)] != MAGIC[: len(raw)]:
        raise CorruptBackup(
            name,
            "does not start with the pytest-drdrill stream magic: it is not an encrypted "
            "backup stream, or its first bytes are damaged",
        )
    if len(raw) <= len(MAGIC):
        raise CorruptBackup(name, f"ends inside the header ({len(raw)} of {HEADER_SIZE} bytes)")
    if raw[len(MAGIC)] != FORMAT_VERSION:
        raise CorruptBackup(
            name,
            f"has stream format version {raw[len(MAGIC)]}, and this pytest-drdrill reads only "
            f"version {FORMAT_VERSION}: the header is damaged or a newer pytest-drdrill wrote it",
        )
    if len(raw) < HEADER_SIZE:
        raise CorruptBackup(name, f"ends inside the header ({len(raw)} of {HEADER_SIZE} bytes)")
    fields, check = raw[: _FIELDS.size], raw[_FIELDS.size :]
    if hashlib.sha256(fields).digest()[:_CHECK_SIZE] != check:
        raise CorruptBackup(name, "has a damaged header (its check bytes do not match)")
    _, _, flags, chunk_size, key_id, salt = _FIELDS.unpack(fields)
    if flags != 0:
        raise CorruptBackup(name, f"has header flags {flags:#04x}, which this version never sets")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise CorruptBackup(name, f"declares a chunk size of {chunk_size} bytes, out of range")
    if not _KEY_ID.fullmatch(key_id):
        raise CorruptBackup(name, "has a malformed key id in its header")
    return _Header(key_id.decode("ascii"), chunk_size, salt, raw)


def pick_key(keys: KeyRing | BackupKey, key_id: str, name: str) -> BackupKey:
    """The key a header names, from a key ring or a single key; refused when absent."""
    if isinstance(keys, BackupKey):
        if keys.key_id != key_id:
            raise WrongKey(name, key_id, keys.key_id)
        return keys
    key = keys.get(key_id)
    if key is None:
        raise UnknownKey(name, key_id, keys.ids)
    return key
