"""The MTD justification: US 7.4.2 answered point by point from one run's measurements.

US 7.4.2 asks for a justification of the infrastructure changes that keep downtime
under a Maximum Tolerable Downtime of 20 minutes: (1) the changes, (2) their technical,
operational and cost considerations, (3) evidence that they meet the MTD. Every figure
here comes from the run document (``drill.json``), the targets file and the run history;
the document is written as Markdown (for review in a merge request) and as a
self-contained HTML page.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from pytest_drdrill.reporting.files import write_atomic
from pytest_drdrill.reporting.mtd_sections import (
    JustificationBuilder,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from pytest_drdrill.reporting.writer import RunResults
    from pytest_drdrill.targets import Targets

MARKDOWN_FILENAME = "mtd-justification.md"
HTML_FILENAME = "mtd-justification.html"


def render_markdown(
    document: Mapping[str, Any],
    targets: Targets,
    *,
    history: Sequence[Mapping[str, Any]] = (),
    monitor: Mapping[str, Any] | None = None,
) -> str:
    """Write the MTD justification of one run as Markdown.

    .. versionadded:: 0.3

    :param document: the run document (``drill.json``).
    :param targets: the targets the run was judged against (MTD, tiers, cost table).
    :param history: earlier runs' history entries, oldest first.
    :param monitor: the orchestrator's settings: ``interval``, ``timeout``, ``threshold``.
    """
    return JustificationBuilder(document, targets, history, monitor or {}).build()


def met(document: Mapping[str, Any], targets: Targets) -> bool:
    """Whether the run shows the MTD met: every drill recovered within it and passed.

    .. versionadded:: 0.3
    """
    return JustificationBuilder(document, targets, (), {}).verdict()[0]


_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#111}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #bbb;padding:.3em .6em;
text-align:left;vertical-align:top}th{background:#eee}code{background:#f3f3f3;padding:0 .2em}
h1{border-bottom:2px solid #333}h2{margin-top:2em;border-bottom:1px solid #999}
"""


def render_html(markdown_text: str, *, title: str = "MTD justification (US 7.4.2)") -> str:
    """Turn the Markdown document into one self-contained HTML page.

    Raw HTML in the Markdown is not passed through: texts such as drill reasons carry
    server error messages, which must show as text.

    .. versionadded:: 0.3
    """
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    body = md.render(markdown_text)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>\n{body}</body></html>\n"
    )


def write_mtd(
    directory: Path,
    document: Mapping[str, Any],
    targets: Targets,
    *,
    history: Sequence[Mapping[str, Any]] = (),
    monitor: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``mtd-justification.md`` and ``mtd-justification.html`` atomically.

    .. versionadded:: 0.3

    :returns: the Markdown and HTML paths.
    """
    text = render_markdown(document, targets, history=history, monitor=monitor)
    md_path = directory / MARKDOWN_FILENAME
    html_path = directory / HTML_FILENAME
    write_atomic(md_path, text.encode("utf-8"))
    write_atomic(html_path, render_html(text).encode("utf-8"))
    return md_path, html_path


class MtdWriter:
    """Writes the MTD justification, when the run was judged against a targets file.

    .. versionadded:: 0.5
    """

    rank = 50

    def write(self, results: RunResults) -> list[tuple[str, Path]]:
        """Write ``mtd-justification.md`` and ``.html``; nothing without targets."""
        if results.targets is None:
            return []
        md_path, html_path = write_mtd(
            results.directory,
            results.document,
            results.targets,
            history=results.earlier.entries,
            monitor=results.monitor,
        )
        return [("MTD justification", md_path), ("MTD justification", html_path)]
