"""The fault proxy's data path: listeners, and client connections spliced to upstreams.

Each proxy listens on its address and forwards every accepted connection to its upstream.
Disabling it, or changing its address or upstream, closes the listener and cuts every
established connection, as Toxiproxy does.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from typing import Any, cast

from pytest_drdrill.proxy.client import join_address, split_address

logger = logging.getLogger("pytest_drdrill.proxy")

# How long stopping a proxy waits for aborted connections to report that they are closed.
_CUT_TIMEOUT = 1.0


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
