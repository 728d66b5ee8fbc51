"""A connection string naming several hosts gets libpq's time to try each of them."""

from __future__ import annotations

import asyncio
import socket
import time

import psycopg
import pytest

from pytest_drdrill.clients.postgres import CONNECT_TIMEOUT, connect, host_count


def test_hosts_are_counted_in_both_forms() -> None:
    assert host_count("host=a,b,c port=1,2,3 user=x") == 3
    assert host_count("postgresql://h1:1,h2:2/db?target_session_attrs=read-write") == 2
    assert host_count("host=127.0.0.1 port=5432") == 1
    assert host_count("not a connection string ===") == 1


def _silent_listener() -> socket.socket:
    """Accepts TCP and never answers, like a frozen server behind a live kernel."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener


def test_a_silent_first_host_does_not_stop_the_client_reaching_the_second() -> None:
    first, second = _silent_listener(), _silent_listener()
    ports = f"{first.getsockname()[1]},{second.getsockname()[1]}"
    dsn = f"host=127.0.0.1,127.0.0.1 port={ports} user=postgres dbname=postgres"
    started = time.monotonic()
    try:
        # Both hosts are silent, so libpq fails after trying each for connect_timeout:
        # its own error, not the client's 1 s limit cutting it off at the first host.
        with pytest.raises(psycopg.OperationalError):
            asyncio.run(connect(dsn, timeout=1.0))
    finally:
        first.close()
        second.close()
    assert time.monotonic() - started >= 2 * CONNECT_TIMEOUT - 0.5


def test_one_silent_host_is_still_cut_at_the_clients_limit() -> None:
    only = _silent_listener()
    dsn = f"host=127.0.0.1 port={only.getsockname()[1]} user=postgres dbname=postgres"
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            asyncio.run(connect(dsn, timeout=1.0))
    finally:
        only.close()
    assert time.monotonic() - started < CONNECT_TIMEOUT
