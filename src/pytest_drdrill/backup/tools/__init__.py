"""Backup tools under test: who backs up and restores in a drill (``--drill-backup-tool``).

One tool per module behind :class:`~pytest_drdrill.backup.tools._protocol.BackupTool`:
the plugin's own encrypted backups (:mod:`pytest_drdrill.backup.site`, ``builtin``) and
:mod:`~.pgbackrest` and :mod:`~.barman`. A new tool is one module and one entry in :data:`TOOLS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill.options import BACKUP_TOOLS

if TYPE_CHECKING:
    from pytest_drdrill.backup.tools._protocol import BackupTool

#: The ``--drill-backup-tool`` values, the default first.
TOOLS = BACKUP_TOOLS


def make_tool(name: str) -> BackupTool:
    """The tool ``name`` names.

    :raises ValueError: for an unknown name (the option's check names the flag first).
    """
    if name == "pgbackrest":
        from pytest_drdrill.backup.tools.pgbackrest import PgBackRestTool

        return PgBackRestTool()
    if name == "barman":
        from pytest_drdrill.backup.tools.barman import BarmanTool

        return BarmanTool()
    raise ValueError(f"unknown backup tool {name!r}; choose one of {', '.join(TOOLS)}")
