"""A plain ``pip install pytest-drdrill`` brings every library the package imports.

Every import in src/ that runs (not under ``if TYPE_CHECKING:``, not inside a ``try`` that
catches ImportError) must come from a distribution that the plain dependencies of
pyproject.toml pull in, directly or through their own dependencies: an import served only
by an extra (``test``) would fail with ModuleNotFoundError on a user's machine, as
hypothesis once did in the fault-schedules drill.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "pytest_drdrill"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(requirements: list[str]) -> set[str]:
    """Distributions installed by ``requirements`` and, recursively, by theirs."""
    seen: set[str] = set()
    todo = [(Requirement(text), "") for text in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = _canonical(req.name)
        key = f"{name}[{','.join(sorted(req.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        seen.add(name)
        for text in importlib.metadata.requires(req.name) or []:
            sub = Requirement(text)
            for wanted in ("", *req.extras):
                todo.append((sub, wanted))
    return {key for key in seen if "[" not in key}


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Under ``if TYPE_CHECKING:`` or inside ``try: ... except ImportError``."""
    while node in parents:
        parent = parents[node]
        if isinstance(parent, ast.If) and "TYPE_CHECKING" in ast.unparse(parent.test):
            if node in parent.body:
                return True
        if isinstance(parent, ast.Try) and node in parent.body:
            caught = " ".join(ast.unparse(h.type) for h in parent.handlers if h.type is not None)
            if "ImportError" in caught or "ModuleNotFoundError" in caught:
                return True
        node = parent
    return False


def _runtime_imports() -> dict[str, list[str]]:
    """Top-level module names imported at run time, with where."""
    found: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            if _guarded(node, parents):
                continue
            for name in names:
                top = name.split(".")[0]
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                found.setdefault(top, []).append(where)
    return found


#: Modules used only behind an option whose check names the extra that provides them
#: (``--drill-otlp-endpoint`` refuses to start without ``pytest-drdrill[otel]``).
GATED = {"src/pytest_drdrill/reporting/otel.py": "otel"}


def test_every_runtime_import_comes_with_a_plain_install() -> None:
    """No module of the package needs an extra: each import is in the dependencies' closure.

    Except the modules in :data:`GATED`, whose imports must come with their extra.
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installed = _closure(project["dependencies"])
    providers = importlib.metadata.packages_distributions()
    missing = []
    for top, where in sorted(_runtime_imports().items()):
        if top in sys.stdlib_module_names or top in ("pytest_drdrill", "_pytest", "__future__"):
            continue
        dists = {_canonical(d) for d in providers.get(top, [])}
        extras = {GATED.get(w.rsplit(":", 1)[0]) for w in where}
        if None not in extras:
            with_extras = project["dependencies"] + [
                req for extra in extras for req in project["optional-dependencies"][extra]
            ]
            if dists & _closure(with_extras):
                continue
        if not dists & installed:
            missing.append(f"{top} (from {sorted(dists) or 'nothing installed'}) at {where[0]}")
    assert not missing, "imports a plain install does not provide:\n" + "\n".join(missing)


def test_hypothesis_is_a_plain_dependency() -> None:
    """hypothesis, which the fault-schedules drill imports, is not left to an extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_canonical(Requirement(text).name) for text in project["dependencies"]}
    assert "hypothesis" in names
    assert "hypothesis" in _closure(project["dependencies"])
