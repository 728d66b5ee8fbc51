"""The documentation: the site builds with ``mkdocs build --strict``, the README stays short.

Strict mode turns every broken link, missing page and docstring the API reference cannot
read into an error, so a renamed module or page fails here rather than on the site.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
    reason="pip install -e '.[docs]' (scripts/bootstrap installs it)",
)
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    options = (site / "options" / "index.html").read_text()
    from pytest_drdrill.options import OPTIONS

    missing = [o.flag for o in OPTIONS if o.flag not in options]
    assert not missing, f"the options page lacks {missing}"
    assert "pytest_drdrill_restore" in (site / "api" / "index.html").read_text()


def test_the_readme_is_what_a_newcomer_reads_first() -> None:
    readme = (ROOT / "README.md").read_text()
    lines = readme.splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move detail to docs/"
    assert lines[2] == "```sh" and lines[3].startswith("scripts/bootstrap && .venv/bin/pytest")
    linked = {part.split(")")[0] for part in readme.split("](docs/")[1:]}
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"index.md"}
    assert pages <= linked, f"README.md does not lead to {sorted(pages - linked)}"
