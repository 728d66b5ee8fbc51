"""PostgreSQL WAL positions and segment names, to find the WAL a recovery needs.

A WAL file is named ``TTTTTTTTXXXXXXXXYYYYYYYY``: timeline, then the segment number
split in two (the high part counts 4 GiB blocks of LSN space). With the default 16 MiB
segments there are 256 segments per block.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pytest_drdrill.backup.errors import MissingWalSegment
from pytest_drdrill.clients.postgres import parse_lsn

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pytest_drdrill.backup.manifest import BackupFile, Manifest

DEFAULT_SEGMENT_SIZE = 16 << 20
_SEGMENT = re.compile(r"[0-9A-F]{24}")


def segment_name(timeline: int, lsn: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str:
    """Return the name of the WAL file that holds position ``lsn``.

    :param timeline: the timeline id.
    :param lsn: a position from :func:`parse_lsn`.
    :param segment_size: ``wal_segment_size`` of the cluster.

    .. versionadded:: 0.3
    """
    per_block = 0x1_0000_0000 // segment_size
    number = lsn // segment_size
    return f"{timeline:08X}{number // per_block:08X}{number % per_block:08X}"


def segments_between(
    start: str, end: str, *, timeline: int = 1, segment_size: int = DEFAULT_SEGMENT_SIZE
) -> list[str]:
    """Return the names of every WAL file from the one holding ``start`` to ``end``'s.

    :param start: first LSN needed.
    :param end: last LSN needed.
    :param timeline: the timeline id.
    :param segment_size: ``wal_segment_size`` of the cluster.

    .. versionadded:: 0.3
    """
    first, last = parse_lsn(start) // segment_size, parse_lsn(end) // segment_size
    return [
        segment_name(timeline, number * segment_size, segment_size)
        for number in range(first, last + 1)
    ]


def find_wal(
    manifests: Iterable[Manifest],
    start: str,
    end: str,
    *,
    where: str,
    timeline: int = 1,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> list[tuple[Manifest, BackupFile]]:
    """Return, in order, the backup file holding each WAL segment from ``start`` to ``end``.

    Files of ``postgres-wal`` backups count when their last path part is a segment name.

    :param manifests: the backups to search (other kinds are skipped).
    :param start: first LSN the recovery needs (a base backup's ``wal_start``).
    :param end: the recovery target LSN.
    :param where: names the catalog in errors.
    :param timeline: the timeline id.
    :param segment_size: ``wal_segment_size`` of the cluster.
    :raises MissingWalSegment: naming the first segment that no backup holds.

    .. versionadded:: 0.3
    """
    found: dict[str, tuple[Manifest, BackupFile]] = {}
    for manifest in manifests:
        if manifest.kind != "postgres-wal":
            continue
        for record in manifest.files:
            base = record.name.rsplit("/", 1)[-1]
            if _SEGMENT.fullmatch(base):
                found.setdefault(base, (manifest, record))
    chain = []
    for segment in segments_between(start, end, timeline=timeline, segment_size=segment_size):
        if segment not in found:
            raise MissingWalSegment(segment, f"{start}..{end} on timeline {timeline}", where)
        chain.append(found[segment])
    return chain
