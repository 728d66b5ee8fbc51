"""Cross-region replication of one bucket, done by the project because moto does none.

A :class:`Replicator` polls the source bucket with ListObjectVersions and copies every
version it has not copied yet to the destination bucket of the same name, in the order
the versions were created: body, content type and headers, user metadata, and delete
markers (as a plain delete on the versioned destination). Server-side copy between two
stores fails (each moto server only knows its own buckets), so a copy is a GET by
version id from the source and a PUT to the destination. The destination version
carries the source's version id in its user metadata (:data:`SOURCE_VERSION_META`), so
versions can be matched across regions; delete markers carry no metadata and are matched
by position.

The source is read through ``source_url``, which in a topology is a fault-proxy link: a
cut link makes replication lag, as a broken inter-region network would.

**Lag.** Every version gets a record with the :func:`pytest_drdrill.timing.monotonic`
stamp of the listing that first showed it, and the stamp of its copy.
:meth:`Replicator.lag_seconds` is ``now`` minus the first-seen stamp of the oldest
version seen but not yet copied, or 0 when nothing is pending. While the source cannot
be listed, writes may be waiting there unseen, so the lag is at least ``now`` minus the
last successful listing. The source's ``LastModified`` is not used: it is another
host's wall clock, with one-second resolution, while every duration in pytest-drdrill is
read from this process's monotonic clock. The cost is that the lag reads low by at most
one polling period (``interval`` plus one listing): a version is counted from the
listing that first showed it, not from when it was written.

**Order.** Across listings, versions are copied in the order they were discovered,
which is the order they were created. Versions first seen in the same listing are
ordered by ``LastModified`` (ties between keys go by key name); within one key, the
listing's own newest-first order of versions and of delete markers is kept, and the
entry marked latest goes last. What the listing cannot say (it gives ``LastModified``
to the second, and moto lists all versions of a page before all its delete markers) is
how puts and deletes of one key made within the same second and first seen in the same
listing interleave; at the default 50 ms polling this takes more than one put and one
delete of one key within one period. Only the order within a key shows on the
destination; across keys it matters only for what a cut-off copy leaves behind.

The source bucket must be versioned: an unversioned bucket overwrites its only
("null") version, which a poller cannot tell from no change.

A copy that timed out may still be applied by the destination later (a frozen store
serves the request it had received once it resumes). Before such a version is sent
again, the destination's latest version of the key is checked for its source version id.
A duplicate version remains possible only when the destination applies the first copy
after that check; it carries the same :data:`SOURCE_VERSION_META`.
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import logging
import threading
from typing import TYPE_CHECKING, Any, NamedTuple

import botocore.exceptions

from pytest_drdrill import timing
from pytest_drdrill.clients.s3 import describe_error, s3_client

if TYPE_CHECKING:
    import datetime
    from collections.abc import Callable, Iterator, Mapping

logger = logging.getLogger(__name__)

#: User-metadata key holding, on a destination version, the source version id it copies.
SOURCE_VERSION_META = "drdrill-source-version"

#: Headers of a version that a copy carries over, besides the body and user metadata.
_COPIED_HEADERS = (
    "ContentType",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
)

_FAILURES = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


@dataclasses.dataclass(frozen=True)
class VersionRecord:
    """One source version as the replicator saw it.

    :param key: the object key.
    :param source_version: its version id on the source.
    :param delete_marker: whether it is a delete marker.
    :param first_seen: monotonic stamp of the listing that first showed it.
    :param copied_at: monotonic stamp of its copy, or ``None`` while pending.
    :param dropped: it vanished from the source before it could be copied.

    .. versionadded:: 0.2
    """

    key: str
    source_version: str
    delete_marker: bool
    first_seen: float
    copied_at: float | None = None
    dropped: bool = False

    @property
    def lag(self) -> float | None:
        """Seconds from first seen to copied, once copied."""
        return None if self.copied_at is None else self.copied_at - self.first_seen


class _Listed(NamedTuple):
    key: str
    version_id: str
    delete_marker: bool
    last_modified: datetime.datetime
    is_latest: bool


class _Unsure(Exception):  # noqa: N818 - a control-flow signal
    """A write to the destination was sent and not acknowledged."""


class Replicator:
    """Copies new versions of ``bucket`` from one store to another, in a background thread.

    :param source_url: endpoint the source bucket is read through (typically a link).
    :param dest_url: endpoint of the destination store.
    :param bucket: bucket name, the same in both regions; both must be versioned.
    :param interval: pause between two polling cycles, seconds.
    :param timeout: connect and read timeout of every S3 call, seconds.
    :param max_samples: lag samples kept (one per cycle); older ones are dropped.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        source_url: str,
        dest_url: str,
        bucket: str,
        *,
        interval: float = 0.05,
        timeout: float = 2.0,
        max_samples: int = 12_000,
    ) -> None:
        self.source_url = source_url
        self.dest_url = dest_url
        self.bucket = bucket
        self.interval = interval
        self.timeout = timeout
        self._source = s3_client(source_url, timeout=timeout)
        self._dest = s3_client(dest_url, timeout=timeout)
        self._lock = threading.Lock()
        self._cycle = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._records: dict[tuple[str, str], VersionRecord] = {}
        self._queue: collections.deque[tuple[str, str]] = collections.deque()
        self._unsure: set[tuple[str, str]] = set()
        self._listed_ok = False
        self._last_listing = timing.monotonic()
        self._samples: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=max_samples
        )
        #: The last failure, for reports; empty when the last cycle went through.
        self.last_error = ""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.bucket} {self.source_url} -> {self.dest_url}>"

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> Replicator:
        """Start polling and copying in a background thread."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the replicator is already running")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"drdrill-replicator-{self.bucket}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread; returns within ``timeout + 1`` seconds even if a call hangs."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self.timeout + 1.0)
            if thread.is_alive():
                logger.warning("%r did not stop within %.1fs", self, self.timeout + 1.0)

    @property
    def is_running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync_once()
            except Exception:  # the thread must outlive any surprise; the lag shows it
                logger.exception("replication cycle of %r failed", self)
            self._stop.wait(self.interval)

    # --- one cycle --------------------------------------------------------------------------

    def sync_once(self) -> int:
        """List the source once and copy what is pending, in order; never raises for S3 errors.

        :returns: how many versions were copied in this cycle.
        """
        with self._cycle:
            copied = 0
            try:
                listed = self._list_source()
            except _FAILURES as exc:
                with self._lock:
                    self._listed_ok = False
                    self.last_error = f"listing source: {describe_error(exc, self.timeout)}"
            else:
                seen = timing.monotonic()
                with self._lock:
                    self._listed_ok = True
                    self._last_listing = seen
                    for entry in listed:
                        ident = (entry.key, entry.version_id)
                        if ident not in self._records:
                            self._records[ident] = VersionRecord(
                                entry.key, entry.version_id, entry.delete_marker, seen
                            )
                            self._queue.append(ident)
                copied = self._copy_pending()
            now = timing.monotonic()
            with self._lock:
                self._samples.append((now, self._lag_at(now)))
            return copied

    def _list_source(self) -> list[_Listed]:
        """Every version and delete marker of the bucket, oldest first (see the module doc)."""
        per_key: dict[str, tuple[list[_Listed], list[_Listed]]] = {}
        paginator = self._source.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket):
            for version in page.get("Versions", []):
                entry = _Listed(
                    version["Key"],
                    version["VersionId"],
                    False,
                    version["LastModified"],
                    version["IsLatest"],
                )
                per_key.setdefault(entry.key, ([], []))[0].append(entry)
            for marker in page.get("DeleteMarkers", []):
                entry = _Listed(
                    marker["Key"],
                    marker["VersionId"],
                    True,
                    marker["LastModified"],
                    marker["IsLatest"],
                )
                per_key.setdefault(entry.key, ([], []))[1].append(entry)
        # Each list is newest first; on a tie in LastModified, versions go before markers
        # (heapq.merge prefers its first input) except that the latest entry goes last.
        keyed: list[Iterator[_Listed]] = [
            heapq.merge(
                reversed(versions), reversed(markers), key=lambda e: (e.last_modified, e.is_latest)
            )
            for versions, markers in per_key.values()
        ]
        return list(heapq.merge(*keyed, key=lambda e: e.last_modified))

    def _copy_pending(self) -> int:
        copied = 0
        while not self._stop.is_set():
            with self._lock:
                if not self._queue:
                    self.last_error = ""
                    return copied
                ident = self._queue[0]
                record = self._records[ident]
            try:
                dropped = self._copy(record)
            except _Unsure as exc:
                with self._lock:
                    self._unsure.add(ident)
                    self.last_error = f"copying {record.key}: {exc}"
                return copied
            except _FAILURES as exc:
                with self._lock:
                    self.last_error = f"copying {record.key}: {describe_error(exc, self.timeout)}"
                return copied
            with self._lock:
                self._queue.popleft()
                self._unsure.discard(ident)
                self._records[ident] = dataclasses.replace(
                    record, copied_at=timing.monotonic(), dropped=dropped
                )
            copied += not dropped
        return copied

    def _copy(self, record: VersionRecord) -> bool:
        """Copy one version; return ``True`` when it no longer exists on the source."""
        if (record.key, record.source_version) in self._unsure and self._applied(record):
            return False
        if record.delete_marker:
            self._write(lambda: self._dest.delete_object(Bucket=self.bucket, Key=record.key))
            return False
        try:
            got = self._source.get_object(
                Bucket=self.bucket, Key=record.key, VersionId=record.source_version
            )
            body = got["Body"].read()
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchVersion", "NoSuchKey"):
                # Deleted permanently on the source before it was copied: nothing to copy.
                return True
            raise
        fields: Mapping[str, Any] = got
        extra = {name: fields[name] for name in _COPIED_HEADERS if fields.get(name)}
        metadata = {**got.get("Metadata", {}), SOURCE_VERSION_META: record.source_version}
        self._write(
            lambda: self._dest.put_object(
                Bucket=self.bucket, Key=record.key, Body=body, Metadata=metadata, **extra
            )
        )
        return False

    def _write(self, call: Callable[[], object]) -> None:
        """Run a write to the destination, telling an unacknowledged one from a refused one."""
        try:
            call()
        except (botocore.exceptions.ConnectionError, botocore.exceptions.ClientError):
            raise  # never reached the store, or refused by it: not applied
        except botocore.exceptions.BotoCoreError as exc:
            raise _Unsure(describe_error(exc, self.timeout)) from exc

    def _applied(self, record: VersionRecord) -> bool:
        """Whether an unacknowledged copy of ``record`` reached the destination after all."""
        try:
            head = self._dest.head_object(Bucket=self.bucket, Key=record.key)
        except botocore.exceptions.ClientError as exc:
            headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            return record.delete_marker and headers.get("x-amz-delete-marker") == "true"
        meta = head.get("Metadata", {})
        return not record.delete_marker and meta.get(SOURCE_VERSION_META) == record.source_version

    # --- what it measured -------------------------------------------------------------------

    def _lag_at(self, now: float) -> float:
        lag = 0.0
        if self._queue:
            lag = now - self._records[self._queue[0]].first_seen
        if not self._listed_ok:
            lag = max(lag, now - self._last_listing)
        return lag

    def lag_seconds(self) -> float:
        """Current replication lag in seconds, as defined in the module docstring."""
        with self._lock:
            return self._lag_at(timing.monotonic())

    def pending(self) -> int:
        """How many versions were seen on the source and are not copied yet."""
        with self._lock:
            return len(self._queue)

    @property
    def samples(self) -> list[tuple[float, float]]:
        """``(monotonic stamp, lag seconds)`` at the end of each cycle, oldest first."""
        with self._lock:
            return list(self._samples)

    def records(self) -> list[VersionRecord]:
        """Every version seen, in the order it was (or will be) copied."""
        with self._lock:
            return list(self._records.values())

    def replicated_keys(self) -> set[str]:
        """Keys of which at least one version has been copied to the destination."""
        with self._lock:
            return {
                r.key for r in self._records.values() if r.copied_at is not None and not r.dropped
            }

    def wait_caught_up(self, *, timeout: float) -> bool:
        """Wait until a listing made after this call has been fully copied.

        :param timeout: seconds to wait.
        :returns: whether it caught up in time.
        """
        asked = timing.monotonic()
        while timing.monotonic() - asked < timeout:
            with self._lock:
                if self._listed_ok and self._last_listing > asked and not self._queue:
                    return True
            timing.sleep(0.01)
        return False
