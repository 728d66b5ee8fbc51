"""The history of drill runs, ``reports/history.jsonl``: appending a run, reading them back.

Each run appends one compact JSON line (:func:`entry_from_document`) to a file that lives
next to the run directories. What those lines say (the RTO trend per scenario, the
regressions, the drill cadence) is computed in :mod:`pytest_drdrill.reporting.trend`.

.. versionadded:: 0.3
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import fcntl
import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

#: File name of the history, kept in the report directory next to the run directories.
HISTORY_FILENAME = "history.jsonl"

#: Version of one history line's layout; lines of a newer version are skipped as problems.
HISTORY_VERSION = 1


def entry_from_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """Reduce a ``drill.json`` document to its history line.

    The entry keeps what statistics across runs need: the run's id, start, git sha,
    cadence and backend, and per drill its name (pytest's node id, which carries a repeat
    suffix such as ``[crash-r2]`` untouched), scenario, cadence, target, tier, whether it
    is a negative control, verdict, RTO and lost writes.

    .. versionadded:: 0.3

    :param document: a ``drill.json`` document (see ``drill.schema.json``).
    :returns: a JSON-serialisable dict, one line of :data:`HISTORY_FILENAME`.
    :raises ValueError: when the document lacks ``run.id``, ``run.started_at`` or
        ``drills``, which every ``drill.json`` of schema version 1 has.
    """
    run = document.get("run")
    drills = document.get("drills")
    if not isinstance(run, dict) or not isinstance(drills, list):
        raise ValueError(
            "not a drill.json document: it needs a 'run' object and a 'drills' list; "
            "pass the parsed contents of reports/<run-id>/drill.json"
        )
    for key in ("id", "started_at"):
        if not isinstance(run.get(key), str):
            raise ValueError(
                f"drill.json: 'run.{key}' is missing or not a string; "
                "the document was not written by pytest-drdrill's drill.json writer"
            )
    return {
        "history_version": HISTORY_VERSION,
        "run_id": run["id"],
        "started_at": run["started_at"],
        "git_sha": run.get("git_sha"),
        "cadence": run.get("cadence"),
        "backend": run.get("backend"),
        "postgres_failover": run.get("postgres_failover"),
        "backup_tool": run.get("backup_tool"),
        "drills": [_drill_entry(drill) for drill in drills],
    }


def _drill_entry(drill: Mapping[str, Any]) -> dict[str, Any]:
    target = drill.get("target") or {}
    rpo = drill.get("rpo") or {}
    kind = target.get("kind")
    # A function target belongs to no tier unless the writer names one; a tier target's
    # name is the tier.
    tier = target.get("name") if kind == "tier" else target.get("tier")
    return {
        "name": drill.get("name"),
        "scenario": drill.get("scenario"),
        "cadence": drill.get("cadence"),
        "target_kind": kind,
        "target_name": target.get("name"),
        "tier": tier,
        "negative_control": bool(drill.get("negative_control", False)),
        "verdict": drill.get("verdict"),
        "rto_seconds": drill.get("rto_seconds"),
        "lost_writes": rpo.get("lost_writes"),
    }


def append_run(path: Path, document: Mapping[str, Any]) -> None:
    """Append one run's line to the history file, safely against crashes and other runs.

    The line is written with a single ``write`` on a descriptor opened with ``O_APPEND``
    under an exclusive ``fcntl`` lock, then flushed to disk, so earlier lines are never
    rewritten and two runs finishing together cannot interleave their lines.

    .. versionadded:: 0.3

    :param path: the history file, usually ``reports/history.jsonl``; it and its
        directory are created when missing.
    :param document: the run's ``drill.json`` document.
    :raises ValueError: when the document is not a ``drill.json`` document, or holds NaN
        or an infinite RTO, which JSON cannot represent.
    :raises OSError: when the file cannot be written in full (e.g. the disk is full).
    """
    line = json.dumps(entry_from_document(document), separators=(",", ":"), allow_nan=False)
    data = line.encode("utf-8") + b"\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        # A run killed mid-write leaves a last line without its newline; gluing this
        # line onto it would make the new line unreadable too.
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        written = os.write(fd, data)
        if written != len(data):
            # Short writes on a regular file mean a full disk; what was written is a
            # truncated line, which load_history skips and reports.
            raise OSError(
                f"{path}: wrote {written} of {len(data)} bytes of the history line "
                "(disk full?); free space and run the drills again"
            )
        os.fsync(fd)
    finally:
        # Closing the descriptor releases the lock.
        os.close(fd)
    if created:
        _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # A new file's directory entry is durable only once the directory itself is synced.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclasses.dataclass(frozen=True)
class History:
    """The readable lines of a history file, and what was wrong with the others.

    Iterating over a history yields its entries in file order.

    .. versionadded:: 0.3

    :param entries: the entries (as written by :func:`append_run`), in file order.
    :param problems: one message per skipped line, as ``"<file>:<line>: <what>"``.
    """

    entries: tuple[dict[str, Any], ...] = ()
    problems: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def load_history(path: Path) -> History:
    """Read a history file, skipping (and reporting) lines that cannot be used.

    A run killed while appending can leave a truncated last line, and a hand edit can
    break any line; neither stops the others from being read.

    .. versionadded:: 0.3

    :param path: the history file; a missing file is an empty history.
    :returns: the entries and the problems found.
    :raises OSError: when the file exists but cannot be read.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return History()
    entries: list[dict[str, Any]] = []
    problems: list[str] = []
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        unterminated = number == len(lines)
        try:
            entry = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            what = (
                "truncated line (the run was probably killed while writing it)"
                if unterminated
                else f"not valid JSON ({exc})"
            )
            problems.append(f"{path}:{number}: {what}; the line was skipped, delete it to fix")
            continue
        error = _entry_error(entry)
        if error is not None:
            problems.append(f"{path}:{number}: {error}; the line was skipped, delete it to fix")
            continue
        entries.append(entry)
    return History(entries=tuple(entries), problems=tuple(problems))


def _entry_error(entry: object) -> str | None:
    """Return why ``entry`` is not a usable history entry, or None when it is."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    version = entry.get("history_version")
    if version != HISTORY_VERSION:
        return (
            f"history_version {version!r} is not {HISTORY_VERSION} (written by another "
            "pytest-drdrill version?)"
        )
    for key in ("run_id", "started_at"):
        if not isinstance(entry.get(key), str):
            return f"key {key!r} is missing or not a string"
    if epoch_of(entry["started_at"]) is None:
        return f"started_at {entry['started_at']!r} is not an ISO 8601 time with a zone"
    drills = entry.get("drills")
    if not isinstance(drills, list) or not all(isinstance(d, dict) for d in drills):
        return "key 'drills' is missing or not a list of objects"
    return None


def epoch_of(iso: str) -> float | None:
    """Epoch seconds of an entry's ``started_at``, or ``None`` when it is not a time."""
    try:
        stamp = _dt.datetime.fromisoformat(iso)
    except ValueError:
        return None
    # A naive time cannot be placed on the timeline; drill.json always writes UTC.
    return None if stamp.tzinfo is None else stamp.timestamp()
