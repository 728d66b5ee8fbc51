"""Metadata that makes a drill's evidence checkable later.

A configuration hash says whether two runs were made under the same targets and
options, ``SHA256SUMS`` lets anyone confirm with ``sha256sum -c`` that the report files
are the ones the run wrote, and the package versions say what software took part.

.. versionadded:: 0.3
"""

from __future__ import annotations

import enum
import hashlib
import importlib.metadata
import json
import pathlib
from typing import TYPE_CHECKING

from pytest_drdrill.reporting.files import write_atomic

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path

    from pytest_drdrill.reporting.writer import RunResults

#: File name of the checksum list written by :func:`write_checksums`.
CHECKSUMS_FILENAME = "SHA256SUMS"

#: File name of the notifications the run sent, in the run's report directory.
NOTIFICATIONS_FILENAME = "notifications.jsonl"


def config_hash(files: Sequence[Path], options: Mapping[str, object]) -> str:
    """Return a SHA-256 over configuration files and options.

    Each file contributes its name (not its directory, so a checkout elsewhere hashes the
    same) and its contents; the files' order does not matter. The options contribute
    their JSON with sorted keys. The same inputs give the same hash on every run, and
    changing any byte, name, option or value changes it.

    .. versionadded:: 0.3

    :param files: configuration files, e.g. the targets file (``--drill-targets``).
    :param options: option names to values: JSON types, paths, enums, sets.
    :returns: the hexadecimal digest.
    :raises OSError: when a file cannot be read.
    :raises TypeError: when an option's value has no canonical JSON form.
    """
    parts = []
    for path in files:
        try:
            content = path.read_bytes()
        except OSError as exc:
            exc.add_note(
                f"config_hash: {path} is listed as a configuration file but cannot be read; "
                "pass only files that exist (check --drill-targets / drill_targets)"
            )
            raise
        parts.append((path.name, hashlib.sha256(content).hexdigest()))
    digest = hashlib.sha256()
    # Names and contents go in as one JSON document so that no choice of names or bytes
    # can make two different inputs serialise alike.
    document = {"files": sorted(parts), "options": options}
    canonical = json.dumps(
        document,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_canonical,
    )
    digest.update(canonical.encode("utf-8"))
    return digest.hexdigest()


def _canonical(value: object) -> object:
    if isinstance(value, pathlib.PurePath):
        return value.as_posix()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=lambda item: json.dumps(item, sort_keys=True, default=str))
    raise TypeError(
        f"config_hash: option value {value!r} of type {type(value).__name__} has no "
        "canonical JSON form; pass it as a string, number, bool, list or dict"
    )


def write_checksums(directory: Path, names: Sequence[str]) -> Path:
    """Write ``directory/SHA256SUMS`` for the named files, in ``sha256sum`` format.

    Each line is ``<hex digest>  <name>``, so ``sha256sum -c SHA256SUMS`` run in
    ``directory`` checks every file. The list is replaced atomically.

    .. versionadded:: 0.3

    :param directory: the run's report directory.
    :param names: files relative to ``directory``, e.g. ``["drill.json"]``.
    :returns: the path of ``SHA256SUMS``.
    :raises ValueError: when a name is absolute, leaves the directory, or holds a
        newline or backslash (which ``sha256sum`` would need escaped).
    :raises OSError: when a named file cannot be read.
    """
    lines = []
    for name in names:
        _check_name(name)
        with (directory / name).open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        lines.append(f"{digest}  {name}\n")
    path = directory / CHECKSUMS_FILENAME
    write_atomic(path, "".join(lines).encode("utf-8"))
    return path


def _check_name(name: str) -> None:
    relative = pathlib.PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ValueError(
            f"write_checksums: {name!r} must name a file inside the report directory, "
            "relative to it (e.g. 'drill.json')"
        )
    if any(char in name for char in "\n\\"):
        raise ValueError(
            f"write_checksums: {name!r} contains a newline or backslash, which the "
            "SHA256SUMS format cannot hold unescaped; rename the file"
        )


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Return the installed version of each distribution.

    .. versionadded:: 0.3

    :param names: distribution names as on PyPI, e.g. ``["pytest", "psycopg"]``.
    :returns: name to version, or to ``"not installed"`` when it is missing.
    """
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


class NotificationsWriter:
    """Lists ``notifications.jsonl`` in the bundle when the run sent notifications.

    The notifier writes the file itself, as each notification goes out, so a run that
    is killed still leaves the record of what was sent; this writer only names it.

    .. versionadded:: 0.5
    """

    rank = 60

    def write(self, results: RunResults) -> list[tuple[str, Path]]:
        """Name ``notifications.jsonl`` when it exists."""
        notices = results.directory / NOTIFICATIONS_FILENAME
        return [("notifications", notices)] if notices.is_file() else []
