"""Run another program as a child, and end it when a given process dies.

``python -m pytest_drdrill.proxy.supervise --parent-pid PID -- PROGRAM ARGS...``
gives a program that cannot watch its parent (such as ``toxiproxy-server``) the same
promise as the built-in proxy: it exits within about a second of the pytest process
that started it, even when that process is killed. The supervisor forwards SIGTERM and
SIGINT to the program and exits with the program's exit code.
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType

from pytest_drdrill.proxy.server import process_stamp

__all__ = ["main"]

logger = logging.getLogger("pytest_drdrill.proxy")

_PARENT_POLL = 0.2
_STOP_TIMEOUT = 5.0


def _exit_code(code: int) -> int:
    # A child killed by a signal reports -N; a shell would report 128 + N.
    return code if code >= 0 else 128 - code


def supervise(command: Sequence[str], parent_pid: int | None) -> int:
    """Run ``command`` until it exits, or until ``parent_pid`` is gone and it is stopped.

    :param command: the program and its arguments.
    :param parent_pid: stop the program when this process no longer exists.
    :returns: the program's exit code (128 + N if signal N ended it).
    """
    try:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    except OSError as exc:
        logger.error("could not run %s: %s", command[0], exc)
        return 127

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    stamp = process_stamp(parent_pid) if parent_pid else None
    while True:
        try:
            return _exit_code(child.wait(timeout=_PARENT_POLL))
        except subprocess.TimeoutExpired:
            pass
        # The start time tells the parent from a new process that reused its pid.
        if parent_pid and (stamp is None or process_stamp(parent_pid) != stamp):
            break
    logger.info("parent process %d is gone; stopping %s", parent_pid, command[0])
    child.terminate()
    try:
        child.wait(timeout=_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the supervisor from the command line.

    :param argv: the arguments, without the program name; ``sys.argv[1:]`` by default.
    :returns: the process exit code.
    """
    parser = argparse.ArgumentParser(
        prog="python -m pytest_drdrill.proxy.supervise",
        description="Run a program; stop it when the parent process dies.",
    )
    parser.add_argument("--parent-pid", type=int, help="stop the program when this process is gone")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- PROGRAM [ARGS...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no program given; pass it after --")
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return supervise(command, args.parent_pid)


if __name__ == "__main__":
    sys.exit(main())
