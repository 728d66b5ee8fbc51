"""Spawning, signalling, killing and reaping the processes drills run.

The lifecycle of one server (start on a free port, readiness, crash, stop, fence) is
:class:`~pytest_drdrill.servers.lifecycle.ServerProcess`; this module holds the process
primitives it, the fault proxy's launcher and the backup tools use.

Written by hand rather than with mirakuru because PostgreSQL defeats process-group
kills: every child of the postmaster calls ``setsid()``, so ``killpg`` reaches only the
postmaster and a surviving orphan blocks the next start ("pre-existing shared memory
block is still in use"). Processes are therefore found by parent pid, frozen, then
killed. Each process carries ``DRDRILL_OWNER`` in its environment (inherited by forked
children) so the leftovers of a killed pytest run are found and removed at the next start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.errors import ExecutableMissing, TopologyError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

logger = logging.getLogger(__name__)

OWNER_ENV = "DRDRILL_OWNER"


def _start_ticks(pid: int) -> str | None:
    """Return a process's start time in clock ticks (field 22 of /proc/PID/stat).

    ``None`` when it is gone or has exited and waits to be collected (a zombie).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ")".
    fields = stat.rsplit(")", 1)[1].split()
    # A zombie has exited; only its parent has not collected it yet. It owns nothing more.
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def find_program(
    program: str, explicit: str | None, remedy: str, *, also_in: str | None = None
) -> str:
    """The executable of a server: ``explicit`` when given, else ``program`` on PATH.

    :param also_in: one more directory to look in (``/usr/sbin`` is not on every PATH).
    :param remedy: how to install it, appended to the error.
    :raises ExecutableMissing: when there is none.
    """
    found = explicit or shutil.which(program) or (also_in and shutil.which(program, path=also_in))
    if not found:
        raise ExecutableMissing(f"{program} not found on PATH. {remedy}")
    return found


def owner_tag(pid: int | None = None) -> str:
    """The tag of this process (or ``pid``): its pid and start time.

    The start time keeps a reused pid from passing for the process that wrote the tag.
    """
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_start_ticks(pid)}"


def owner_alive(tag: str) -> bool:
    """Whether the process that wrote ``tag`` (see :func:`owner_tag`) still runs."""
    pid_text, _, ticks = tag.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    return _start_ticks(pid) == ticks


@dataclasses.dataclass(frozen=True)
class RunAs:
    """The unprivileged account servers run under when pytest runs as root.

    :param user: the account name.
    :param uid: its uid.
    :param gid: its primary gid.
    """

    user: str
    uid: int
    gid: int

    @classmethod
    def resolve(cls, user: str | None) -> RunAs | None:
        """Return the account to run servers as, or ``None`` when not running as root.

        :param user: the ``--drill-run-as`` / ``drill_run_as`` value; ``None`` means ``postgres``.
        :raises TopologyError: when running as root and the account does not exist.
        """
        if os.geteuid() != 0:
            return None
        name = user or "postgres"
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise TopologyError(
                f"PostgreSQL refuses to run as root, and the account {name!r} that drills run "
                f"servers as does not exist. Create it (useradd --system --home-dir "
                f"/var/lib/postgresql {name}; installing the postgresql-15 package does this) "
                f"or name another unprivileged account with --drill-run-as / drill_run_as."
            ) from None
        if entry.pw_uid == 0:
            raise TopologyError(
                f"--drill-run-as / drill_run_as names {name!r}, which is root: PostgreSQL "
                f"refuses to run as root. Name an unprivileged account."
            )
        return cls(user=name, uid=entry.pw_uid, gid=entry.pw_gid)

    def own(self, path: Path) -> None:
        """Give ``path`` (recursively) to this account."""
        os.chown(path, self.uid, self.gid)
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                os.chown(os.path.join(root, name), self.uid, self.gid, follow_symlinks=False)


def _child_options(run_as: RunAs | None, env: Mapping[str, str] | None) -> dict[str, object]:
    """Environment, account and directory for every process the local backend starts."""
    child_env = {**os.environ, **(env or {}), OWNER_ENV: owner_tag()}
    # Drop the parent's libpq settings so a user's PGHOST/PGPORT never redirect our tools.
    for key in [k for k in child_env if k.startswith("PG")]:
        del child_env[key]
    # The caller's directory may be closed to the server account (e.g. under /root).
    options: dict[str, object] = {"env": child_env, "cwd": "/"}
    if run_as is not None:
        # user= alone keeps gid 0 and root's supplementary groups.
        options.update(user=run_as.uid, group=run_as.gid, extra_groups=[])
    return options


def spawn(
    argv: Sequence[str],
    *,
    log: Path,
    run_as: RunAs | None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a tagged server process in its own session, logging to ``log``.

    :param argv: the command.
    :param log: file receiving stdout and stderr.
    :param run_as: the account to run as, or ``None`` to run as this user.
    :param env: extra environment variables.
    :param cwd: working directory.
    """
    options = _child_options(run_as, env)
    if cwd is not None:
        options["cwd"] = cwd
    with open(log, "ab") as out:
        return subprocess.Popen(  # type: ignore[call-overload]
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **options,
        )


def run(
    argv: Sequence[str], *, run_as: RunAs | None, timeout: float, what: str
) -> subprocess.CompletedProcess[str]:
    """Run a tool to completion as ``run_as``; raise :class:`TopologyError` with its output."""
    try:
        done = subprocess.run(  # type: ignore[call-overload]
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            **_child_options(run_as, None),
        )
    except subprocess.TimeoutExpired as exc:
        raise TopologyError(
            f"{what} did not finish within {timeout:.0f}s: {' '.join(argv)}"
        ) from exc
    if done.returncode != 0:
        raise TopologyError(
            f"{what} failed (exit {done.returncode}): {' '.join(argv)}\n{done.stdout}{done.stderr}"
        )
    return done


def children(pid: int) -> list[int]:
    """Return the direct children of ``pid``, read from /proc."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _tree(pid: int) -> list[int]:
    pids = [pid]
    frontier = [pid]
    while frontier:
        kids = [c for p in frontier for c in children(p)]
        frontier = [k for k in kids if k not in pids]
        pids.extend(frontier)
    return pids


def process_tree(pid: int) -> list[int]:
    """``pid`` and every descendant of it, parents first (empty when ``pid`` is gone)."""
    return _tree(pid) if Path(f"/proc/{pid}").exists() else []


def signal_tree(pid: int, sig: signal.Signals) -> list[int]:
    """Send ``sig`` to ``pid`` and all its descendants; return the pids signalled.

    The root is signalled first so that, with SIGSTOP, it cannot fork new children while
    the tree is walked; the walk repeats until no new process appears.
    """
    signalled: list[int] = []
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
        signalled.append(pid)
    while True:
        new = [p for p in _tree(pid) if p not in signalled]
        if not new:
            return signalled
        for p in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, sig)
            signalled.append(p)


def kill_tree(pid: int) -> list[int]:
    """Freeze ``pid`` and its descendants, then SIGKILL them all (a crash, no shutdown)."""
    pids = signal_tree(pid, signal.SIGSTOP)
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    return pids


def wait_gone(pids: Sequence[int], timeout: float = 5.0) -> bool:
    """Wait until none of ``pids`` exists (zombies of ours are reaped); return success."""
    deadline = timing.monotonic() + timeout
    pending = list(pids)
    while pending and timing.monotonic() < deadline:
        still = []
        for p in pending:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(p, os.WNOHANG)
            if Path(f"/proc/{p}").exists() and _state(p) != "Z":
                still.append(p)
        pending = still
        if pending:
            timing.sleep(0.005)
    return not pending


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


def remove_sysv_shm(shmid: int) -> None:
    """Remove a SysV shared memory segment a crashed postmaster left (FIELD-NOTES gotcha 7)."""
    # IPC_RMID through ipcrm: the stdlib has no shmctl wrapper.
    subprocess.run(["ipcrm", "-m", str(shmid)], capture_output=True, check=False)


def orphaned_shmid(datadir: Path) -> int | None:
    """The segment ``postmaster.pid`` names, when it still exists with nobody attached.

    A postmaster killed from outside (not by the drill) leaves it; key and id must both
    match, so a reused id of another server's segment is never taken for it.
    """
    try:
        lines = (datadir / "postmaster.pid").read_text().splitlines()
        key, shmid = (int(field) for field in lines[6].split()[:2])
        table = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except (OSError, IndexError, ValueError):
        return None
    for row in table:
        fields = row.split()
        if int(fields[0]) == key and int(fields[1]) == shmid and int(fields[6]) == 0:
            return shmid
    return None


def postmaster_shmid(datadir: Path) -> int | None:
    """Read the SysV shared memory id from line 7 of ``postmaster.pid``."""
    try:
        lines = (datadir / "postmaster.pid").read_text().splitlines()
        return int(lines[6].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def tagged_processes() -> Iterator[tuple[int, str]]:
    """``(pid, owner tag)`` of every process carrying ``DRDRILL_OWNER``: what some run started."""
    marker = f"{OWNER_ENV}=".encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes()
        except OSError:
            continue
        tag = next((v for v in environ.split(b"\0") if v.startswith(marker)), None)
        if tag is not None:
            yield int(entry.name), tag[len(marker) :].decode(errors="replace")


def command_line(pid: int) -> str | None:
    """The command line of ``pid``, ``None`` once it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return None


def reap_leftovers() -> list[str]:
    """Kill processes that an earlier, dead pytest run tagged, and free their shared memory.

    :returns: one line per process removed, for the log and the terminal.
    """
    removed: list[str] = []
    for pid, owner in tagged_processes():
        if owner_alive(owner):
            continue
        cmd = command_line(pid)
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            continue  # gone meanwhile
        if cmd is None:
            continue  # gone meanwhile
        shmid = postmaster_shmid(cwd) if "postgres" in cmd else None
        kill_tree(pid)
        wait_gone([pid], timeout=2.0)
        if shmid is not None:
            remove_sysv_shm(shmid)
        removed.append(f"pid {pid} ({cmd[:80]}) left by dead run {owner}")
    return removed


def owns_listener(pid: int, port: int) -> bool:
    """Whether ``pid`` holds the socket listening on loopback ``port``.

    A readiness check for servers that report no identity of their own: whoever else
    answers on the port (a process that won the port race) must not pass for ``pid``.
    """
    try:
        rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    sockets = set()
    for row in rows:
        fields = row.split()
        # State 0A is LISTEN; the local address is HEXIP:HEXPORT.
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            sockets.add(f"socket:[{fields[9]}]")
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") in sockets:
                return True
    return False


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago, for a server to listen on.

    Ports are drawn below the kernel's ephemeral range: a port the kernel hands out (as
    bind to port 0 would) can be taken by any outgoing connection's source port or any
    ``listen 127.0.0.1:0`` before the server binds it. A collision with another listener
    is still possible; servers retry on "address in use".
    """
    low = 10000
    high = min(_ephemeral_range()[0], 65536) - 1
    for _ in range(200):
        port = random.randint(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise TopologyError(f"no free loopback port found between {low} and {high}")


def tail(path: Path, lines: int = 30) -> str:
    """Return the last lines of a log file, for error notes."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
