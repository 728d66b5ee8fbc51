"""Byte plumbing of the encrypted stream: sources, sinks, threads, safe replacement.

What streams are read from and written to, exact reads, worker-thread digests and
writes, and files that replace their target only on success.

It holds nothing of the format or the cipher, so :mod:`~pytest_drdrill.backup.streamformat`
and :mod:`~pytest_drdrill.backup.stream` (and the benchmarks' plain copies) share one
implementation of the parts that make streaming fast and memory flat.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from concurrent.futures import Future


class Readable(Protocol):
    """What a stream is read from: a binary file, a socket file, a boto3 body."""

    def read(self, size: int, /) -> bytes:
        """Return up to ``size`` bytes; ``b""`` at the end."""
        ...


class Writable(Protocol):
    """What a stream is written to."""

    def write(self, data: bytes, /) -> object:
        """Write all of ``data``."""
        ...


def read_exact(src: Readable, size: int) -> bytes:
    """Read ``size`` bytes, fewer only at the end: sockets and pipes return short reads."""
    data = src.read(size)
    if not data or len(data) == size:
        return data or b""
    parts = [data]
    got = len(data)
    while got < size:
        more = src.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class Background:
    """Calls ``fn(data)`` for each piece on a worker thread, one call in flight at most.

    One call in flight keeps the pieces in order and memory at a chunk; hashing and
    writing release the GIL, so they overlap with reading and decrypting the next chunk.
    An exception raised by ``fn`` surfaces at the next :meth:`submit` or at :meth:`drain`.
    """

    def __init__(self, fn: Callable[[Any], object], pool: ThreadPoolExecutor | None) -> None:
        self._fn = fn
        self._pool = pool
        self._pending: Future[object] | None = None

    def submit(self, data: Any) -> None:
        """Hand ``data`` to the worker, after the previous call finished."""
        if self._pool is None:
            self._fn(data)
            return
        self.drain()
        self._pending = self._pool.submit(self._fn, data)

    def drain(self) -> None:
        """Wait for the call in flight; its exception is raised here."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()


class Digest:
    """SHA-256 and a byte count, fed on a worker thread when a pool is given."""

    def __init__(self, pool: ThreadPoolExecutor | None = None) -> None:
        self._hash = hashlib.sha256()
        self._feed = Background(self._hash.update, pool)
        self.size = 0

    def update(self, data: bytes) -> None:
        """Count ``data`` and feed it to the hash."""
        self.size += len(data)
        self._feed.submit(data)

    def hexdigest(self) -> str:
        """The SHA-256 of everything fed, once the worker is done."""
        self._feed.drain()
        return self._hash.hexdigest()


@contextlib.contextmanager
def stream_worker(threads: int = 1) -> Iterator[ThreadPoolExecutor]:
    """A one-thread pool for a stream's side work, shut down with the block."""
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="drdrill-stream")
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def replacing(path: Path, *, fsync: bool) -> Iterator[io.FileIO]:
    """A temporary file beside ``path``, renamed over it only when the block succeeds."""
    path = Path(path)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with open(fd, "wb", buffering=0) as out:
            yield out
            if fsync:
                os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def stream_name(src: object, object_name: str | None) -> str:
    """How errors name a stream: ``object_name``, else the source's ``name``."""
    if object_name is not None:
        return object_name
    name = getattr(src, "name", None)
    return str(name) if isinstance(name, str | os.PathLike) else "<stream>"
