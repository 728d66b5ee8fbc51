"""One input and one interface for every report writer.

Each report format is one module holding one :class:`ReportWriter`; every writer reads
the same :class:`RunResults`, so a new format needs no change to the reporter: its writer
is listed in :func:`pytest_drdrill.reporting.writers.default_writers` or, for an
extension such as the Chaos Toolkit journals, registered with
:meth:`~pytest_drdrill.reporting.collector.DrillReporter.add_writer`.

.. versionadded:: 0.5
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any, Protocol

from pytest_drdrill.reporting.history import entry_from_document, load_history
from pytest_drdrill.reporting.trend import trend as trend_of

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from pytest_drdrill.reporting.history import History
    from pytest_drdrill.results import DrillResult, RunInfo
    from pytest_drdrill.targets import Targets


@dataclasses.dataclass(frozen=True)
class RunResults:
    """Everything a report writer may read about one run.

    The history is read only when a writer asks for it, and then once: a damaged
    history file must not cost the reports written before the first writer that needs it.

    :param directory: the run's report directory, ``<report_dir>/<run id>``.
    :param run: facts about the run.
    :param drills: every drill's result, in the order they ran.
    :param document: the run's ``drill.json`` document, built from ``run`` and ``drills``.
    :param history_file: the run history shared by every run in the report directory.
    :param targets: the targets the run was judged against, when a targets file was read.
    :param monitor: the reference monitor's settings (``interval`` and ``timeout`` in
        seconds, ``threshold`` in checks), for the MTD justification.
    """

    directory: Path
    run: RunInfo
    drills: Sequence[DrillResult]
    document: Mapping[str, Any]
    history_file: Path
    targets: Targets | None = None
    monitor: Mapping[str, float] = dataclasses.field(default_factory=dict)

    @functools.cached_property
    def earlier(self) -> History:
        """The runs before this one, as read from :attr:`history_file`."""
        return load_history(self.history_file)

    @functools.cached_property
    def entries(self) -> list[dict[str, Any]]:
        """The history entries of the earlier runs followed by this run's own."""
        return [*self.earlier.entries, entry_from_document(self.document)]

    @functools.cached_property
    def trend(self) -> dict[str, Any]:
        """RTO trends and regressions over :attr:`entries`."""
        return trend_of(self.entries)


class ReportWriter(Protocol):
    """Writes one report format from a run's results.

    .. versionadded:: 0.5
    """

    #: Writers run in ascending rank, the most important files first, so that a later
    #: writer failing (the HTML renderer, say) never costs the measurements.
    rank: int

    # A writer that delivers somewhere else as well (the Prometheus writer's Pushgateway)
    # may also have a ``problems`` list of what it could not deliver; the reporter shows
    # them as warnings at the end of the run instead of failing the other writers.

    def write(self, results: RunResults) -> list[tuple[str, Path]]:
        """Write this format's files for ``results``.

        :returns: ``(kind, path)`` for each file written, the kind as the terminal
            summary names it ("generated drdrill <kind>: <path>"); empty when the format
            has nothing to say about this run.
        """
        ...
