"""Start and stop the fault proxy as a child process: the built-in one or ``toxiproxy-server``.

The child is a :class:`~pytest_drdrill.servers.lifecycle.ServerProcess` like every other
server, so it is tagged for the reaper and started by the one start-on-a-free-port loop;
this module adds only what is the proxy's own: its command lines, the ready file (or the
``/version`` probe for ``toxiproxy-server``) and its error messages.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import site
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_drdrill.errors import ProxyError
from pytest_drdrill.proxy.client import ProxyClient
from pytest_drdrill.servers import processes
from pytest_drdrill.servers.lifecycle import ServerProcess

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

__all__ = ["ProxyServer", "find_toxiproxy_server"]

logger = logging.getLogger(__name__)

#: Environment variable set on every proxy process, so a leaked one can be found
#: (``grep -l DRDRILL_PROXY_TAG /proc/*/environ``) and removed.
TAG_VARIABLE = "DRDRILL_PROXY_TAG"

_LOG_TAIL_LINES = 40
_STOP_TIMEOUT = 5.0
#: The executable name of Toxiproxy's server.
TOXIPROXY_SERVER = "toxiproxy-server"

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
    proxy behind, and carries the same tag in its environment. It is started like every
    other server (:class:`~pytest_drdrill.servers.lifecycle.ServerProcess`), so it also
    carries ``DRDRILL_OWNER`` for the reaper of a later run.

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
        self._child: _ProxyProcess | None = None
        self._address: str | None = None

    def __repr__(self) -> str:
        program = f", toxiproxy_server={self.toxiproxy_server!r}" if self.toxiproxy_server else ""
        return f"ProxyServer(workdir={str(self.workdir)!r}{program}, url={self._address!r})"

    def __enter__(self) -> ProxyServer:
        if self._child is None:
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
        process = None if self._child is None else self._child.process
        if process is None:
            raise ProxyError("the fault proxy has no pid yet. Hint: call ProxyServer.start().")
        return process.pid

    @property
    def returncode(self) -> int | None:
        """The child's exit code once it has been stopped, else ``None``."""
        process = None if self._child is None else self._child.process
        return None if process is None else process.poll()

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
        if self._child is not None and self._child.is_running():
            raise ProxyError(f"the fault proxy is already running as pid {self.pid}")
        self._address = None
        self._child = _ProxyProcess(self)
        self._child.launch(timeout=self.ready_timeout)
        self._address = self._child.answering
        logger.debug("%s pid %d ready at %s", self._child.name, self.pid, self.url)
        return self

    def stop(self) -> None:
        """Stop the child: SIGTERM, then SIGKILL if it has not exited after 5 s.

        Safe to call more than once, and on a server that never started.
        """
        if self._child is None:
            return
        self._child.stop()
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

    def _start_error(self, message: str, command: list[str]) -> ProxyError:
        if self.toxiproxy_server is None:
            check = f"check that {self.python} can import pytest_drdrill"
        else:
            check = (
                f"check that {self.toxiproxy_server} is a working toxiproxy-server, or leave "
                "ProxyServer(toxiproxy_server=...) unset to use the built-in proxy"
            )
        error = ProxyError(
            f"{message}. Command: {' '.join(command)}. Hint: read its log {self.log_file}; {check}."
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


class _ProxyProcess(ServerProcess):
    """One start of a :class:`ProxyServer`'s child, through the common server lifecycle.

    The built-in proxy binds a port of its own choosing and writes its address to the
    ready file, so it never loses a port race; ``toxiproxy-server`` cannot be handed a
    port or a socket, so it is started on :attr:`port` and started again on another one
    when a process took that port first.
    """

    stop_timeout = _STOP_TIMEOUT

    def __init__(self, owner: ProxyServer) -> None:
        builtin = owner.toxiproxy_server is None
        super().__init__(
            "fault proxy" if builtin else TOXIPROXY_SERVER,
            log=owner.log_file,
            workdir=owner.workdir,
        )
        self.owner = owner
        #: The API's ``host:port`` once ready.
        self.answering: str | None = None
        self.argv: list[str] = []

    def command(self) -> list[str]:
        parent = ["--parent-pid", str(os.getpid())]
        if self.owner.toxiproxy_server is None:
            # It binds a port of its own choosing and writes the address to the ready file.
            listen = ["--listen", "127.0.0.1:0", "--ready-file", str(self.owner.ready_file)]
            return [self.owner.python, "-m", "pytest_drdrill.proxy", *listen, *parent]
        return [
            self.owner.python,
            "-m",
            "pytest_drdrill.proxy.supervise",
            *parent,
            "--",
            self.owner.toxiproxy_server,
            "-host",
            self.host,
            "-port",
            str(self.port),
        ]

    def prepare(self) -> None:
        super().prepare()
        self.owner.ready_file.unlink(missing_ok=True)
        self.answering = None

    def spawn(self) -> subprocess.Popen[bytes]:
        self.argv = self.command()
        # The child keeps this process's directory, so relative paths in its command
        # (a relative workdir's ready file) mean the same to both.
        cwd = None
        with contextlib.suppress(OSError):
            cwd = Path.cwd()
        try:
            # Its own session (as every server's): a Ctrl-C aimed at pytest does not reach
            # it half-way through a drill.
            return processes.spawn(
                self.argv,
                log=self.log,
                run_as=None,
                env=self.owner._child_env(),
                cwd=cwd,
            )
        except OSError as exc:
            raise ProxyError(
                f"could not run the fault proxy with {self.owner.python!r}: {exc}. Hint: pass "
                "ProxyServer(python=...) an interpreter that can import pytest_drdrill."
            ) from exc

    def check_ready(self) -> str | None:
        if self.owner.toxiproxy_server is None:
            address = self.owner._read_ready_file()
            if address is None:
                return "no ready file yet"
            self.answering = address
            return None
        address = f"{self.host}:{self.port}"
        try:
            ProxyClient(address, timeout=0.5).version()
        except ProxyError as exc:
            return str(exc)
        # Another server that took the port first could answer too; our child then fails
        # to bind and exits, which the next readiness poll reports.
        assert self.process is not None
        if self.process.poll() is not None:
            return "exited"
        self.answering = address
        return None

    def lost_port_race(self, offset: int) -> bool:
        if self.owner.toxiproxy_server is None:
            return False
        return "address already in use" in self.owner._log_since(offset).lower()

    def start_error(self, message: str) -> ProxyError:
        return self.owner._start_error(message, self.argv)

    def exit_message(self, returncode: int) -> str:
        return f"{self.name} exited with code {returncode} before it was ready"

    def timeout_message(self, timeout: float, last: str) -> str:
        assert self.process is not None
        if self.owner.toxiproxy_server is None:
            return (
                f"the fault proxy (pid {self.process.pid}) did not write its ready file "
                f"{self.owner.ready_file} within {timeout} s"
            )
        return (
            f"toxiproxy-server (under supervisor pid {self.process.pid}) did not answer "
            f"at http://{self.host}:{self.port}/version within {timeout} s"
        )
