"""One lifecycle for every server process drills run locally, the fault proxy included.

PostgreSQL, Redis, Sentinel and moto differ only in their command line, in how they
prove that the server answering on the port is the one just started, and in what they
log when another process took the port first. Everything else is here once: start on a
free port and retry when the port was lost between choice and bind, wait until ready,
crash, freeze, thaw, stop, fence and cleanup. A new server (etcd, Patroni, HAProxy, a
monitor) is a subclass that gives :meth:`ServerProcess.command`,
:meth:`ServerProcess.check_ready` and :attr:`ServerProcess.port_taken`.

Each process is spawned by :func:`~pytest_drdrill.servers.processes.spawn`, which tags
it with ``DRDRILL_OWNER`` so that the leftovers of a killed run are reaped at the next
start. The fault proxy starts through a subclass too (``proxy/process.py``), which is why
this module sits below both ``proxy/`` and ``topology/``.
"""

from __future__ import annotations

import logging
import signal
import subprocess
from typing import TYPE_CHECKING, ClassVar

from pytest_drdrill import timing
from pytest_drdrill.errors import DrillError, TopologyError
from pytest_drdrill.servers import processes

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from pytest_drdrill.servers.processes import RunAs

logger = logging.getLogger(__name__)

#: Starts retried when another process took the chosen port between choice and bind.
BIND_ATTEMPTS = 5


class ServerProcess:
    """Lifecycle of one tagged server process listening on one loopback port.

    :param name: the server's name in messages and logs, e.g. ``pg-primary``.
    :param log: the file receiving its output.
    :param workdir: its working directory (created before each start), or ``None`` for ``/``.
    :param run_as: the account it runs as, or ``None`` to run as this user.

    Subclasses give :meth:`command`, :meth:`check_ready` and :attr:`port_taken`, and may
    give :meth:`environment` and :meth:`prepare`.

    .. versionadded:: 0.5
    """

    #: Bytes the server logs when it could not bind its port: the port race was lost.
    port_taken: ClassVar[bytes] = b"Address already in use"
    #: What it must do to count as started, for the timeout message.
    ready_phrase: ClassVar[str] = "answer"
    #: The program, named in start failures after the server's name; ``None`` names none.
    program: ClassVar[str | None] = None
    #: The signal :meth:`stop` shuts the server down with.
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    #: Seconds :meth:`stop` waits for a clean exit before it crashes the server.
    stop_timeout: float = 10.0

    process: subprocess.Popen[bytes] | None = None
    fenced: bool = False

    def __init__(
        self,
        name: str,
        *,
        log: Path,
        workdir: Path | None = None,
        run_as: RunAs | None = None,
    ) -> None:
        self.name = name
        self.log = log
        self.workdir = workdir
        self.run_as = run_as
        self.host = "127.0.0.1"
        self.port = processes.free_port()
        self.process = None
        self.fenced = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.host}:{self.port}>"

    @property
    def address(self) -> str:
        """``host:port`` of the server itself, as a proxy upstream."""
        return f"{self.host}:{self.port}"

    # --- what a subclass gives ------------------------------------------------------------

    def command(self) -> list[str]:
        """The command line that runs the server on :attr:`port`."""
        raise NotImplementedError

    def check_ready(self) -> str | None:
        """Return ``None`` once *this* server answers on its port, else why it is not ready.

        Whoever else listens on the port (a process that won the port race, a proxy) must
        not pass for this server: compare an identity it reports (pid, data directory,
        listening socket) with the process just started.
        """
        raise NotImplementedError

    def environment(self) -> Mapping[str, str] | None:
        """Extra environment variables for the server."""
        return None

    def prepare(self) -> None:
        """Called before each start attempt, after the port is chosen (e.g. write a config)."""
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start one attempt's process, tagged for the reaper, in :attr:`workdir`."""
        return processes.spawn(
            self.command(),
            log=self.log,
            run_as=self.run_as,
            env=self.environment(),
            cwd=self.workdir,
        )

    def start_error(self, message: str) -> DrillError:
        """The error a failed start raises, with the last lines of the log as a note."""
        exc = TopologyError(message)
        exc.add_note(f"last lines of {self.log}:\n{processes.tail(self.log)}")
        return exc

    def exit_message(self, returncode: int) -> str:
        """What :meth:`start_error` says when the process exited before it was ready."""
        return f"{self._describe()} exited with status {returncode} during start"

    def timeout_message(self, timeout: float, last: str) -> str:
        """What :meth:`start_error` says when the process was not ready in time.

        :param last: why the last readiness check failed.
        """
        return f"{self._describe()} did not {self.readiness()} within {timeout:.0f}s: {last}"

    # --- starting -------------------------------------------------------------------------

    def readiness(self) -> str:
        """What the server must do to count as started, for the timeout message."""
        return self.ready_phrase

    def _describe(self) -> str:
        return f"{self.name} ({self.program})" if self.program else self.name

    def launch(self, *, timeout: float) -> None:
        """Start the server on a free port and wait until it is ready.

        When the start fails only because another process took the port, a new port is
        chosen, up to :data:`BIND_ATTEMPTS` times.

        :param timeout: seconds one attempt may take to become ready.
        :raises TopologyError: when fenced, or (the error of :meth:`start_error`) when it
            exits or does not become ready in time; its log is attached.
        """
        if self.fenced:
            raise TopologyError(f"{self.name} is fenced: a fenced node is never started again")
        for attempt in range(BIND_ATTEMPTS):
            log_size = self.log.stat().st_size if self.log.exists() else 0
            self.prepare()
            self.process = self.spawn()
            try:
                self.wait_ready(timeout)
                return
            except DrillError:
                # A server that did not come up must not keep its port or its memory.
                self.crash()
                if attempt + 1 == BIND_ATTEMPTS or not self.lost_port_race(log_size):
                    raise
                logger.info(
                    "%s lost port %d to another process; trying another", self.name, self.port
                )
                self.choose_ports()

    def choose_ports(self) -> None:
        """Pick new free ports after a lost port race (a server with more ports re-picks all)."""
        self.port = processes.free_port()

    def wait_ready(self, timeout: float) -> None:
        """Poll :meth:`check_ready` until it passes; fail early if the process exits.

        :raises DrillError: :meth:`start_error`'s, when it exits or is not ready.
        """
        assert self.process is not None
        deadline = timing.monotonic() + timeout
        last = "not listening yet"
        while timing.monotonic() < deadline:
            if self.process.poll() is not None:
                raise self.start_error(self.exit_message(self.process.returncode))
            why = self.check_ready()
            if why is None:
                return
            last = why
            timing.sleep(0.01)
        raise self.start_error(self.timeout_message(timeout, last))

    def lost_port_race(self, offset: int) -> bool:
        """Whether the start logged after ``offset`` failed only because its port was taken."""
        try:
            with open(self.log, "rb") as out:
                out.seek(offset)
                return self.port_taken in out.read()
        except OSError:
            return False

    # --- running --------------------------------------------------------------------------

    def is_running(self) -> bool:
        """Whether the server process exists (a frozen one counts as running)."""
        return self.process is not None and self.process.poll() is None

    def pids(self) -> list[int]:
        """The server's processes, its own first; empty when it is not running."""
        if not self.is_running():
            return []
        assert self.process is not None
        return processes.process_tree(self.process.pid)

    def crash(self) -> None:
        """Kill the server and its children at once, as a power loss would."""
        # Once reaped, the pid may belong to an unrelated process: never signal it again.
        if not self.is_running():
            return
        assert self.process is not None
        pids = processes.kill_tree(self.process.pid)
        self.process.wait()
        processes.wait_gone(pids)

    def freeze(self) -> None:
        """SIGSTOP the server: it keeps its sockets but answers nothing."""
        if self.is_running():
            assert self.process is not None
            processes.signal_tree(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT what :meth:`freeze` stopped."""
        if self.is_running():
            assert self.process is not None
            processes.signal_tree(self.process.pid, signal.SIGCONT)

    def stop(self, *, timeout: float | None = None) -> None:
        """Shut down with :attr:`stop_signal`; crash it if it does not stop within ``timeout``."""
        if not self.is_running():
            return
        assert self.process is not None
        self.thaw()
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(timeout=self.stop_timeout if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            logger.warning(
                "%s (pid %d) ignored %s; killing it",
                self.name,
                self.process.pid,
                self.stop_signal.name,
            )
            self.crash()

    def fence(self) -> None:
        """Make sure this server never accepts writes again: kill it and refuse restarts."""
        self.fenced = True
        self.crash()

    def cleanup(self) -> None:
        """Kill the server if it runs; never raises."""
        try:
            self.crash()
        except Exception:  # cleanup must not hide the test's own failure
            logger.exception("cleanup of %s failed", self.name)
