"""Faults that destroy data while every server stays up: the ones only a backup repairs."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from pytest_drdrill.ledger import LEDGER_TABLE

if TYPE_CHECKING:
    from pathlib import Path

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

    def __init__(self, node: PostgresNode, table: str = LEDGER_TABLE) -> None:
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


class CorruptDataDirectory:
    """Storage corruption under a PostgreSQL server: a table's file is overwritten, then it dies.

    The server itself overwrites the table's first segment file (``COPY ... TO`` the path the
    server reports for it, so this works wherever the server runs, local
    or in a container), and is then crashed: the file on disk no longer holds the table,
    and the pages it kept in memory are gone. What remains is a data directory that
    cannot be trusted; the recovery is a restore from backups.

    Healing does nothing: the damage is to data, not to a path or a process.

    :param node: the server whose data directory is damaged.
    :param table: the table whose file is overwritten.

    .. versionadded:: 0.4
    """

    kind = "corrupt-datadir"

    def __init__(self, node: PostgresNode, table: str = LEDGER_TABLE) -> None:
        if not _IDENTIFIER.fullmatch(table):
            raise ValueError(f"table {table!r} is not a plain SQL identifier")
        self.node = node
        self.table = table
        self.target = f"data directory of {node.name} ({table})"
        self.damaged: str | None = None

    def inject(self) -> None:
        """Overwrite the table's file through the server, then crash the server."""
        with psycopg.connect(self.node.dsn(app="drdrill-fault"), autocommit=True) as conn:
            row = conn.execute(
                "SELECT current_setting('data_directory') || '/' || pg_relation_filepath(%s)",
                [self.table],
            ).fetchone()
            if row is None or row[0] is None:
                raise ValueError(f"table {self.table!r} has no file on {self.node.name}")
            self.damaged = str(row[0])
            # Whole pages of text: every page header is invalid, so reading the table
            # fails loudly instead of finding a short file that looks like an empty table.
            conn.execute(
                sql.SQL("COPY (SELECT repeat({}, 2048)) TO {}").format(
                    sql.Literal("drdrill corruption fault "),
                    sql.Literal(self.damaged),
                )
            )
        self.node.crash()

    def heal(self) -> None:
        """Nothing to undo in place; see the class docstring."""


class RepositoryLoss:
    """A backup tool's repository in one region is gone, as with that region's storage.

    The directory is moved aside, so the tool finds nothing where its configuration
    points; healing moves it back unless something has taken its place.

    :param path: the repository (a tool's ``repository(region)``).
    :param region: the region it lives in, for the timeline.

    .. versionadded:: 0.7
    """

    kind = "repository-loss"

    def __init__(self, path: Path, region: str) -> None:
        self.path = path
        self.aside = path.with_name(f"{path.name}.lost")
        self.target = f"backup repository of region {region} ({path})"

    def inject(self) -> None:
        """Move the repository aside."""
        self.path.rename(self.aside)

    def heal(self) -> None:
        """Move it back, unless the tool has made a new one there."""
        if self.aside.exists() and not self.path.exists():
            self.aside.rename(self.path)
