"""The unencrypted baselines the backup benchmarks measure encryption against.

They run the same pipelines as ``pytest_drdrill.backup.stream`` without the cipher, so a
benchmark's encrypted/unencrypted ratio is the cost of encryption alone. The plugin never
copies a backup unencrypted, so they live here, beside the benchmarks, not in the package.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from pytest_drdrill.backup.errors import CorruptBackup
from pytest_drdrill.backup.streamformat import DEFAULT_CHUNK_SIZE, StreamInfo, check_chunk_size
from pytest_drdrill.backup.streamio import (
    Background,
    Digest,
    read_exact,
    replacing,
    stream_name,
    stream_worker,
)

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_drdrill.backup.streamio import Readable, Writable


def copy_to_path(
    src: Readable,
    path: Path,
    *,
    expect_size: int,
    expect_sha256: str,
    object_name: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    fsync: bool = True,
) -> StreamInfo:
    """Restore an unencrypted object the way ``decrypt_to_path`` restores an encrypted one.

    The same pipeline without the cipher: read in chunks, hash and write on worker
    threads, compare size and SHA-256 with what the backup recorded, flush, rename. It
    is the baseline the restore benchmark compares encryption against.

    :param src: the object's bytes.
    :param path: the file to create or replace.
    :param expect_size: the size the backup recorded.
    :param expect_sha256: the digest the backup recorded.
    :param object_name: names the object in errors.
    :param chunk_size: bytes per read.
    :param fsync: flush the file to disk before the rename.
    :returns: the size and digest, equal for the plain and stored form.
    :raises CorruptBackup: when the size or digest differ (``path`` is left as it was).
    """
    check_chunk_size(chunk_size)
    name = stream_name(src, object_name)
    with stream_worker(2) as pool, replacing(path, fsync=fsync) as out:
        digest = Digest(pool)
        sink = Background(out.write, pool)
        while data := read_exact(src, chunk_size):
            digest.update(data)
            sink.submit(data)
        sink.drain()
        info = StreamInfo(digest.size, digest.size, digest.hexdigest(), digest.hexdigest())
        for what, got, wanted in (
            ("size", info.plain_bytes, expect_size),
            ("sha256", info.plain_sha256, expect_sha256),
        ):
            if got != wanted:
                raise CorruptBackup(name, f"has {what} {got}; the backup recorded {wanted}")
    return info


def copy_stream(
    src: Readable, dst: Writable, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> StreamInfo:
    """Copy ``src`` to ``dst`` unencrypted, with its SHA-256: the benchmark's baseline.

    :param src: read to its end.
    :param dst: receives the same bytes.
    :param chunk_size: bytes per read.
    :returns: the size and digest, equal for the plain and stored form.
    """
    check_chunk_size(chunk_size)
    digest = hashlib.sha256()
    size = 0
    while data := src.read(chunk_size):
        digest.update(data)
        dst.write(data)
        size += len(data)
    hexdigest = digest.hexdigest()
    return StreamInfo(
        plain_bytes=size, stored_bytes=size, plain_sha256=hexdigest, stored_sha256=hexdigest
    )
