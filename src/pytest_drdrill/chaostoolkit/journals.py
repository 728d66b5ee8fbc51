"""Chaos Toolkit journals in the run's report bundle: ``journals/<drill>.json``.

The reporter knows nothing of Chaos Toolkit: the first experiment drill that keeps a
journal registers a :class:`JournalWriter` with it, and the reporter runs that writer
with its own.

.. versionadded:: 0.4
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from pytest_drdrill.reporting.collector import DrillReporter
    from pytest_drdrill.reporting.writer import RunResults

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


class JournalWriter:
    """Writes the journals of the run's experiment drills, right after the drill JUnit file.

    .. versionadded:: 0.5
    """

    rank = 30

    def __init__(self) -> None:
        #: Chaos Toolkit journals of experiment drills, by drill name.
        self.journals: dict[str, dict[str, Any]] = {}

    def write(self, results: RunResults) -> list[tuple[str, Path]]:
        """Write every journal kept; nothing when the run had no experiment drill."""
        if not self.journals:
            return []
        written = write_journals(results.directory, self.journals)
        return [("Chaos Toolkit journal", path) for path in written]


def keep(reporter: DrillReporter, name: str, journal: dict[str, Any]) -> None:
    """Keep an experiment drill's journal for ``journals/<name>.json`` in the run's bundle.

    :param reporter: the run's reporter; the journal writer is registered with it once.
    :param name: the drill's name, already a safe file name.
    :param journal: the journal ``chaos run`` would write.
    """
    writer = next((w for w in reporter.writers if isinstance(w, JournalWriter)), None)
    if writer is None:
        writer = JournalWriter()
        reporter.add_writer(writer)
    writer.journals[name] = journal
