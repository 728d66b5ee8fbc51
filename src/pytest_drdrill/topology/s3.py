"""S3-compatible object stores as local processes (moto's server).

One ``moto_server`` process serves one region. Two servers started in one process
(``ThreadedMotoServer``) share their state, so a region failure could not be simulated;
separate processes are isolated. moto keeps everything in memory: :meth:`LocalS3Node.crash`
therefore loses every bucket and object, which is the drill's "storage loss" fault.
Clients of these stores come from :mod:`pytest_drdrill.clients.s3`.
"""

from __future__ import annotations

import http.client
import importlib.util
import logging
import os
import sys
from pathlib import Path

from pytest_drdrill.errors import ExecutableMissing
from pytest_drdrill.servers import processes
from pytest_drdrill.servers.lifecycle import ServerProcess

logger = logging.getLogger(__name__)

_REMEDY = (
    "Install moto's server extra in the environment pytest runs in: "
    "pip install 'moto[server]>=5' (pytest-drdrill depends on it; an install with "
    "--no-deps leaves it out)."
)


def moto_command() -> list[str]:
    """Return the command that runs moto's server with this interpreter's packages.

    :raises ExecutableMissing: when moto or its server extra is not installed.
    """
    # Not resolved: a venv's python is a symlink out of the venv, its scripts are not.
    beside = Path(sys.executable).parent / "moto_server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    missing = [name for name in ("moto", "flask", "flask_cors") if not _importable(name)]
    if missing:
        raise ExecutableMissing(
            f"No moto_server next to {sys.executable}, and the modules {', '.join(missing)} "
            f"that 'python -m moto.server' needs are not installed. {_REMEDY}"
        )
    return [sys.executable, "-m", "moto.server"]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _answers_s3(host: str, port: int, timeout: float) -> str | None:
    """Send an unsigned ``GET /`` (moto's ListBuckets); return why it is not ready, or None."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
    if response.status == 200 and b"ListAllMyBucketsResult" in body:
        return None
    return f"unexpected answer to GET / (HTTP {response.status})"


class LocalS3Node(ServerProcess):
    """One in-memory S3 server (``moto_server``) running as a local process.

    :param name: e.g. ``s3-primary``.
    :param region: ``primary`` or ``dr``.
    :param workdir: the server's working directory (moto keeps its data in memory).
    :param log: the server's log file.

    .. versionadded:: 0.2
    """

    stop_timeout = 5.0
    program = "moto_server"

    def __init__(self, name: str, region: str, workdir: Path, *, log: Path) -> None:
        super().__init__(name, log=log, workdir=workdir)
        self.workdir: Path = workdir
        self.region = region
        self.command_prefix = moto_command()

    def readiness(self) -> str:
        """Name the address in the timeout message: moto has no protocol step to name."""
        return f"answer on {self.address}"

    @property
    def endpoint_url(self) -> str:
        """``http://host:port`` straight to this store (not through any link)."""
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        """``moto_server`` on this node's port."""
        return [*self.command_prefix, "-H", self.host, "-p", str(self.port)]

    def environment(self) -> dict[str, str]:
        """Set ``MOTO_PORT``: moto reads its port from it, and the user's must not leak in."""
        return {"MOTO_PORT": str(self.port)}

    def check_ready(self) -> str | None:
        """Ready once this process holds the listening socket and answers ListBuckets."""
        assert self.process is not None
        if not processes.owns_listener(self.process.pid, self.port):
            return "not listening yet"
        return _answers_s3(self.host, self.port, timeout=1.0)

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until it answers S3 requests; it starts empty.

        :param timeout: seconds one attempt may take to answer.
        :raises TopologyError: when it exits or does not answer in time; its log is attached.
        """
        self.launch(timeout=timeout)
