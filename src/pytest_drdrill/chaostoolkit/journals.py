"""Chaos Toolkit journals in the run's report bundle: ``journals/<drill>.json``.

.. versionadded:: 0.4
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

#: The bundle's subdirectory for journals.
DIRECTORY = "journals"


def write_journals(directory: Path, journals: Mapping[str, Mapping[str, Any]]) -> list[Path]:
    """Write each journal as ``directory/journals/<name>.json``, as ``chaos run`` would.

    :param directory: the run's report directory.
    :param journals: drill name (a safe file name) -> its journal.
    :returns: the files written.
    """
    from chaostoolkit import encoder

    target = directory / DIRECTORY
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, journal in journals.items():
        path = target / f"{name}.json"
        partial = path.with_suffix(".json.partial")
        # The encoder `chaos run` writes journals with: dates and UUIDs as strings.
        partial.write_text(json.dumps(journal, indent=2, ensure_ascii=False, default=encoder))
        os.replace(partial, path)
        written.append(path)
    return written
