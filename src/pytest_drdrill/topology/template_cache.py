"""The PostgreSQL template cluster, kept between pytest sessions on one machine.

Every session of the local backend needs a stopped cluster holding the drill tables, which
its nodes copy (:func:`~pytest_drdrill.topology.postgres.make_template`). Building one
(``initdb``, a server start, the tables, a clean stop) costs about 0.8 s on two cores, and
the test suite starts over a hundred sessions. A built template is the same whenever its
inputs are, so the first session publishes it under a key of those inputs and later ones
copy from it.

The cache lies beside the sessions' data roots, in ``<tmpdir>/drdrill-template-cache``, one
directory per key. A template is published complete or not at all: it is copied to a hidden
name, marked, and renamed into place; a session that loses the race discards its copy.
Nodes only ever copy from it (``cp -a``), so sessions running in parallel share it safely.
Delete the directory to rebuild; set ``DRDRILL_TEMPLATE_CACHE=0`` to build per session.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_drdrill.ledger import LEDGER_DDL

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_drdrill.servers.processes import RunAs
    from pytest_drdrill.topology.postgres import PostgresInstall

logger = logging.getLogger(__name__)

CACHE_NAME = "drdrill-template-cache"
#: Raise when :func:`~pytest_drdrill.topology.postgres.make_template` changes what it builds.
LAYOUT = 3
#: ``DRDRILL_TEMPLATE_CACHE=0`` builds the template in every session, as before the cache.
SWITCH = "DRDRILL_TEMPLATE_CACHE"
_COMPLETE = "complete"


def cache_root() -> Path:
    """Where templates are kept: beside the sessions' data roots."""
    return Path(tempfile.gettempdir()) / CACHE_NAME


def cache_key(install: PostgresInstall, run_as: RunAs | None) -> str:
    """What the template depends on: the server build, the drill tables, who owns the files."""
    owner = (run_as.uid, run_as.gid) if run_as is not None else (os.geteuid(), os.getegid())
    parts = [str(LAYOUT), str(install.bindir.resolve()), install.version, LEDGER_DDL, str(owner)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def enabled() -> bool:
    """Whether sessions share templates (``DRDRILL_TEMPLATE_CACHE`` is not ``0``)."""
    return os.environ.get(SWITCH, "1").strip() not in ("0", "false", "no", "off")


def cached(key: str, root: Path | None = None) -> Path | None:
    """The complete template published under ``key``, or ``None``.

    Only a cache this user owns and nobody else may write to is used: the temporary
    directory is shared, and a template planted there would become every node's data.
    """
    root = root or cache_root()
    entry = root / key
    template = entry / "template"
    try:
        if not all(_ours(path) for path in (root, entry)):
            return None
    except OSError:
        return None
    if (entry / _COMPLETE).is_file() and (template / "PG_VERSION").is_file():
        return template
    return None


def _ours(path: Path) -> bool:
    status = path.lstat()
    return status.st_uid == os.geteuid() and not status.st_mode & 0o022 and path.is_dir()


def publish(template: Path, key: str, root: Path | None = None) -> Path | None:
    """Copy a freshly built ``template`` into the cache; the published path, or ``None``.

    Never raises for the cache's sake: a session whose copy fails keeps its own template.
    """
    root = root or cache_root()
    try:
        root.mkdir(mode=0o711, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        staging.chmod(0o711)
        # cp -a keeps ownership and modes, which the server checks (data dir must be 0700).
        subprocess.run(["cp", "-a", str(template), str(staging / "template")], check=True)
        (staging / _COMPLETE).write_text(key)
        try:
            staging.rename(root / key)
        except OSError:  # another session published first: its copy is as good
            shutil.rmtree(staging, ignore_errors=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        logger.warning("could not keep the PostgreSQL template in %s: %s", root, exc)
        return None
    return cached(key, root)


def template_for(
    install: PostgresInstall, run_as: RunAs | None, build: Callable[[], Path]
) -> tuple[Path, bool]:
    """The session's template: the cached one, else ``build()``'s (then published).

    :returns: the template's path and whether it came from the cache.
    """
    if not enabled():
        return build(), False
    key = cache_key(install, run_as)
    found = cached(key)
    if found is not None:
        return found, True
    built = build()
    return publish(built, key) or built, False
