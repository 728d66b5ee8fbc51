"""The sentry: removes what a run started within a second of the run dying, however it died.

A pytest process killed with SIGKILL runs no teardown, so every server, proxy, container
and data directory it started would keep running until the next run reaps it. Each run
therefore starts one sentry process, in a session of its own so that a signal to pytest's
process group does not reach it. The sentry waits on the run's process (a pidfd: woken the
moment it exits, no polling) and then reaps exactly what the start-of-run reaping reaps:
processes tagged with a dead owner (and their SysV shared memory), data roots of dead
owners, and Docker objects labelled with a dead owner on this host. After a normal end
there is nothing left to reap and it simply exits. The next run's reaping stays as the
second line, for a sentry that was itself killed. testcontainers' Ryuk is the model.

Run as ``python -m pytest_drdrill.topology.sentry --owner TAG --log FILE``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import select
import subprocess
import sys
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.servers import processes
from pytest_drdrill.topology.dataroot import reap_dataroots

if TYPE_CHECKING:
    from pathlib import Path

logger = logging.getLogger(__name__)


def start(log: Path) -> subprocess.Popen[bytes]:
    """Start the sentry for this process; it outlives it on purpose.

    Not tagged with ``DRDRILL_OWNER``: the reaping it does must not reap the sentry.
    """
    env = {k: v for k, v in os.environ.items() if k != processes.OWNER_ENV}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", __name__, "--owner", processes.owner_tag(), "--log", str(log)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )


def stop(sentry: subprocess.Popen[bytes]) -> None:
    """Stop the sentry at a normal end, when this process has removed everything itself."""
    sentry.terminate()
    try:
        sentry.wait(timeout=5)
    except subprocess.TimeoutExpired:
        sentry.kill()
        sentry.wait()


def wait_for_exit(owner: str) -> None:
    """Return once the process ``owner`` (an owner tag) has exited."""
    pid = int(owner.partition(":")[0])
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return  # already gone
    try:
        if not processes.owner_alive(owner):
            return  # the pid was reused: the owner is gone
        select.select([fd], [], [])
    finally:
        os.close(fd)


def reap() -> list[str]:
    """Remove every leftover of a dead run on this machine; never raises."""
    removed: list[str] = []
    for step in (processes.reap_leftovers, reap_dataroots, _reap_docker):
        try:
            removed += step()
        except Exception:  # one failing kind must not keep the others running
            logger.exception("reaping with %s failed", step.__name__)
    return removed


def _reap_docker() -> list[str]:
    """Docker objects of dead runs, when this machine has the SDK and a daemon."""
    try:
        import docker
    except ImportError:
        return []
    if not os.path.exists("/var/run/docker.sock") and "DOCKER_HOST" not in os.environ:
        return []
    from pytest_drdrill.topology.reaper import reap as reap_containers

    with contextlib.closing(docker.from_env(timeout=10)) as client:
        return reap_containers(client)


def main(argv: list[str] | None = None) -> int:
    """Wait for the owner to exit, then reap."""
    parser = argparse.ArgumentParser(prog="python -m pytest_drdrill.topology.sentry")
    parser.add_argument("--owner", required=True, help="the run's owner tag (pid:start ticks)")
    parser.add_argument("--log", help="file to log to (default: stderr)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sentry: %(message)s")
    wait_for_exit(args.owner)
    t0 = timing.monotonic()
    removed = reap()
    for line in removed:
        logger.info("removed %s", line)
    logger.info(
        "run %s ended; %d leftover(s) removed in %.2fs", args.owner, len(removed),
        timing.monotonic() - t0,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
