"""Health checks with a client-side timeout, so a frozen primary is caught in time."""

from __future__ import annotations

import dataclasses

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.clients import first_line, postgres


@dataclasses.dataclass(frozen=True)
class Health:
    """One check's result.

    :param ok: whether the node answered as a primary should.
    :param started: monotonic stamp when the check began.
    :param seconds: how long it took.
    :param in_recovery: what ``pg_is_in_recovery()`` said, when it answered.
    :param error: why it failed.
    """

    ok: bool
    started: float
    seconds: float
    in_recovery: bool | None = None
    error: str = ""


async def check_postgres(dsn: str, timeout: float) -> Health:
    """Connect, ask ``pg_is_in_recovery()``, and give up after ``timeout`` seconds in all."""
    started = timing.monotonic()
    conn = None
    try:
        conn = await postgres.connect(dsn, timeout)
        remaining = max(0.001, timeout - (timing.monotonic() - started))
        cur = await postgres.execute(conn, "SELECT pg_is_in_recovery()", timeout=remaining)
        row = await cur.fetchone()
        in_recovery = bool(row and row[0])
    except TimeoutError:
        elapsed = timing.monotonic() - started
        return Health(
            ok=False, started=started, seconds=elapsed, error=f"no answer within {timeout}s"
        )
    except (psycopg.Error, OSError) as exc:
        elapsed = timing.monotonic() - started
        return Health(ok=False, started=started, seconds=elapsed, error=first_line(exc))
    finally:
        if conn is not None:
            await postgres.close(conn)
    error = "in recovery: not a primary" if in_recovery else ""
    return Health(not in_recovery, started, timing.monotonic() - started, in_recovery, error)
