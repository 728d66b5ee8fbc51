"""The run's line in the run history, ``reports/history.jsonl``.

.. versionadded:: 0.5
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill.reporting.history import append_run

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_drdrill.reporting.writer import RunResults


class HistoryWriter:
    """Appends the run to the history, after every report that reads the earlier runs.

    .. versionadded:: 0.5
    """

    rank = 70

    def write(self, results: RunResults) -> list[tuple[str, Path]]:
        """Append ``results.document``'s line to ``results.history_file``."""
        # Read the earlier runs before this one joins them; a writer registered later
        # may still ask for them.
        results.earlier  # noqa: B018
        append_run(results.history_file, results.document)
        return [("history", results.history_file)]
