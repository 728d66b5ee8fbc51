"""Faults that destroy data while every server stays up: the ones only a backup repairs."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from pytest_drdrill.topology._protocol import PostgresNode

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class DropTable:
    """An operator's mistake: ``DROP TABLE`` on the primary, replicated everywhere at once.

    Healing does nothing: replication has already copied the loss to every standby, so
    no failover helps. The recovery is a point-in-time restore.

    :param node: the primary.
    :param table: the table to drop.

    .. versionadded:: 0.3
    """

    kind = "drop-table"

    def __init__(self, node: PostgresNode, table: str = "drdrill_ledger") -> None:
        if not _IDENTIFIER.fullmatch(table):
            raise ValueError(f"table {table!r} is not a plain SQL identifier")
        self.node = node
        self.table = table
        self.target = f"{table} on {node.name}"

    def inject(self) -> None:
        """Drop the table, committed."""
        with psycopg.connect(self.node.dsn(app="drdrill-fault"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(self.table)))

    def heal(self) -> None:
        """Nothing to undo in place; see the class docstring."""
