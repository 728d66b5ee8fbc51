"""The fault proxy's data path: listeners, and client connections spliced to upstreams.

Each proxy listens on its address and forwards every accepted connection to its upstream.
Disabling it, or changing its address or upstream, closes the listener and cuts every
established connection, as Toxiproxy does.

A direction of a connection without toxics writes each chunk straight to the other
socket. A direction with toxics routes its chunks through a
:class:`~pytest_drdrill.proxy.pipeline.Pipeline`; adding or removing a toxic changes the
pipelines of established connections too, and a direction whose last toxic is removed
returns to the fast path once its pipeline is empty.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import struct
from typing import Any, cast

from pytest_drdrill.proxy.addresses import join_address, split_address
from pytest_drdrill.proxy.pipeline import Pipeline
from pytest_drdrill.proxy.toxics import CLOSE, DATA, EOF, Item, Toxic

logger = logging.getLogger("pytest_drdrill.proxy")

# How long stopping a proxy waits for aborted connections to report that they are closed.
_CUT_TIMEOUT = 1.0
# SO_LINGER on, with a zero timeout: close() then sends a TCP RST instead of a FIN.
_LINGER_RESET = struct.pack("ii", 1, 0)


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
    """One of the two TCP connections of a :class:`_Link`.

    ``pipeline`` holds the toxics of the bytes read from this side, if there are any.
    """

    def __init__(self, link: _Link, label: str) -> None:
        self.link = link
        self.label = label
        self.transport: asyncio.Transport | None = None
        self.peer: _Side = self
        self.eof = False
        self.eof_delivered = False
        self.lost = False
        self.pending: list[bytes] = []
        self.pipeline: Pipeline | None = None
        # Reasons to stop reading: the peer's write buffer is full, or our pipeline is.
        self.peer_full = False
        self.pipeline_full = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.link.side_made(self)

    def data_received(self, data: bytes) -> None:
        pipeline = self.pipeline
        if pipeline is not None:
            pipeline.feed(DATA, data)
            return
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
        self.peer.peer_full = True
        self.peer.update_reading()

    def resume_writing(self) -> None:
        self.peer.peer_full = False
        self.peer.update_reading()

    def update_reading(self) -> None:
        """Read from this side unless something downstream of it is full or not there yet."""
        transport = self.transport
        if transport is None or self.lost:
            return
        peer = self.peer
        if self.peer_full or self.pipeline_full or peer.transport is None or peer.lost:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def pipeline_throttle(self) -> None:
        pipeline = self.pipeline
        self.pipeline_full = pipeline is not None and pipeline.full
        self.update_reading()


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
            # Toxicity is decided here, per connection, as Toxiproxy does when a link starts.
            for toxic in self.proxy.toxics.values():
                self.add_toxic(toxic)
            self.connecting = asyncio.get_running_loop().create_task(self._connect())
            self.connecting.add_done_callback(lambda _task: self._check_closed())
        elif self.cutting:
            transport.abort()
        else:
            if self.client.pending:
                transport.write(b"".join(self.client.pending))
                self.client.pending.clear()
            pipeline = self.client.pipeline
            if pipeline is not None:
                pipeline.flush()
                self._settle(self.client)
            if self.client.eof_delivered and transport.can_write_eof():
                transport.write_eof()
            self.client.update_reading()

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
        if side.pipeline is not None:
            side.pipeline.feed(EOF)
        else:
            self.deliver_eof(side)

    def deliver_eof(self, side: _Side) -> None:
        """Pass on the end of what ``side`` sends: half-close its peer, or close both."""
        if side.eof_delivered:
            return
        side.eof_delivered = True
        peer = side.peer.transport
        if side.peer.eof_delivered:
            # Both directions are finished: close both once their buffers are flushed.
            if side.transport is not None:
                side.transport.close()
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
        # Nothing can be written to this side any more.
        self._drop_pipeline(peer)
        peer.update_reading()
        if side.pipeline is not None and not self.cutting:
            # What the toxics still hold reaches the peer first, then the close does.
            side.pipeline.feed(CLOSE)
        else:
            self._drop_pipeline(side)
        if side.pipeline is None and peer.transport is not None and not peer.lost:
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
            self._drop_pipeline(side)
            if side.transport is not None and not side.lost:
                side.transport.abort()
        self._check_closed()

    def reset(self) -> None:
        """Abort both connections with a TCP RST, as Toxiproxy's reset_peer does."""
        for side in (self.client, self.upstream):
            if side.transport is not None and not side.lost:
                sock = side.transport.get_extra_info("socket")
                if sock is not None:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                    except OSError as exc:
                        logger.debug("proxy %s: SO_LINGER failed: %s", self.proxy.name, exc)
        self.cut()

    # --- toxics -------------------------------------------------------------------------

    def add_toxic(self, toxic: Toxic) -> None:
        """Append a toxic to the pipeline of its direction, creating the pipeline if needed."""
        side = self.client if toxic.stream == "upstream" else self.upstream
        if self.cutting or side.lost or side.peer.lost:
            return
        if side.pipeline is None:
            side.pipeline = Pipeline(
                functools.partial(self._deliver, side),
                functools.partial(self._writable, side),
                side.pipeline_throttle,
            )
        side.pipeline.add(toxic)

    def update_toxic(self, toxic: Toxic) -> None:
        """Give a toxic new settings on this connection."""
        side = self.client if toxic.stream == "upstream" else self.upstream
        if side.pipeline is not None:
            side.pipeline.update(toxic)

    def remove_toxic(self, toxic: Toxic) -> None:
        """Take a toxic off this connection; its direction goes back to the fast path if idle."""
        side = self.client if toxic.stream == "upstream" else self.upstream
        if side.pipeline is not None:
            side.pipeline.remove(toxic.name)
            self._settle(side)

    def _writable(self, side: _Side) -> bool:
        peer = side.peer
        return peer.transport is not None and not peer.lost

    def _deliver(self, side: _Side, item: Item) -> None:
        peer = cast(asyncio.Transport, side.peer.transport)
        if item.kind == DATA:
            peer.write(item.data)
        elif item.kind == EOF:
            self.deliver_eof(side)
        elif item.kind == CLOSE:
            # The connection ends here: closing the peer (after its buffer is flushed)
            # makes its connection_lost close this side in turn. The finished pipeline
            # stays, so that nothing read meanwhile slips through on the fast path.
            peer.close()
        else:
            self.reset()

    def _settle(self, side: _Side) -> None:
        pipeline = side.pipeline
        if pipeline is not None and pipeline.idle:
            self._drop_pipeline(side)
            side.update_reading()

    def _drop_pipeline(self, side: _Side) -> None:
        if side.pipeline is not None:
            side.pipeline.discard()
            side.pipeline = None
            side.pipeline_full = False

    def _check_closed(self) -> None:
        if self.closed.done():
            return
        client_done = self.client.lost or self.client.transport is None
        upstream_done = self.upstream.lost or (
            self.upstream.transport is None and (self.connecting is None or self.connecting.done())
        )
        if client_done and upstream_done:
            self._drop_pipeline(self.client)
            self._drop_pipeline(self.upstream)
            self.proxy.links.discard(self)
            self.closed.set_result(None)


class _Proxy:
    """One named proxy: its settings, its toxics, its listener when enabled, and its links."""

    def __init__(self, name: str, listen: str, upstream: str) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.links: set[_Link] = set()
        self.toxics: dict[str, Toxic] = {}
        self._listener: socket.socket | None = None
        self._accepting: set[asyncio.Task[Any]] = set()
        self._generation = 0

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxics_json(),
        }

    def toxics_json(self) -> list[dict[str, object]]:
        """The toxics in Toxiproxy's order: upstream ones first, each stream in order added."""
        ordered = sorted(self.toxics.values(), key=lambda toxic: toxic.stream != "upstream")
        return [toxic.to_json() for toxic in ordered]

    def add_toxic(self, toxic: Toxic) -> None:
        """Add a toxic, to new connections and to every established one."""
        self.toxics[toxic.name] = toxic
        for link in list(self.links):
            link.add_toxic(toxic)

    def update_toxic(self, toxic: Toxic) -> None:
        """Replace the toxic of the same name, on established connections too."""
        self.toxics[toxic.name] = toxic
        for link in list(self.links):
            link.update_toxic(toxic)

    def remove_toxic(self, name: str) -> None:
        """Remove a toxic, from established connections too."""
        toxic = self.toxics.pop(name)
        for link in list(self.links):
            link.remove_toxic(toxic)

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
