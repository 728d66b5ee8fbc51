"""MkDocs hook: the options page's table, generated from the plugin's own option list.

Written from ``pytest_drdrill.options.OPTIONS`` at build time, so the docs cannot drift from
what ``pytest --help`` says.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- drdrill:options -->"


def options_table() -> str:
    """The Markdown table of every ``--drill-*`` option: flag, ini key and its help."""
    from pytest_drdrill.options import OPTIONS

    rows = ["| flag | ini key | meaning |", "|---|---|---|"]
    for option in OPTIONS:
        meaning = " ".join(option.help.split()).replace("|", "\\|")
        rows.append(f"| `{option.flag}` | `{option.name}` | {meaning} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Put the table where the options page asks for it."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, options_table())
