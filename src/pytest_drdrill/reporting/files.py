"""Atomic file writes shared by every report writer.

A report is read by CI steps and colleagues while later runs write new ones; none of
them should ever see a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, whole.

    Shared by the report writers in this package.

    :param path: the file to write; its directory is created when missing.
    :param data: the complete new contents.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary file must sit in the target's directory: os.replace is atomic only
    # within one filesystem.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            # Without fsync a crash right after the rename can leave an empty file
            # under the final name on some filesystems (ext4 delayed allocation).
            os.fsync(tmp.fileno())
        # mkstemp creates the file 0600; reports are meant to be read by others (CI
        # artifact servers, colleagues), so give them ordinary file permissions.
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
