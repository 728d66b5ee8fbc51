"""``pytest --drill-init``: a starter drill project written into the current directory.

A team's first drill should not start with reading how the repository of pytest-drdrill
is laid out. The starter holds what a drill project needs: the targets file (the
requirements' tables shipped with the package, to edit), a ``conftest.py`` whose
failover hook is written out but commented, one example drill that passes on the
embedded topology, and an example stack file for drilling a stack the team already
runs. Nothing existing is ever overwritten: if any of the files is there, nothing is
written at all, so a half-written starter never mixes with a team's own files.
"""

from __future__ import annotations

from pathlib import Path

from pytest_drdrill.errors import DrillError
from pytest_drdrill.targets import PACKAGED_TARGETS

__all__ = ["STARTER_FILES", "StarterExists", "write_starter"]

_HERE = Path(__file__).parent

#: Where each starter file goes, relative to the project, and where its text comes from.
STARTER_FILES: tuple[tuple[str, Path], ...] = (
    ("fixtures/targets.yaml", PACKAGED_TARGETS),
    ("fixtures/stack.yaml", _HERE / "stack.yaml"),
    ("drills/conftest.py", _HERE / "conftest.py.txt"),
    ("drills/test_example_drill.py", _HERE / "test_example_drill.py.txt"),
)


class StarterExists(DrillError, FileExistsError):
    """A starter file is already there; nothing was written.

    .. versionadded:: 0.5

    :param paths: every starter file that exists.
    """

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        names = ", ".join(str(p) for p in paths)
        super().__init__(
            f"--drill-init wrote nothing: {names} already "
            f"{'exists' if len(paths) == 1 else 'exist'}, and it never overwrites a file. "
            f"Move or delete {'it' if len(paths) == 1 else 'them'}, or run --drill-init in "
            f"another directory."
        )

    def __str__(self) -> str:
        return str(self.args[0])


def write_starter(project: Path) -> list[Path]:
    """Write the starter files under ``project``; all of them or none.

    :returns: the files written, in :data:`STARTER_FILES` order.
    :raises StarterExists: naming every file that is already there.

    .. versionadded:: 0.5
    """
    targets = [(project / relative, source) for relative, source in STARTER_FILES]
    existing = [path for path, _ in targets if path.exists() or path.is_symlink()]
    if existing:
        raise StarterExists(existing)
    written: list[Path] = []
    for path, source in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        # "x": a file that appears between the check and the write is still not overwritten.
        with path.open("xb") as out:
            out.write(source.read_bytes())
        written.append(path)
    return written
