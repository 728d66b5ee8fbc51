"""What one check of the doctor found, and the small tools every check shares.

.. versionadded:: 0.6
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path

#: Seconds a ``--version`` call may take; a hung binary is reported, not waited for.
VERSION_TIMEOUT = 10.0

# The repository's scripts exist only in a clone; an installed package gets the commands
# they run instead.
_CLONE = Path(__file__).resolve().parents[3]


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the doctor checks against: the same settings a drill run would use.

    :param pg_bin: ``--drill-pg-bin``: PostgreSQL's binaries, else found as drills find them.
    :param redis_bin: ``--drill-redis-bin``: the directory with ``redis-server``.
    :param run_as: ``--drill-run-as``: the account servers run as when run as root.
    :param docker_images: ``--drill-docker-images``: ``service=image`` overrides.
    """

    pg_bin: str | None = None
    redis_bin: str | None = None
    run_as: str | None = None
    docker_images: str | None = None


@dataclasses.dataclass(frozen=True)
class Finding:
    """One thing the doctor looked for.

    :param name: what it is, e.g. ``PostgreSQL``.
    :param ok: whether it is there and usable.
    :param detail: what was found (version, path) or what is wrong.
    :param fix: the command that fixes it; empty when nothing needs fixing.
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""


def script(name: str, elsewhere: str, *, alternative: bool = True) -> str:
    """``scripts/<name>`` in a clone of pytest-drdrill, else the commands it would run.

    :param name: the script, e.g. ``bootstrap``.
    :param elsewhere: the command for an installed package, e.g. ``apt-get install -y X``.
    :param alternative: in a clone, name ``elsewhere`` too, as the narrower fix.
    """
    path = _CLONE / "scripts" / name
    if not path.is_file():
        return elsewhere
    try:
        shown = path.relative_to(Path.cwd())
    except ValueError:
        shown = path
    return f"{shown} (or: {elsewhere})" if alternative else str(shown)


def find(program: str, *, also_in: str | None = None) -> str | None:
    """``program`` on PATH (or in ``also_in``), as the servers' own finders look for it."""
    return shutil.which(program) or (also_in and shutil.which(program, path=also_in)) or None


def version(argv: list[str], pattern: str = r"\d+(?:\.\d+)+") -> str | None:
    """The first version number a program prints for ``argv``, or ``None``.

    :param argv: e.g. ``["/usr/bin/etcd", "--version"]``.
    :param pattern: the regular expression of the version in its output.
    """
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT,
            check=False,
            # Chromium's wrapper script probes the environment; keep it from a display.
            env={**os.environ, "DISPLAY": ""},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(pattern, done.stdout + "\n" + done.stderr)
    return match.group(1) if match and match.groups() else (match.group(0) if match else None)


def program(
    name: str, executable: str, fix: str, *, args: tuple[str, ...] = ("--version",)
) -> Finding:
    """A finding for a program found on PATH (or not), with its version.

    :param name: what to call it in the report.
    :param executable: the executable's name, e.g. ``patroni``.
    :param fix: the command that installs it.
    :param args: the arguments that make it print its version.
    """
    path = find(executable, also_in="/usr/sbin")
    if path is None:
        return Finding(name, ok=False, detail=f"{executable} not found on PATH", fix=fix)
    found = version([path, *args])
    return Finding(name, ok=True, detail=f"{found or 'version unknown'}: {path}")
