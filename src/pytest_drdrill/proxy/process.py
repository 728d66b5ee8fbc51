"""Start and stop the built-in fault proxy as a child process."""

from __future__ import annotations

import logging
import os
import signal
import site
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

__all__ = ["ProxyServer"]

logger = logging.getLogger(__name__)

#: Environment variable set on every proxy process, so a leaked one can be found
#: (``grep -l DRDRILL_PROXY_TAG /proc/*/environ``) and removed.
TAG_VARIABLE = "DRDRILL_PROXY_TAG"

_LOG_TAIL_LINES = 40
_READY_POLL = 0.01
_STOP_TIMEOUT = 5.0

# The directory holding the pytest_drdrill package; the child must import this same copy.
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class ProxyServer:
    """The built-in fault proxy, run as a child process of this one.

    The child gets this process's pid as ``--parent-pid`` and exits by itself within
    about a second of it disappearing, so a killed pytest leaves no proxy behind.

    .. versionadded:: 0.1

    :param workdir: directory for the ready file and ``proxy.log``; created if missing.
        Use one directory per server.
    :param env: variables to set for the child on top of this process's environment
        (e.g. a tag that lets a leak reaper find it).
    :param python: the interpreter that runs ``python -m pytest_drdrill.proxy``.
    :param ready_timeout: seconds to wait for the child to serve its API.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        ready_timeout: float = 10.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.env = dict(env or {})
        self.python = python
        self.ready_timeout = ready_timeout
        self.ready_file = self.workdir / "proxy.ready"
        self.log_file = self.workdir / "proxy.log"
        self.tag = uuid.uuid4().hex
        self._process: subprocess.Popen[bytes] | None = None
        self._command: list[str] = []
        self._address: str | None = None

    def __repr__(self) -> str:
        return f"ProxyServer(workdir={str(self.workdir)!r}, url={self._address!r})"

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
        self._command = command = [
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
        try:
            with self.log_file.open("ab") as log:
                self._process = subprocess.Popen(
                    command,
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
        self._address = None
        deadline = timing.monotonic() + self.ready_timeout
        while True:
            address = self._read_ready_file()
            if address is not None:
                self._address = address
                logger.debug("fault proxy pid %d ready at %s", self._process.pid, self.url)
                return self
            if timing.monotonic() >= deadline:
                _kill(self._process)
                raise self._start_error(
                    f"the fault proxy (pid {self._process.pid}) did not write its ready file "
                    f"{self.ready_file} within {self.ready_timeout} s"
                )
            try:
                # Waiting on the child, not sleeping, notices at once if it dies early.
                code = self._process.wait(timeout=_READY_POLL)
            except subprocess.TimeoutExpired:
                continue
            if self._read_ready_file() is None:
                raise self._start_error(
                    f"the fault proxy exited with code {code} before it was ready"
                )

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
        error = ProxyError(
            f"{message}. Command: {' '.join(self._command)}. "
            f"Hint: read its log {self.log_file}; check that {self.python} can import "
            "pytest_drdrill."
        )
        error.add_note(f"last lines of {self.log_file}:\n{self._log_tail()}")
        return error

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except OSError as exc:
            return f"(could not read the log: {exc})"
        return "\n".join(lines[-_LOG_TAIL_LINES:]) or "(empty)"


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    # Only called before the child is reaped, so its pid (= group id) cannot have been reused.
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def _kill(process: subprocess.Popen[bytes]) -> None:
    _signal(process, signal.SIGKILL)
    process.wait()
