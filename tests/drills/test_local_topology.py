"""The local backend's PostgreSQL nodes, started for real."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pytest_drdrill.servers import processes
from pytest_drdrill.topology.local import LocalBackend
from pytest_drdrill.topology.postgres import LocalPostgresNode


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    started = LocalBackend(tmp_path_factory.mktemp("backend")).start()
    yield started
    started.close()


def test_free_ports_avoid_the_ephemeral_range():
    """Server ports come from below the range the kernel hands to outgoing connections."""
    low, _ = processes._ephemeral_range()
    assert all(10000 <= processes.free_port() < low for _ in range(50))


def test_node_retries_on_a_port_taken_before_it_binds(backend, tmp_path: Path):
    """If another process grabs the chosen port first, the node starts on another one."""
    assert backend.dataroot is not None
    datadir = backend.dataroot / "port-race"
    node = LocalPostgresNode(
        "port-race", "primary", datadir, backend.install, backend.run_as, log=tmp_path / "n.log"
    )
    node.init_from_template(backend.template)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", node.port))
        squatter.listen()
        taken = node.port
        try:
            node.start()
            assert node.port != taken
            with psycopg.connect(node.dsn(), autocommit=True) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            node.cleanup()
    assert "could not create any TCP/IP sockets" in (tmp_path / "n.log").read_text()


def test_another_server_on_the_port_is_not_mistaken_for_the_node(backend, tmp_path: Path):
    """A server that answers on the node's port (it won the port) does not pass for the node."""
    assert backend.dataroot is not None

    def make(name: str) -> LocalPostgresNode:
        node = LocalPostgresNode(
            name, "primary", backend.dataroot / name, backend.install, backend.run_as,
            log=tmp_path / f"{name}.log",
        )  # fmt: skip
        return node.init_from_template(backend.template)

    winner, loser = make("winner"), make("loser")
    try:
        winner.start()
        loser.port = winner.port
        loser.start()
        assert loser.port != winner.port
        with psycopg.connect(loser.dsn(), autocommit=True) as conn:
            row = conn.execute("SELECT current_setting('data_directory')").fetchone()
        assert row == (str(loser.datadir),)
    finally:
        winner.cleanup()
        loser.cleanup()
