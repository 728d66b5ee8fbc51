"""The built-in fault proxy's process: a TCP forwarder driven by Toxiproxy's HTTP API.

Run it with ``python -m pytest_drdrill.proxy --listen 127.0.0.1:0 --ready-file PATH``;
:class:`~pytest_drdrill.proxy.ProxyServer` does that for you. Without ``--ready-file``
it serves on a fixed address (8474 by default, as ``toxiproxy-server``) for use outside
pytest. This module starts the event loop that moves bytes
(:mod:`~pytest_drdrill.proxy.forwarder`), serves the API (:mod:`~pytest_drdrill.proxy.api`)
from a thread, writes the ready file, and exits when told to or when its parent process
dies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from pytest_drdrill.proxy.addresses import join_address, split_address
from pytest_drdrill.proxy.api import VERSION, ProxyApp, _ApiServer

__all__ = ["main", "process_stamp", "serve"]

logger = logging.getLogger("pytest_drdrill.proxy")

# Polling the parent every 0.2 s keeps the promised exit within ~1 s of its death.
_PARENT_POLL = 0.2


def _write_ready_file(path: Path, address: str) -> None:
    # Written to a temporary file and renamed, so the launcher never reads half an address.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as stream:
            stream.write(address)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def process_stamp(pid: int) -> str | None:
    """Return the start time of a live process, or ``None`` if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        # No procfs (not Linux): fall back to asking the kernel whether the pid exists.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    # Fields after the parenthesised command name: state is the 3rd field, starttime the 22nd.
    fields = stat.rpartition(")")[2].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


async def _watch_parent(pid: int, stop: asyncio.Event) -> None:
    # The start time tells the parent from a new process that reused its pid; a zombie
    # counts as gone, since a parent killed by a signal may not be reaped at once.
    stamp = process_stamp(pid)
    while stamp is not None and process_stamp(pid) == stamp:
        await asyncio.sleep(_PARENT_POLL)
    logger.info("parent process %d is gone; shutting down", pid)
    stop.set()


async def serve(listen: str, ready_file: Path | None, parent_pid: int | None = None) -> int:
    """Serve the API and the proxies until SIGTERM/SIGINT or until the parent process dies.

    :param listen: ``host:port`` for the HTTP API; port 0 picks a free port.
    :param ready_file: where to write the API's bound ``host:port`` once it accepts
        requests; ``None`` writes none.
    :param parent_pid: exit when this process no longer exists.
    :returns: the process exit code.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    app = ProxyApp()
    host, port = split_address(listen)
    api = _ApiServer((host, port), app, loop)
    thread = threading.Thread(
        target=api.serve_forever, kwargs={"poll_interval": 0.1}, name="drdrill-proxy-api"
    )
    thread.start()
    watcher = loop.create_task(_watch_parent(parent_pid, stop)) if parent_pid else None
    try:
        bound_host, bound_port = api.server_address[:2]
        address = join_address(str(bound_host), int(bound_port))
        if ready_file is not None:
            _write_ready_file(ready_file, address)
        logger.info("fault proxy %s: API on http://%s (pid %d)", VERSION, address, os.getpid())
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
        await loop.run_in_executor(None, api.shutdown)
        thread.join()
        api.server_close()
        await app.close()
        if ready_file is not None:
            with contextlib.suppress(OSError):
                ready_file.unlink()
    logger.info("fault proxy stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fault proxy from the command line.

    :param argv: the arguments, without the program name; ``sys.argv[1:]`` by default.
    :returns: the process exit code.
    """
    parser = argparse.ArgumentParser(
        prog="python -m pytest_drdrill.proxy",
        description="pytest-drdrill's fault proxy: a TCP forwarder with a Toxiproxy-style API.",
    )
    parser.add_argument(
        "--listen", default="127.0.0.1:8474", help="host:port for the HTTP API (port 0: any)"
    )
    parser.add_argument("--ready-file", type=Path, help="file to receive the API's host:port")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    args = parser.parse_args(argv)
    try:
        split_address(args.listen)
    except ValueError as exc:
        parser.error(f"--listen: {exc}")
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return asyncio.run(serve(args.listen, args.ready_file, args.parent_pid))
