"""A PostgreSQL server under a supervisor: Patroni, pg_auto_failover's keeper, repmgrd.

The supervisor is the process the drill starts; the postmaster is started by it (Patroni,
pg_autoctl) or beside it (repmgr's ``pg_ctl``) and detaches, so the server is found through
``postmaster.pid``. A node fault acts on both: a crash freezes the supervisor first, so it
cannot see its server die and restart it, then kills both and frees the server's shared
memory; a freeze stops both; a stop lets the supervisor stop and crashes what remains.
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

from pytest_drdrill.errors import TopologyError
from pytest_drdrill.servers import processes
from pytest_drdrill.servers.lifecycle import ServerProcess

if TYPE_CHECKING:
    from pathlib import Path


class SupervisedPostgres(ServerProcess):
    """A supervisor process and the PostgreSQL server in :attr:`datadir` it looks after.

    .. versionadded:: 0.7
    """

    @property
    def datadir(self) -> Path:
        """The server's data directory; each supervisor's class says where it is."""
        raise NotImplementedError

    def postmaster_pid(self) -> int | None:
        """The running postmaster's pid, from line 1 of ``postmaster.pid``; ``None`` if none.

        A stale file's pid may belong to another process by now: only a process whose
        working directory is this data directory counts.
        """
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().splitlines()[0])
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except (OSError, IndexError, ValueError):
            return None
        return pid if cwd == str(self.datadir) else None

    def _supervisor_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def is_running(self) -> bool:
        """Whether the supervisor or its PostgreSQL still runs."""
        return self._supervisor_alive() or self.postmaster_pid() is not None

    def pids(self) -> list[int]:
        """The supervisor's processes, then the postmaster's."""
        found = super().pids() if self._supervisor_alive() else []
        postmaster = self.postmaster_pid()
        if postmaster is not None:
            found += [p for p in processes.process_tree(postmaster) if p not in found]
        return found

    def crash(self) -> None:
        """Kill the supervisor and PostgreSQL at once (node loss); free PostgreSQL's memory."""
        postmaster = self.postmaster_pid()
        shmid = processes.postmaster_shmid(self.datadir) if postmaster is not None else None
        killed: list[int] = []
        # Frozen first: the supervisor must not see its server die and act on it.
        if self._supervisor_alive():
            assert self.process is not None
            processes.signal_tree(self.process.pid, signal.SIGSTOP)
        if postmaster is not None:
            killed += processes.kill_tree(postmaster)
        if self._supervisor_alive():
            assert self.process is not None
            killed += processes.kill_tree(self.process.pid)
            self.process.wait()
        processes.wait_gone(killed)
        if shmid is not None:
            processes.remove_sysv_shm(shmid)

    def crash_postgres(self) -> None:
        """Kill only PostgreSQL, as an OOM kill would; the supervisor lives on."""
        postmaster = self.postmaster_pid()
        if postmaster is None:
            raise TopologyError(f"{self.name}: PostgreSQL is not running; nothing to crash")
        processes.wait_gone(processes.kill_tree(postmaster))

    def freeze(self) -> None:
        """SIGSTOP the supervisor and PostgreSQL: both keep their sockets, answer nothing."""
        if self._supervisor_alive():
            super().freeze()
        postmaster = self.postmaster_pid()
        if postmaster is not None:
            processes.signal_tree(postmaster, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT what :meth:`freeze` stopped."""
        postmaster = self.postmaster_pid()
        if postmaster is not None:
            processes.signal_tree(postmaster, signal.SIGCONT)
        if self._supervisor_alive():
            super().thaw()

    def stop(self, *, timeout: float | None = None) -> None:
        """Stop the supervisor (which stops PostgreSQL); crash both if that takes too long."""
        if self._supervisor_alive():
            super().stop(timeout=timeout)
        if self.postmaster_pid() is not None:
            self.crash()
