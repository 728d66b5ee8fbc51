"""The drills that ship with pytest-drdrill: the scenario library.

Installed with the package as ``pytest_drdrill.library`` (``src/pytest_drdrill/library``
links here), so a project of its own runs them with ``pytest --drill=CADENCE
--drill-library``; in this repository they are also the examples to copy.
"""
