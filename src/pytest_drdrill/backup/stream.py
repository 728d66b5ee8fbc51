r"""The encrypted stream format of backup objects: AES-256-GCM in authenticated chunks.

A stream is a fixed 70-byte header followed by one or more chunks. All integers are
unsigned big-endian.

Header (70 bytes)::

    offset size  field
         0    8  magic, the bytes 89 44 52 44 42 41 4B 0A ("\x89DRDBAK\n")
         8    1  format version, 1
         9    1  flags, 0 (readers refuse any other value)
        10    4  chunk size C in plaintext bytes, 1 <= C <= 64 MiB
        14   16  key id: 16 lowercase hex ASCII characters (see ``keys.key_id_of``)
        30   32  salt: 32 random bytes, new for every stream
        62    8  check: the first 8 bytes of SHA-256 over header bytes 0..61

The check is not a security measure (the chunks authenticate the header, see below);
it lets a reader report a damaged header as damage before it looks up the key.

Keys. ``HKDF-SHA256(ikm=<the 32-byte backup key>, salt=<header salt>,
info=b"pytest-drdrill stream v1", length=36)`` gives the stream key (bytes 0..31) and a
4-byte nonce prefix (bytes 32..35). Every stream thus has its own AES key, and nonces
only need to be unique within a stream.

Chunks. Chunk ``i`` (counting from 0) encrypts plaintext bytes ``[i*C, (i+1)*C)``. Every
chunk holds exactly C plaintext bytes except the last, the *final* chunk, which holds
0 to C-1 bytes: a plaintext whose length is a multiple of C (including 0) ends with an
empty final chunk. A stored chunk is the AES-256-GCM ciphertext followed by its 16-byte
tag, so non-final chunks are ``C + 16`` bytes and the final one ``16..C+15`` bytes::

    nonce_i = nonce_prefix || uint64(i)                              (12 bytes)
    ad_i    = header (70 bytes) || uint64(i) || uint8(final) || context
    chunk_i = AES-256-GCM-Encrypt(stream key, nonce_i, plaintext_i, ad_i)   (ct || tag)

``final`` is 1 for the last chunk and 0 otherwise. ``context`` is an optional byte
string the application binds the stream to without storing it (the catalog uses
``b"<backup id>/<file name>"``, so an object moved under another name fails to decrypt);
it is empty by default.

Reading. A reader reads the header, then repeatedly up to ``C + 16`` bytes: a full read
is a non-final chunk, a shorter one (at least 16 bytes) is the final chunk, after which
the stream must end. Because the index and the final flag are authenticated, reordered,
duplicated or dropped chunks, a stream cut at any byte (the missing final chunk is
noticed), bytes appended after the final chunk and any change to the header all fail.
The stored size is ``70 + (n // C) * (C + 16) + (n % C) + 16`` for ``n`` plaintext bytes.

Speed: chunks are large (1 MiB by default) and the cipher runs in OpenSSL. The reading
or writing thread only moves bytes and runs the cipher; the digests and the file writes
run on worker threads, one piece in flight each (hashlib, the cipher and file writes all
release the GIL), so memory stays at a few chunks whatever the size. A restore against a
manifest skips the stored digest, which authentication makes redundant (see
:func:`decrypt_to_path`).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag

from pytest_drdrill.backup.errors import CorruptBackup
from pytest_drdrill.backup.keys import BackupKey, KeyRing
from pytest_drdrill.backup.streamformat import (
    DEFAULT_CHUNK_SIZE,
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    MAX_CHUNK_SIZE,
    SALT_SIZE,
    TAG_SIZE,
    Chunks,
    StreamInfo,
    check_chunk_size,
    pack_header,
    parse_header,
    pick_key,
    stored_size,
)
from pytest_drdrill.backup.streamio import (
    Background,
    Digest,
    Readable,
    Writable,
    read_exact,
    replacing,
    stream_name,
    stream_worker,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from _typeshed import WriteableBuffer

    from pytest_drdrill.backup.manifest import BackupFile

#: Names defined in :mod:`~.streamformat` and :mod:`~.streamio` are re-exported here,
#: where callers and the documentation have always found them.
__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_CHUNK_SIZE",
    "TAG_SIZE",
    "EncryptingReader",
    "Readable",
    "StreamInfo",
    "Writable",
    "decrypt_stream",
    "decrypt_to_path",
    "encrypt_stream",
    "stored_size",
    "verify_stream",
]


class _Encryption:
    """The pieces of one encrypted stream (header, then chunks), hashed as they go."""

    def __init__(
        self, src: Readable, key: BackupKey, chunk_size: int, context: bytes, *, parallel: bool
    ) -> None:
        check_chunk_size(chunk_size)
        self.src = src
        self.key = key
        self.chunk_size = chunk_size
        self.context = context
        self.parallel = parallel
        self.info: StreamInfo | None = None

    def pieces(self) -> Iterator[bytes]:
        with contextlib.ExitStack() as stack:
            pool = stack.enter_context(stream_worker(2)) if self.parallel else None
            plain_digest, stored_digest = Digest(pool), Digest(pool)
            salt = os.urandom(SALT_SIZE)
            header = pack_header(self.key.key_id, self.chunk_size, salt)
            chunks = Chunks(self.key, header, salt, self.context)
            stored_digest.update(header)
            yield header
            index = 0
            while True:
                plain = read_exact(self.src, self.chunk_size)
                final = len(plain) < self.chunk_size
                plain_digest.update(plain)
                stored = chunks.seal(index, plain, final=final)
                stored_digest.update(stored)
                yield stored
                if final:
                    break
                index += 1
            self.info = StreamInfo(
                plain_bytes=plain_digest.size,
                stored_bytes=stored_digest.size,
                plain_sha256=plain_digest.hexdigest(),
                stored_sha256=stored_digest.hexdigest(),
                key_id=self.key.key_id,
                chunk_size=self.chunk_size,
            )


def encrypt_stream(
    src: Readable,
    dst: Writable,
    key: BackupKey,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    context: bytes = b"",
) -> StreamInfo:
    """Encrypt ``src`` into ``dst`` in the stream format of this module.

    :param src: the plaintext, read to its end.
    :param dst: receives the stored form.
    :param key: the key to encrypt with; its id goes into the header.
    :param chunk_size: plaintext bytes per chunk (1 MiB by default).
    :param context: bytes the stream is bound to; decrypting needs the same.
    :returns: sizes and digests of both forms.
    :raises ValueError: on a chunk size out of range.

    .. versionadded:: 0.3
    """
    job = _Encryption(src, key, chunk_size, context, parallel=True)
    for piece in job.pieces():
        dst.write(piece)
    assert job.info is not None
    return job.info


class EncryptingReader(io.RawIOBase):
    """A read-only file whose content is the encrypted form of ``src``, made as it is read.

    For uploads that pull their data (``upload_fileobj``): memory stays at a chunk or two.
    :attr:`info` is set once the stream has been read to its end.

    :param src: the plaintext.
    :param key: the key to encrypt with.
    :param chunk_size: plaintext bytes per chunk.
    :param context: bytes the stream is bound to.

    .. versionadded:: 0.3
    """

    def __init__(
        self,
        src: Readable,
        key: BackupKey,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        context: bytes = b"",
    ) -> None:
        super().__init__()
        self._job = _Encryption(src, key, chunk_size, context, parallel=True)
        self._pieces: Iterator[bytes] | None = self._job.pieces()
        self._piece = memoryview(b"")

    @property
    def info(self) -> StreamInfo | None:
        """Sizes and digests, once the end was read; ``None`` before."""
        return self._job.info

    def readable(self) -> bool:
        """Return ``True``."""
        return True

    def seekable(self) -> bool:
        """Return ``False``: the stream is made once, front to back."""
        return False

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        """Fill ``buffer`` with the next stored bytes; 0 at the end."""
        target = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(target):
            if not self._piece:
                if self._pieces is None:
                    break
                try:
                    self._piece = memoryview(next(self._pieces))
                except StopIteration:
                    self._pieces = None
                    break
            take = min(len(self._piece), len(target) - filled)
            target[filled : filled + take] = self._piece[:take]
            self._piece = self._piece[take:]
            filled += take
        return filled

    def close(self) -> None:
        """Stop encrypting and release the worker thread."""
        if self._pieces is not None:
            self._pieces.close()  # type: ignore[attr-defined]
            self._pieces = None
        super().close()


def _decrypt(
    src: Readable,
    sink: Callable[[bytes], object] | None,
    keys: KeyRing | BackupKey,
    name: str,
    context: bytes,
    *,
    hash_stored: bool = True,
) -> StreamInfo:
    # The calling thread only reads. Decryption runs on a worker, and the plaintext
    # digest, the stored digest and the sink each on their own: while chunk i is hashed
    # and written, chunk i+1 is decrypted and chunk i+2 read. Each stage keeps one piece
    # in flight, so the order holds and memory stays at a few chunks.
    with stream_worker(4) as pool:
        stored_digest = Digest(pool) if hash_stored else None
        plain_digest = Digest(pool)
        out = Background(sink, pool) if sink is not None else None
        stored_size = 0
        raw = read_exact(src, HEADER_SIZE)
        stored_size += len(raw)
        if stored_digest is not None:
            stored_digest.update(raw)
        header = parse_header(raw, name)
        key = pick_key(keys, header.key_id, name)
        chunks = Chunks(key, header.raw, header.salt, context)

        def open_chunk(piece: tuple[int, bytes, bool]) -> None:
            index, stored, final = piece
            try:
                plain = chunks.open(index, stored, final=final)
            except InvalidTag:
                raise CorruptBackup(
                    name,
                    "fails authentication: the chunk was altered, moved, duplicated or cut short",
                    index,
                ) from None
            plain_digest.update(plain)
            if out is not None:
                out.submit(plain)

        opener = Background(open_chunk, pool)
        full = header.chunk_size + TAG_SIZE
        index = 0
        while True:
            stored = read_exact(src, full)
            stored_size += len(stored)
            if stored_digest is not None:
                stored_digest.update(stored)
            if not stored:
                opener.drain()
                raise CorruptBackup(
                    name, "ends without its final chunk: the object is truncated", index
                )
            if len(stored) < TAG_SIZE:
                opener.drain()
                raise CorruptBackup(name, "ends inside a chunk: the object is truncated", index)
            final = len(stored) < full
            opener.submit((index, stored, final))
            if final:
                break
            index += 1
        opener.drain()
        if src.read(1):
            raise CorruptBackup(name, "has data after its final chunk", index)
        if out is not None:
            out.drain()
        return StreamInfo(
            plain_bytes=plain_digest.size,
            stored_bytes=stored_size,
            plain_sha256=plain_digest.hexdigest(),
            stored_sha256=stored_digest.hexdigest() if stored_digest is not None else None,
            key_id=header.key_id,
            chunk_size=header.chunk_size,
        )


def decrypt_stream(
    src: Readable,
    dst: Writable,
    keys: KeyRing | BackupKey,
    *,
    object_name: str | None = None,
    context: bytes = b"",
) -> StreamInfo:
    """Decrypt a stream into ``dst``, authenticating every chunk before writing it.

    On an error ``dst`` may already hold a prefix of the plaintext (authenticated, never
    garbage). A restore must not leave that behind: use :func:`decrypt_to_path`, or
    :func:`verify_stream` first.

    :param src: the stored form.
    :param dst: receives the plaintext.
    :param keys: the key, or a key ring from which the key named in the header is taken.
    :param object_name: names the object in errors; ``src.name`` or ``<stream>`` if unset.
    :param context: the bytes the stream was bound to when encrypted.
    :returns: sizes and digests of both forms.
    :raises CorruptBackup: when anything in the stream is altered, missing or extra.
    :raises WrongKey: when ``keys`` is one key and not the one the stream needs.
    :raises UnknownKey: when the ring lacks the key the stream needs.

    .. versionadded:: 0.3
    """
    return _decrypt(src, dst.write, keys, stream_name(src, object_name), context)


def verify_stream(
    src: Readable,
    keys: KeyRing | BackupKey,
    *,
    object_name: str | None = None,
    context: bytes = b"",
) -> StreamInfo:
    """Check a whole stream (header, every chunk, the end) without writing the plaintext.

    :param src: the stored form.
    :param keys: the key, or a key ring.
    :param object_name: names the object in errors.
    :param context: the bytes the stream was bound to when encrypted.
    :returns: sizes and digests of both forms.
    :raises CorruptBackup: when anything in the stream is altered, missing or extra.
    :raises WrongKey: when ``keys`` is one key and not the one the stream needs.
    :raises UnknownKey: when the ring lacks the key the stream needs.

    .. versionadded:: 0.3
    """
    return _decrypt(src, None, keys, stream_name(src, object_name), context)


def _check_expected(info: StreamInfo, expect: BackupFile, name: str) -> None:
    for what, got, wanted in (
        ("stored size", info.stored_bytes, expect.stored_size),
        ("stored sha256", info.stored_sha256, expect.stored_sha256),
        ("size", info.plain_bytes, expect.size),
        ("sha256", info.plain_sha256, expect.sha256),
    ):
        if got is not None and got != wanted:
            raise CorruptBackup(
                name, f"does not match its manifest: {what} is {got}, the manifest says {wanted}"
            )


def decrypt_to_path(
    src: Readable,
    path: Path,
    keys: KeyRing | BackupKey,
    *,
    object_name: str | None = None,
    context: bytes = b"",
    expect: BackupFile | None = None,
    fsync: bool = True,
) -> StreamInfo:
    """Decrypt a stream to ``path``, which is replaced only once everything verified.

    The plaintext goes to a temporary file (mode 0600) next to ``path``; it is renamed
    over ``path`` only after the whole stream authenticated and, with ``expect``, its
    sizes and digests matched the manifest. On any failure the temporary file is removed
    and ``path`` is left as it was.

    With ``expect``, the stored form's digest is not computed (``stored_sha256`` is
    ``None``): every chunk is authenticated under a key only the writer had, bound to
    its index, the end of the stream and ``context``, so the stored bytes cannot differ
    unnoticed; the stored size and the plaintext's size and digest are still compared
    with the (authenticated) manifest. :func:`verify_stream` computes both digests.

    :param src: the stored form.
    :param path: the file to create or replace.
    :param keys: the key, or a key ring.
    :param object_name: names the object in errors.
    :param context: the bytes the stream was bound to when encrypted.
    :param expect: the manifest's record of the file, to compare sizes and digests with.
    :param fsync: flush the file to disk before the rename, so a crash leaves old or new.
    :returns: sizes and digests of both forms.
    :raises CorruptBackup: when the stream or its manifest record does not check out.
    :raises WrongKey: when ``keys`` is one key and not the one the stream needs.
    :raises UnknownKey: when the ring lacks the key the stream needs.

    .. versionadded:: 0.3
    """
    name = stream_name(src, object_name)
    with replacing(path, fsync=fsync) as out:
        info = _decrypt(src, out.write, keys, name, context, hash_stored=expect is None)
        if expect is not None:
            _check_expected(info, expect, name)
    return info
