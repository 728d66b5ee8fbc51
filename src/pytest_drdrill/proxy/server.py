"""The built-in fault proxy: a TCP forwarder driven by a subset of Toxiproxy's HTTP API.

Run it with ``python -m pytest_drdrill.proxy --listen 127.0.0.1:0 --ready-file PATH``;
:class:`~pytest_drdrill.proxy.ProxyServer` does that for you. Bytes move on an
asyncio event loop; the HTTP API is served from a thread and hands every request
to the loop, answering only once the change has taken effect.

What it implements: proxies (create, read, update, delete), ``/populate``,
``/reset`` and ``/version``, with Toxiproxy's status codes and JSON bodies.
Toxics are not implemented yet: creating one answers HTTP 501.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import http.server
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import urllib.parse
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, cast

from pytest_drdrill._version import __version__
from pytest_drdrill.proxy.client import join_address, split_address

__all__ = ["ApiError", "ProxyApp", "main", "serve"]

logger = logging.getLogger("pytest_drdrill.proxy")

VERSION = f"{__version__}+drdrill"

# How long an API request may wait for the event loop; Toxiproxy's own handler timeout is 25 s.
_API_TIMEOUT = 25.0
# How long stopping a proxy waits for aborted connections to report that they are closed.
_CUT_TIMEOUT = 1.0
# Polling the parent every 0.2 s keeps the promised exit within ~1 s of its death.
_PARENT_POLL = 0.2

_TOXICS_UNSUPPORTED = (
    "toxics are not supported by the built-in pytest-drdrill proxy yet; to use toxics, run a "
    "real Toxiproxy server and point pytest-drdrill at its API with the DRDRILL_TOXIPROXY_URL "
    "environment variable (e.g. DRDRILL_TOXIPROXY_URL=http://127.0.0.1:8474)"
)


class ApiError(Exception):
    """An API request that fails with an HTTP status, answered as Toxiproxy does.

    :param status: the HTTP status code.
    :param message: the text of the ``error`` field.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def to_json(self) -> dict[str, object]:
        """Return the error body: ``{"error": message, "status": status}``."""
        return {"error": self.message, "status": self.status}


class _Side(asyncio.Protocol):
    """One of the two TCP connections of a :class:`_Link`."""

    def __init__(self, link: _Link, label: str) -> None:
        self.link = link
        self.label = label
        self.transport: asyncio.Transport | None = None
        self.peer: _Side = self
        self.eof = False
        self.lost = False
        self.pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.link.side_made(self)

    def data_received(self, data: bytes) -> None:
        peer = self.peer.transport
        if peer is None:
            # The upstream is still connecting. Reading is paused in connection_made, but
            # CPython before 3.11.4 starts reading after connection_made regardless (Debian
            # 12 ships 3.11.2), so hold the bytes until the upstream exists.
            self.pending.append(data)
            cast(asyncio.Transport, self.transport).pause_reading()
            return
        peer.write(data)

    def eof_received(self) -> bool:
        self.link.side_eof(self)
        # Keep the transport open: the other direction may still carry data.
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.link.side_lost(self, exc)

    def pause_writing(self) -> None:
        if self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer.transport is not None:
            self.peer.transport.resume_reading()


class _Link:
    """A client connection spliced to its own upstream connection."""

    def __init__(self, proxy: _Proxy, generation: int, upstream: tuple[str, int]) -> None:
        self.proxy = proxy
        self.generation = generation
        self.upstream_address = upstream
        self.client = _Side(self, "client")
        self.upstream = _Side(self, "upstream")
        self.client.peer = self.upstream
        self.upstream.peer = self.client
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.connecting: asyncio.Task[None] | None = None
        self.cutting = False

    def client_side(self) -> _Side:
        """Protocol factory for the accepted client connection."""
        return self.client

    def side_made(self, side: _Side) -> None:
        transport = cast(asyncio.Transport, side.transport)
        if side is self.client:
            # The listener may have accepted this connection just before the proxy was
            # stopped or restarted; it belongs to no live generation, so drop it.
            if not self.proxy.accepts(self.generation):
                transport.abort()
                return
            self.proxy.links.add(self)
            # Nothing may be read from the client before there is an upstream to write to;
            # the kernel buffers it meanwhile.
            transport.pause_reading()
            self.connecting = asyncio.get_running_loop().create_task(self._connect())
            self.connecting.add_done_callback(lambda _task: self._check_closed())
        elif self.cutting:
            transport.abort()
        else:
            if self.client.pending:
                transport.write(b"".join(self.client.pending))
                self.client.pending.clear()
            if self.client.eof and transport.can_write_eof():
                transport.write_eof()
            cast(asyncio.Transport, self.client.transport).resume_reading()

    async def _connect(self) -> None:
        host, port = self.upstream_address
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: self.upstream, host, port)
        except OSError as exc:
            logger.info(
                "proxy %s: upstream %s refused a connection (%s); closing the client",
                self.proxy.name,
                join_address(host, port),
                exc,
            )
            if self.client.transport is not None:
                self.client.transport.close()

    def side_eof(self, side: _Side) -> None:
        if side.eof:
            return
        side.eof = True
        peer = side.peer.transport
        if side.peer.eof:
            # Both directions are finished: close both once their buffers are flushed.
            cast(asyncio.Transport, side.transport).close()
            if peer is not None:
                peer.close()
        elif peer is not None and peer.can_write_eof():
            peer.write_eof()

    def side_lost(self, side: _Side, exc: Exception | None) -> None:
        peer = side.peer
        if exc is not None:
            logger.debug("proxy %s: %s connection lost: %s", self.proxy.name, side.label, exc)
        if side is self.client and self.connecting is not None and not self.connecting.done():
            self.cutting = True
            self.connecting.cancel()
        if peer.transport is not None and not peer.lost:
            if self.cutting:
                peer.transport.abort()
            else:
                # Flush what the peer already has buffered, as a closing server would.
                peer.transport.close()
        self._check_closed()

    def cut(self) -> None:
        """Abort both connections at once, dropping whatever is buffered."""
        self.cutting = True
        if self.connecting is not None and not self.connecting.done():
            self.connecting.cancel()
        for side in (self.client, self.upstream):
            if side.transport is not None and not side.lost:
                side.transport.abort()
        self._check_closed()

    def _check_closed(self) -> None:
        if self.closed.done():
            return
        client_done = self.client.lost or self.client.transport is None
        upstream_done = self.upstream.lost or (
            self.upstream.transport is None and (self.connecting is None or self.connecting.done())
        )
        if client_done and upstream_done:
            self.proxy.links.discard(self)
            self.closed.set_result(None)


class _Proxy:
    """One named proxy: its settings, its listener when enabled, and its links."""

    def __init__(self, name: str, listen: str, upstream: str) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.links: set[_Link] = set()
        self._listener: socket.socket | None = None
        self._accepting: set[asyncio.Task[Any]] = set()
        self._generation = 0

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [],
        }

    def accepts(self, generation: int) -> bool:
        return self.enabled and generation == self._generation

    async def start(self) -> None:
        if self.enabled:
            return
        host, port = split_address(self.listen)
        upstream = split_address(self.upstream)
        try:
            sock = await _bind(host, port)
        except OSError as exc:
            raise ApiError(500, f"could not listen on {self.listen}: {exc}") from exc
        self._generation += 1
        generation = self._generation
        sock.setblocking(False)
        # Accept by hand rather than with loop.create_server(): on CPython 3.11, a
        # connection accepted just before Server.close() reaches Server._attach() after
        # the server lost its sockets; the assertion there leaves the accepted socket
        # open with no transport, and its client hangs until garbage collection.
        asyncio.get_running_loop().add_reader(
            sock.fileno(), self._accept_ready, sock, generation, upstream
        )
        self._listener = sock
        bound_host, bound_port = sock.getsockname()[:2]
        # Reporting the bound address means a later re-enable listens on the same port,
        # even when the proxy was created with port 0.
        self.listen = join_address(bound_host, bound_port)
        self.enabled = True
        logger.info("proxy %s: listening on %s -> %s", self.name, self.listen, self.upstream)

    def _accept_ready(
        self, sock: socket.socket, generation: int, upstream: tuple[str, int]
    ) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(64):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: keep serving others
                logger.warning("proxy %s: accept failed: %s", self.name, exc)
                return
            conn.setblocking(False)
            link = _Link(self, generation, upstream)
            task = loop.create_task(loop.connect_accepted_socket(link.client_side, conn))
            self._accepting.add(task)
            task.add_done_callback(functools.partial(self._accepted, conn=conn))

    def _accepted(self, task: asyncio.Task[Any], *, conn: socket.socket) -> None:
        self._accepting.discard(task)
        if task.cancelled() or task.exception() is not None:
            conn.close()

    async def stop(self) -> None:
        if not self.enabled:
            return
        self.enabled = False
        self._generation += 1
        if self._listener is not None:
            # Closing the listening socket refuses new connections before the API answers.
            asyncio.get_running_loop().remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
        links = list(self.links)
        for link in links:
            link.cut()
        if links:
            await asyncio.wait([link.closed for link in links], timeout=_CUT_TIMEOUT)
        logger.info("proxy %s: stopped, %d connection(s) cut", self.name, len(links))


async def _bind(host: str, port: int) -> socket.socket:
    # One socket on the first address only: with a name such as "localhost" and port 0,
    # asyncio's create_server would bind IPv4 and IPv6 to two different free ports.
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # Re-enabling rebinds the same port while cut connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def _field(body: dict[str, Any], key: str, kind: type, *, required: bool) -> Any:
    if key not in body:
        if required:
            raise ApiError(400, f"missing required field: {key}")
        return None
    value = body[key]
    if not isinstance(value, kind) or (kind is str and not value):
        expected = "true or false" if kind is bool else "a non-empty string"
        raise ApiError(400, f"bad request body: field {key!r} must be {expected}, got {value!r}")
    if key in ("listen", "upstream"):
        try:
            split_address(str(value))
        except ValueError as exc:
            raise ApiError(400, f"bad request body: field {key!r}: {exc}") from None
    return value


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise ApiError(400, f"bad request body: {exc}") from None


class _ProxySpec:
    """A validated proxy definition from a request body."""

    def __init__(self, body: object, *, where: str = "") -> None:
        if not isinstance(body, dict):
            raise ApiError(400, f"bad request body{where}: expected a JSON object")
        self.name: str = _field(body, "name", str, required=True)
        self.listen: str = _field(body, "listen", str, required=True)
        self.upstream: str = _field(body, "upstream", str, required=True)
        enabled = _field(body, "enabled", bool, required=False)
        self.enabled: bool = True if enabled is None else enabled


class ProxyApp:
    """The proxies of one server process and the API operations on them.

    Every coroutine here runs on the event loop; a lock serialises API operations so
    that one change finishes (connections cut, listener rebound) before the next starts.
    """

    def __init__(self) -> None:
        self._proxies: dict[str, _Proxy] = {}
        self._lock = asyncio.Lock()

    async def handle(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        """Answer one API request.

        :param method: the HTTP method.
        :param path: the request path, still percent-encoded.
        :param body: the request body.
        :returns: the HTTP status and the JSON value to send (``None`` for no body).
        :raises ApiError: for every request that fails.
        """
        parts = [urllib.parse.unquote(part) for part in path.strip("/").split("/")]
        async with self._lock:
            return await self._route(method, parts, body)

    async def _route(self, method: str, parts: list[str], body: bytes) -> tuple[int, object]:
        allowed: dict[str, Callable[[], Awaitable[tuple[int, object]]]]
        match parts:
            case ["version"]:
                allowed = {"GET": lambda: self._ok({"version": VERSION})}
            case ["proxies"]:
                allowed = {"GET": self._index, "POST": lambda: self._create(body)}
            case ["populate"]:
                allowed = {"POST": lambda: self._populate(body)}
            case ["reset"]:
                allowed = {"POST": self._reset}
            case ["proxies", name]:
                allowed = {
                    "GET": lambda: self._show(name),
                    "POST": lambda: self._update(name, body),
                    "PATCH": lambda: self._update(name, body),
                    "DELETE": lambda: self._delete(name),
                }
            case ["proxies", name, "toxics"]:
                allowed = {"GET": lambda: self._toxics(name), "POST": lambda: self._toxic(name)}
            case ["proxies", name, "toxics", _toxic]:
                missing = functools.partial(self._missing_toxic, name)
                allowed = dict.fromkeys(("GET", "POST", "PATCH", "DELETE"), missing)
            case _:
                raise ApiError(404, "404 page not found")
        handler = allowed.get(method)
        if handler is None:
            raise ApiError(405, f"method {method} not allowed here")
        return await handler()

    async def close(self) -> None:
        """Stop every proxy, cutting its connections."""
        async with self._lock:
            for proxy in self._proxies.values():
                await proxy.stop()

    def _get(self, name: str) -> _Proxy:
        proxy = self._proxies.get(name)
        if proxy is None:
            raise ApiError(404, "proxy not found")
        return proxy

    @staticmethod
    async def _ok(value: object, status: int = 200) -> tuple[int, object]:
        return status, value

    async def _index(self) -> tuple[int, object]:
        return 200, {name: proxy.to_json() for name, proxy in self._proxies.items()}

    async def _show(self, name: str) -> tuple[int, object]:
        return 200, self._get(name).to_json()

    async def _create(self, body: bytes) -> tuple[int, object]:
        spec = _ProxySpec(_decode(body))
        if spec.name in self._proxies:
            raise ApiError(409, "proxy already exists")
        proxy = _Proxy(spec.name, spec.listen, spec.upstream)
        if spec.enabled:
            await proxy.start()
        self._proxies[spec.name] = proxy
        return 201, proxy.to_json()

    async def _update(self, name: str, body: bytes) -> tuple[int, object]:
        proxy = self._get(name)
        data = _decode(body)
        if not isinstance(data, dict):
            raise ApiError(400, "bad request body: expected a JSON object")
        listen = _field(data, "listen", str, required=False) or proxy.listen
        upstream = _field(data, "upstream", str, required=False) or proxy.upstream
        enabled = _field(data, "enabled", bool, required=False)
        if enabled is None:
            enabled = proxy.enabled
        # As in Toxiproxy: a new address restarts the proxy, which cuts its connections
        # so that clients reconnect to the new upstream ("repointing" a service).
        if listen != proxy.listen or upstream != proxy.upstream:
            await proxy.stop()
            proxy.listen, proxy.upstream = listen, upstream
        if enabled and not proxy.enabled:
            await proxy.start()
        elif not enabled and proxy.enabled:
            await proxy.stop()
        return 200, proxy.to_json()

    async def _delete(self, name: str) -> tuple[int, object]:
        proxy = self._get(name)
        del self._proxies[name]
        await proxy.stop()
        return 204, None

    async def _populate(self, body: bytes) -> tuple[int, object]:
        data = _decode(body)
        if not isinstance(data, list):
            raise ApiError(400, "bad request body: expected a JSON list of proxies")
        # Validate everything before changing anything, so a bad entry leaves no half-applied state.
        specs = [_ProxySpec(item, where=f" at proxy {i}") for i, item in enumerate(data, 1)]
        names = [spec.name for spec in specs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ApiError(400, f"bad request body: duplicate proxy names {duplicates}")
        result = []
        for spec in specs:
            existing = self._proxies.get(spec.name)
            if (
                existing is not None
                and existing.listen == spec.listen
                and existing.upstream == spec.upstream
            ):
                result.append(existing.to_json())
                continue
            if existing is not None:
                await existing.stop()
                del self._proxies[spec.name]
            proxy = _Proxy(spec.name, spec.listen, spec.upstream)
            if spec.enabled:
                await proxy.start()
            self._proxies[spec.name] = proxy
            result.append(proxy.to_json())
        return 201, {"proxies": result}

    async def _reset(self) -> tuple[int, object]:
        for proxy in self._proxies.values():
            await proxy.start()
        return 204, None

    async def _toxics(self, name: str) -> tuple[int, object]:
        self._get(name)
        return 200, []

    async def _toxic(self, name: str) -> tuple[int, object]:
        self._get(name)
        raise ApiError(501, _TOXICS_UNSUPPORTED)

    async def _missing_toxic(self, name: str) -> tuple[int, object]:
        self._get(name)
        raise ApiError(404, "toxic not found")


class _ApiServer(http.server.ThreadingHTTPServer):
    def __init__(
        self, address: tuple[str, int], app: ProxyApp, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.app = app
        self.loop = loop
        super().__init__(address, _ApiHandler)

    def submit(self, coro: Coroutine[Any, Any, tuple[int, object]]) -> tuple[int, object]:
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:
            coro.close()
            raise ApiError(503, "the fault proxy is shutting down") from None
        try:
            return future.result(timeout=_API_TIMEOUT)
        except TimeoutError:
            future.cancel()
            raise ApiError(500, f"the change did not finish within {_API_TIMEOUT} s") from None


class _ApiHandler(http.server.BaseHTTPRequestHandler):
    server: _ApiServer
    protocol_version = "HTTP/1.1"
    server_version = f"pytest-drdrill-proxy/{__version__}"
    # A client that stalls mid-request must not hold a thread forever.
    timeout = 15

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "bad Content-Length header")
            return
        body = self.rfile.read(length) if length > 0 else b""
        try:
            # Same guard as Toxiproxy: a web page must not be able to drive a local proxy.
            if self.headers.get("User-Agent", "").startswith("Mozilla/"):
                raise ApiError(403, "User agent not allowed")
            path = urllib.parse.urlsplit(self.path).path
            status, value = self.server.submit(self.server.app.handle(self.command, path, body))
        except ApiError as exc:
            status, value = exc.status, exc.to_json()
        except Exception as exc:
            logger.exception("unexpected error answering %s %s", self.command, self.path)
            status, value = 500, ApiError(500, repr(exc)).to_json()
        self._send(status, value)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server answers malformed requests and unknown methods itself, in HTML;
        # clients of a Toxiproxy-style API expect the JSON error body instead.
        self.close_connection = True
        self._send(code, ApiError(code, message or explain or "bad request").to_json())

    def _send(self, status: int, value: object) -> None:
        self.send_response(status)
        if self.close_connection:
            self.send_header("Connection", "close")
        if status == 204:
            self.end_headers()
            return
        data = json.dumps(value).encode() + b"\n"
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("api %s: " + format, self.address_string(), *args)


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


def _process_stamp(pid: int) -> str | None:
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
    stamp = _process_stamp(pid)
    while stamp is not None and _process_stamp(pid) == stamp:
        await asyncio.sleep(_PARENT_POLL)
    logger.info("parent process %d is gone; shutting down", pid)
    stop.set()


async def serve(listen: str, ready_file: Path, parent_pid: int | None = None) -> int:
    """Serve the API and the proxies until SIGTERM/SIGINT or until the parent process dies.

    :param listen: ``host:port`` for the HTTP API; port 0 picks a free port.
    :param ready_file: where to write the API's bound ``host:port`` once it accepts requests.
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
    parser.add_argument(
        "--ready-file", type=Path, required=True, help="file to receive the API's host:port"
    )
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
