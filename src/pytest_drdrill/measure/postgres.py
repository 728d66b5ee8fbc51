"""The PostgreSQL ledger: one row per acknowledged write in ``drdrill_ledger``."""

from __future__ import annotations

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.clients import first_line, postgres
from pytest_drdrill.ledger import INSERT_ID, SELECT_IDS
from pytest_drdrill.measure._protocol import Indeterminate, NotApplied

INSERT = INSERT_ID


class PostgresLedger:
    """Writes ledger rows and probes with ``SELECT 1`` through a PostgreSQL endpoint.

    :param dsn: the service endpoint's connection string (never a node directly).

    .. versionadded:: 0.2
    """

    service = "postgres"

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._writer: psycopg.AsyncConnection | None = None
        self._prober: psycopg.AsyncConnection | None = None

    async def write(self, op_id: int, timeout: float) -> None:
        """Insert ``op_id`` in autocommit mode; the reply is the acknowledgement."""
        if self._writer is None or self._writer.closed:
            try:
                self._writer = await postgres.connect(self.dsn, timeout)
            except (OSError, psycopg.Error, TimeoutError) as exc:
                raise NotApplied(f"connect: {exc}") from exc
        try:
            await postgres.execute(self._writer, INSERT, (op_id,), timeout=timeout)
        except (psycopg.OperationalError, TimeoutError, OSError) as exc:
            # The commit may have reached the server before the connection died.
            await postgres.close(self._writer)
            self._writer = None
            raise Indeterminate(first_line(exc)) from exc
        except psycopg.Error as exc:
            # The server answered with an error (e.g. read-only): the row was not written.
            raise NotApplied(first_line(exc)) from exc

    async def probe(self, timeout: float) -> None:
        """``SELECT 1`` on a kept connection, reconnecting after a failure."""
        try:
            if self._prober is None or self._prober.closed:
                self._prober = await postgres.connect(self.dsn, timeout)
            await postgres.execute(self._prober, "SELECT 1", timeout=timeout)
        except (psycopg.Error, TimeoutError, OSError) as exc:
            if self._prober is not None:
                await postgres.close(self._prober)
                self._prober = None
            raise RuntimeError(first_line(exc)) from exc

    async def aclose(self) -> None:
        """Close both connections."""
        for conn in (self._writer, self._prober):
            if conn is not None:
                await postgres.close(conn)
        self._writer = self._prober = None

    def read_ids(self, *, timeout: float = 10.0) -> set[int]:
        """Every id in the ledger, read through the endpoint."""
        return read_present_ids(self.dsn, timeout=timeout)


def read_present_ids(dsn: str, *, timeout: float = 10.0) -> set[int]:
    """Read every id in the ledger through ``dsn`` (the service endpoint after recovery).

    :raises psycopg.Error: when the endpoint cannot be read within ``timeout``.
    """
    deadline = timing.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn:
                return {row[0] for row in conn.execute(SELECT_IDS)}
        except psycopg.OperationalError:
            if timing.monotonic() > deadline:
                raise
            timing.sleep(0.05)
