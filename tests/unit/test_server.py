"""The one server lifecycle, driven by the smallest server there is: Python's http.server."""

from __future__ import annotations

import socket
import sys
import urllib.request
from pathlib import Path

import pytest

from pytest_drdrill.errors import TopologyError
from pytest_drdrill.servers import processes
from pytest_drdrill.servers.lifecycle import ServerProcess


class HttpServer(ServerProcess):
    """A new server is a command, a readiness check and what it logs when its port is taken."""

    ready_phrase = "answer HTTP"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "http.server", str(self.port), "--bind", self.host]

    def check_ready(self) -> str | None:
        assert self.process is not None
        if not processes.owns_listener(self.process.pid, self.port):
            return "not listening yet"
        try:
            with urllib.request.urlopen(f"http://{self.address}/", timeout=1) as answer:
                return None if answer.status == 200 else f"HTTP {answer.status}"
        except OSError as exc:
            return str(exc)


@pytest.fixture
def server(tmp_path: Path):
    node = HttpServer("http", log=tmp_path / "http.log", workdir=tmp_path / "www")
    yield node
    node.cleanup()


def test_start_on_a_taken_port_moves_to_a_free_one(server: HttpServer):
    """A start that lost its port to another listener retries on a new port and is ready."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        server.port = taken
        server.launch(timeout=10)
        assert server.port != taken
        assert server.is_running()
        assert server.pids()[0] == server.process.pid


def test_stop_fence_and_restart_refused(server: HttpServer):
    """Stop ends the process; a fenced server is killed and never starts again."""
    server.launch(timeout=10)
    server.stop()
    assert not server.is_running()
    server.launch(timeout=10)
    server.fence()
    assert not server.is_running()
    with pytest.raises(TopologyError, match="fenced"):
        server.launch(timeout=10)


def test_a_server_that_exits_during_start_names_its_log(tmp_path: Path):
    """A server that dies while starting fails at once, with the last lines of its log."""

    class Broken(HttpServer):
        def command(self) -> list[str]:
            return [sys.executable, "-c", "import sys; print('no such luck'); sys.exit(3)"]

    node = Broken("broken", log=tmp_path / "broken.log")
    with pytest.raises(TopologyError, match="exited with status 3") as info:
        node.launch(timeout=10)
    assert "no such luck" in "".join(info.value.__notes__)
