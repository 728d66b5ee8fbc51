"""Start and stop the fault proxy as a child process: the built-in one or ``toxiproxy-server``."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.errors import ProxyError
from pytest_drdrill.proxy.client import ProxyClient

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

__all__ = ["ProxyServer", "find_toxiproxy_server"]

logger = logging.getLogger(__name__)

#: Environment variable set on every proxy process, so a leaked one can be found
#: (``grep -l DRDRILL_PROXY_TAG /proc/*/environ``) and removed.
TAG_VARIABLE = "DRDRILL_PROXY_TAG"

_LOG_TAIL_LINES = 40
_READY_POLL = 0.01
_STOP_TIMEOUT = 5.0
#: The executable name of Toxiproxy's server.
TOXIPROXY_SERVER = "toxiproxy-server"
# toxiproxy-server cannot be handed a bound socket, so a free port is picked for it; if
# another process takes that port first, it exits at once and a new port is tried.
_PORT_ATTEMPTS = 3

# The directory holding the pytest_drdrill package; the child must import this same copy.
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def find_toxiproxy_server(path: str | None = None) -> str | None:
    """Find Toxiproxy's server executable, ``toxiproxy-server``.

    .. versionadded:: 0.1

    :param path: the directories to search, as in ``PATH``; ``PATH`` itself by default.
    :returns: its path, or ``None`` if it is not installed there. Pass it to
        ``ProxyServer(toxiproxy_server=...)`` to run it instead of the built-in proxy.
    """
    return shutil.which(TOXIPROXY_SERVER, path=path)


class ProxyServer:
    """The fault proxy, run as a child process of this one.

    By default it runs the built-in proxy (``python -m pytest_drdrill.proxy``); with
    ``toxiproxy_server`` it runs a real ``toxiproxy-server -host 127.0.0.1 -port N`` on
    a free port instead, under a small supervisor. Either way the child exits by itself
    within about a second of this process disappearing, so a killed pytest leaves no
    proxy behind, and carries the same tag in its environment.

    .. versionadded:: 0.1

    :param workdir: directory for the ready file and ``proxy.log``; created if missing.
        Use one directory per server.
    :param env: variables to set for the child on top of this process's environment
        (e.g. a tag that lets a leak reaper find it).
    :param python: the interpreter that runs ``python -m pytest_drdrill.proxy`` (or the
        supervisor of ``toxiproxy-server``).
    :param ready_timeout: seconds to wait for the child to serve its API.
    :param toxiproxy_server: path of a ``toxiproxy-server`` executable to run instead of
        the built-in proxy; see :func:`find_toxiproxy_server`.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        ready_timeout: float = 10.0,
        toxiproxy_server: str | os.PathLike[str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.env = dict(env or {})
        self.python = python
        self.ready_timeout = ready_timeout
        self.toxiproxy_server = None if toxiproxy_server is None else os.fspath(toxiproxy_server)
        self.ready_file = self.workdir / "proxy.ready"
        self.log_file = self.workdir / "proxy.log"
        self.tag = uuid.uuid4().hex
        self._process: subprocess.Popen[bytes] | None = None
        self._command: list[str] = []
        self._address: str | None = None

    def __repr__(self) -> str:
        program = f", toxiproxy_server={self.toxiproxy_server!r}" if self.toxiproxy_server else ""
        return f"ProxyServer(workdir={str(self.workdir)!r}{program}, url={self._address!r})"

    def __enter__(self) -> ProxyServer:
        if self._process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The API's base URL, e.g. ``http://127.0.0.1:40123``.

        :raises ProxyError: if the server was not started.
        """
        if self._address is None:
            raise ProxyError("the fault proxy has no URL yet. Hint: call ProxyServer.start().")
        return f"http://{self._address}"

    @property
    def pid(self) -> int:
        """The child process's pid (also its process group id).

        :raises ProxyError: if the server was not started.
        """
        if self._process is None:
            raise ProxyError("the fault proxy has no pid yet. Hint: call ProxyServer.start().")
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """The child's exit code once it has been stopped, else ``None``."""
        return None if self._process is None else self._process.poll()

    def client(self, timeout: float = 2.0) -> ProxyClient:
        """Return a client for this server's API.

        :param timeout: the client's per-request timeout in seconds.
        """
        return ProxyClient(self.url, timeout=timeout)

    def start(self) -> ProxyServer:
        """Start the child and wait until its API accepts requests.

        :returns: this server, for chaining.
        :raises ProxyError: if it is already running, exits early, or is not ready within
            ``ready_timeout`` seconds; the tail of its log is attached as a note.
        """
        if self._process is not None and self._process.poll() is None:
            raise ProxyError(f"the fault proxy is already running as pid {self._process.pid}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        self._address = None
        if self.toxiproxy_server is None:
            return self._start_builtin()
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            try:
                return self._start_toxiproxy()
            except ProxyError:
                lost_port = "address already in use" in self._log_since(offset).lower()
                if attempt == _PORT_ATTEMPTS or not lost_port:
                    raise
                logger.info("toxiproxy-server lost its port to another process; trying another")
        raise AssertionError("unreachable")

    def _start_builtin(self) -> ProxyServer:
        self._command = [
            self.python,
            "-m",
            "pytest_drdrill.proxy",
            "--listen",
            "127.0.0.1:0",
            "--ready-file",
            str(self.ready_file),
            "--parent-pid",
            str(os.getpid()),
        ]
        process = self._spawn()
        deadline = timing.monotonic() + self.ready_timeout
        while True:
            address = self._read_ready_file()
            if address is not None:
                self._address = address
                logger.debug("fault proxy pid %d ready at %s", process.pid, self.url)
                return self
            if timing.monotonic() >= deadline:
                _kill(process)
                raise self._start_error(
                    f"the fault proxy (pid {process.pid}) did not write its ready file "
                    f"{self.ready_file} within {self.ready_timeout} s"
                )
            try:
                # Waiting on the child, not sleeping, notices at once if it dies early.
                code = process.wait(timeout=_READY_POLL)
            except subprocess.TimeoutExpired:
                continue
            if self._read_ready_file() is None:
                raise self._start_error(
                    f"the fault proxy exited with code {code} before it was ready"
                )

    def _start_toxiproxy(self) -> ProxyServer:
        port = _free_port()
        address = f"127.0.0.1:{port}"
        self._command = [
            self.python,
            "-m",
            "pytest_drdrill.proxy.supervise",
            "--parent-pid",
            str(os.getpid()),
            "--",
            str(self.toxiproxy_server),
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
        ]
        process = self._spawn()
        probe = ProxyClient(address, timeout=0.5)
        deadline = timing.monotonic() + self.ready_timeout
        while True:
            try:
                code = process.wait(timeout=_READY_POLL)
            except subprocess.TimeoutExpired:
                pass
            else:
                raise self._start_error(
                    f"toxiproxy-server exited with code {code} before it was ready"
                )
            try:
                probe.version()
            except ProxyError:
                if timing.monotonic() >= deadline:
                    _kill(process)
                    raise self._start_error(
                        f"toxiproxy-server (under supervisor pid {process.pid}) did not answer "
                        f"at http://{address}/version within {self.ready_timeout} s"
                    ) from None
                continue
            # Another server that took the port first could answer too; our child then
            # fails to bind and exits, which the next turn of this loop reports.
            if process.poll() is None:
                self._address = address
                logger.debug("toxiproxy-server pid %d ready at %s", process.pid, self.url)
                return self

    def _spawn(self) -> subprocess.Popen[bytes]:
        try:
            with self.log_file.open("ab") as log:
                self._process = subprocess.Popen(
                    self._command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self._child_env(),
                    # Its own session: a Ctrl-C aimed at pytest does not reach it half-way
                    # through a drill, and stop() can signal its whole group.
                    start_new_session=True,
                )
        except OSError as exc:
            raise ProxyError(
                f"could not run the fault proxy with {self.python!r}: {exc}. Hint: pass "
                "ProxyServer(python=...) an interpreter that can import pytest_drdrill."
            ) from exc
        return self._process

    def stop(self) -> None:
        """Stop the child: SIGTERM, then SIGKILL if it has not exited after 5 s.

        Safe to call more than once, and on a server that never started.
        """
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            _signal(process, signal.SIGTERM)
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "fault proxy pid %d ignored SIGTERM for %s s; killing it",
                    process.pid,
                    _STOP_TIMEOUT,
                )
                _kill(process)
        self.ready_file.unlink(missing_ok=True)

    def _child_env(self) -> dict[str, str]:
        env = {**os.environ, **self.env, TAG_VARIABLE: self.tag}
        root = str(_PACKAGE_ROOT)
        # Make a source checkout importable in the child, but never put site-packages on
        # PYTHONPATH: there it would go before the standard library.
        site_dirs = {*site.getsitepackages(), site.getusersitepackages()}
        if root not in site_dirs:
            existing = env.get("PYTHONPATH")
            env["PYTHONPATH"] = os.pathsep.join([root, existing] if existing else [root])
        return env

    def _read_ready_file(self) -> str | None:
        try:
            text = self.ready_file.read_text().strip()
        except FileNotFoundError:
            return None
        return text or None

    def _start_error(self, message: str) -> ProxyError:
        if self.toxiproxy_server is None:
            check = f"check that {self.python} can import pytest_drdrill"
        else:
            check = (
                f"check that {self.toxiproxy_server} is a working toxiproxy-server, or leave "
                "ProxyServer(toxiproxy_server=...) unset to use the built-in proxy"
            )
        error = ProxyError(
            f"{message}. Command: {' '.join(self._command)}. "
            f"Hint: read its log {self.log_file}; {check}."
        )
        error.add_note(f"last lines of {self.log_file}:\n{self._log_tail()}")
        return error

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_file.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except OSError as exc:
            return f"(could not read the log: {exc})"
        return "\n".join(lines[-_LOG_TAIL_LINES:]) or "(empty)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    # Only called before the child is reaped, so its pid (= group id) cannot have been reused.
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def _kill(process: subprocess.Popen[bytes]) -> None:
    _signal(process, signal.SIGKILL)
    process.wait()
