"""Backup tools a team may restore with instead of the built-in backups.

.. versionadded:: 0.6
"""

from __future__ import annotations

from pytest_drdrill.doctor.finding import Finding, program


def tools() -> list[Finding]:
    """Find pgBackRest and Barman, each with its version."""
    return [
        program("pgBackRest", "pgbackrest", "apt-get install -y pgbackrest", args=("version",)),
        program("Barman", "barman", "apt-get install -y barman"),
    ]
