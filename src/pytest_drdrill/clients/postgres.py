"""PostgreSQL clients: bounded asynchronous operations, and LSN parsing.

Two facts shape this module. libpq's ``connect_timeout`` cannot go below 2 s, and a frozen
server never refuses, it hangs; so every operation is bounded on the client. And
cancelling a pending psycopg coroutine makes psycopg send a cancel request and wait up to
5 s + 5 s for a frozen server (``AsyncConnection.wait``); shutting the socket down instead
makes libpq see end-of-file at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
from typing import Any

import psycopg

_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


def parse_lsn(text: str) -> int:
    """Return the position of an LSN written ``X/Y`` (as ``pg_current_wal_lsn()`` prints).

    :param text: the LSN.
    :raises ValueError: when it is not of that form.

    .. versionadded:: 0.3
    """
    match = _LSN.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an LSN of the form X/Y (hex), e.g. 0/3000060")
    return (int(match[1], 16) << 32) | int(match[2], 16)


def hard_close(conn: psycopg.AsyncConnection[Any]) -> None:
    """Shut the connection's socket so any pending operation on it fails immediately."""
    with contextlib.suppress(OSError, psycopg.Error):
        with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
            sock.shutdown(socket.SHUT_RDWR)


#: libpq's ``connect_timeout`` for every attempt, per host (its minimum).
CONNECT_TIMEOUT = 2


async def connect(dsn: str, timeout: float) -> psycopg.AsyncConnection[Any]:
    """Open an autocommit connection, giving up after ``timeout`` seconds.

    A connection string naming several hosts (``host=a,b,c``, as pg_auto_failover's
    ``show uri`` gives) gets libpq's own time to try them in turn: ``connect_timeout`` per
    host. Cut at ``timeout``, a client would spend every attempt on a first host that
    accepts connections and never answers (a frozen server), and never reach the next.

    :raises TimeoutError: when the server does not complete the handshake in time.
    """
    hosts = host_count(dsn)
    if hosts > 1:
        timeout = max(timeout, CONNECT_TIMEOUT * hosts + 0.5)
    return await asyncio.wait_for(
        psycopg.AsyncConnection.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT),
        timeout,
    )


def host_count(dsn: str) -> int:
    """How many hosts a connection string names (1 when it cannot be read)."""
    try:
        host = psycopg.conninfo.conninfo_to_dict(dsn).get("host") or ""
    except psycopg.ProgrammingError:
        return 1
    return max(1, len([h for h in str(host).split(",") if h.strip()]))


async def execute(
    conn: psycopg.AsyncConnection[Any],
    query: str,
    params: tuple[object, ...] | None = None,
    *,
    timeout: float,
) -> psycopg.AsyncCursor[Any]:
    """Run one statement, giving up after ``timeout`` seconds and closing the connection.

    :raises TimeoutError: when no answer came in time (the connection is then closed).
    """
    task = asyncio.ensure_future(conn.execute(query, params))
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        hard_close(conn)
        with contextlib.suppress(BaseException):
            await task
        raise TimeoutError(f"no answer within {timeout}s")
    return task.result()


async def close(conn: psycopg.AsyncConnection[Any]) -> None:
    """Close without waiting on a server that may be frozen."""
    hard_close(conn)
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(conn.close(), 1.0)
