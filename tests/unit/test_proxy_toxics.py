"""Tests for the built-in fault proxy's toxics: their API, and what they do to real bytes.

Timing assertions are one-sided ("at least the configured delay") with loose upper bounds,
so a loaded machine makes them slower, never flaky.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from pytest_drdrill.errors import ProxyError
from pytest_drdrill.proxy import ProxyClient, ProxyServer, ToxicInfo, forwarder
from pytest_drdrill.proxy import api as api_module
from pytest_drdrill.proxy.pipeline import Pipeline
from pytest_drdrill.proxy.toxics import Toxic

TIMEOUT = 3.0
# What a round trip over loopback may take on a busy machine, on top of any toxic.
SLACK = 0.5


class Upstream:
    """A threaded TCP server on 127.0.0.1 that echoes what it reads.

    It sends ``greeting`` first on every connection, records when each chunk arrived,
    and closes a connection when the peer closes its side.
    """

    def __init__(self, greeting: bytes = b"") -> None:
        self.greeting = greeting
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.arrivals: list[tuple[float, bytes]] = []
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._start(self._accept_loop)

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            self._start(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.greeting:
                conn.sendall(self.greeting)
            while data := conn.recv(1 << 16):
                self.arrivals.append((time.monotonic(), data))
                conn.sendall(data)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(TIMEOUT)


@pytest.fixture(scope="module")
def proxy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    with ProxyServer(tmp_path_factory.mktemp("proxy")) as server:
        yield server


@pytest.fixture
def client(proxy_server: ProxyServer) -> Iterator[ProxyClient]:
    client = proxy_server.client(timeout=TIMEOUT)
    yield client
    for name in client.proxies():
        client.delete(name)


@pytest.fixture
def upstreams() -> Iterator[Callable[..., Upstream]]:
    made: list[Upstream] = []

    def make(greeting: bytes = b"") -> Upstream:
        made.append(Upstream(greeting))
        return made[-1]

    yield make
    for upstream in made:
        upstream.close()


@pytest.fixture
def sockets() -> Iterator[Callable[[int], socket.socket]]:
    opened: list[socket.socket] = []

    def connect(port: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        opened.append(sock)
        return sock

    yield connect
    for sock in opened:
        sock.close()


@pytest.fixture
def echo(client, upstreams, sockets) -> Callable[[], socket.socket]:
    """A proxy ``echo`` in front of an echo server; calling it opens a connection."""
    upstream = upstreams()
    info = client.create("echo", listen="127.0.0.1:0", upstream=upstream.address)
    return lambda: sockets(info.port)


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            break
        chunks += chunk
    return bytes(chunks)


def recv_all(sock: socket.socket) -> bytes:
    chunks = bytearray()
    while chunk := sock.recv(1 << 20):
        chunks += chunk
    return bytes(chunks)


def roundtrip(sock: socket.socket, data: bytes = b"ping") -> float:
    """Send ``data`` through the echo and return the seconds until it is back."""
    started = time.monotonic()
    sock.sendall(data)
    assert recv_exactly(sock, len(data)) == data
    return time.monotonic() - started


def wait_closed(sock: socket.socket, timeout: float = TIMEOUT) -> float:
    """Return the seconds until the proxy closes ``sock`` (EOF or reset), reading nothing."""
    started = time.monotonic()
    sock.settimeout(timeout)
    try:
        assert sock.recv(1024) == b""
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def assert_open(sock: socket.socket, seconds: float) -> None:
    """Assert nothing arrives on ``sock`` and it stays open for ``seconds``."""
    sock.settimeout(seconds)
    with pytest.raises(TimeoutError):
        sock.recv(1024)


def raw(url: str, method: str = "GET", body: object = None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            payload, status = response.read(), response.status
    except urllib.error.HTTPError as exc:
        payload, status = exc.read(), exc.code
    return status, json.loads(payload) if payload else None


# --- API ----------------------------------------------------------------------------------


def test_toxic_json_matches_toxiproxy(proxy_server, client, echo):
    """Toxics are created with 200 and listed in Toxiproxy's shape, upstream ones first."""
    url = f"{proxy_server.url}/proxies/echo/toxics"
    status, created = raw(url, "POST", {"type": "latency", "attributes": {"latency": 100}})
    assert status == 200
    assert created == {
        "attributes": {"latency": 100, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
    }
    body = {"type": "bandwidth", "stream": "upstream", "toxicity": 0.5, "name": "slow"}
    assert raw(url, "POST", body)[0] == 200
    slow = {
        "attributes": {"rate": 0},
        "name": "slow",
        "type": "bandwidth",
        "stream": "upstream",
        "toxicity": 0.5,
    }
    assert raw(url) == (200, [slow, created])
    assert raw(f"{url}/slow") == (200, slow)
    status, proxy = raw(f"{proxy_server.url}/proxies/echo")
    assert isinstance(proxy, dict)
    assert proxy["toxics"] == [slow, created]


def test_client_adds_lists_updates_and_removes_toxics(client, echo):
    """ProxyClient's toxic methods round-trip through the API."""
    added = client.add_toxic("echo", "latency", attributes={"latency": 10, "jitter": 2})
    attributes = {"latency": 10, "jitter": 2}
    assert added == ToxicInfo("latency_downstream", "latency", "downstream", 1.0, attributes)
    timeout = client.add_toxic(
        "echo", "timeout", name="stall", stream="upstream", toxicity=0, attributes={}
    )
    assert client.toxics("echo") == [timeout, added]
    assert client.toxic("echo", "stall") == timeout
    updated = client.update_toxic("echo", "latency_downstream", attributes={"jitter": 0})
    assert dict(updated.attributes) == {"latency": 10, "jitter": 0}
    assert client.update_toxic("echo", "stall", toxicity=0.25).toxicity == 0.25
    client.remove_toxic("echo", "stall")
    assert client.toxics("echo") == [updated]
    assert {updated, updated} == {updated}, "ToxicInfo is hashable"
    with pytest.raises(TypeError):
        updated.attributes["latency"] = 1  # type: ignore[index]


def test_toxic_update_accepts_post_and_patch(proxy_server, client, echo):
    """A toxic is updated by POST (Toxiproxy before 2.6) and by PATCH (2.6 and later)."""
    client.add_toxic("echo", "latency", attributes={"latency": 10})
    url = f"{proxy_server.url}/proxies/echo/toxics/latency_downstream"
    status, body = raw(url, "PATCH", {"attributes": {"latency": 20}})
    assert status == 200
    assert isinstance(body, dict)
    assert body["attributes"] == {"latency": 20, "jitter": 0}
    status, body = raw(url, "POST", {"toxicity": 0.5})
    assert isinstance(body, dict)
    assert (status, body["toxicity"], body["attributes"]["latency"]) == (200, 0.5, 20)
    assert raw(url, "DELETE") == (204, None)
    assert raw(url) == (404, {"error": "toxic not found", "status": 404})


def test_proxy_update_accepts_patch(proxy_server, client, echo):
    """PATCH /proxies/{name} updates a proxy as POST does (Toxiproxy 2.6+)."""
    status, body = raw(f"{proxy_server.url}/proxies/echo", "PATCH", {"enabled": False})
    assert status == 200
    assert isinstance(body, dict)
    assert body["enabled"] is False
    assert client.get("echo").enabled is False


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"type": "lag"}, ["invalid toxic type", "'type'", "latency", "limit_data"]),
        ({"type": ["latency"]}, ["invalid toxic type", "'type'"]),
        ({"type": "latency", "stream": "sideways"}, ["stream", "upstream or downstream"]),
        ({"type": "latency", "toxicity": 1.5}, ["'toxicity'", "from 0 to 1", "1.5"]),
        ({"type": "latency", "toxicity": "all"}, ["'toxicity'", "from 0 to 1"]),
        ({"type": "latency", "attributes": {"delay": 5}}, ["'delay'", "latency (ms), jitter"]),
        ({"type": "latency", "attributes": {"latency": -5}}, ["'latency'", ">= 0", "-5"]),
        ({"type": "bandwidth", "attributes": {"rate": 1.5}}, ["'rate'", "whole number"]),
        ({"type": "timeout", "attributes": {"timeout": True}}, ["'timeout'", "whole number"]),
        ({"type": "timeout", "attributes": [1]}, ["'attributes'", "timeout (ms)"]),
        ({"type": "slicer", "attributes": {"average_size": 4, "size_variation": 4}}, ["below"]),
        ({"type": "latency", "name": 7}, ["'name'", "string"]),
        (["latency"], ["expected a JSON object"]),
    ],
    ids=lambda value: json.dumps(value)[:40],
)
def test_invalid_toxic_is_400_naming_the_field(proxy_server, client, echo, body, expected):
    """Invalid toxic definitions answer 400 with a message naming the field and its values."""
    status, error = raw(f"{proxy_server.url}/proxies/echo/toxics", "POST", body)
    assert status == 400
    assert isinstance(error, dict)
    assert error["status"] == 400
    for text in expected:
        assert text in error["error"]
    assert client.toxics("echo") == []


def test_invalid_toxic_update_is_400_and_changes_nothing(proxy_server, client, echo):
    """An update that changes the stream or has a bad value answers 400 and keeps the toxic."""
    toxic = client.add_toxic("echo", "latency", attributes={"latency": 10})
    url = f"{proxy_server.url}/proxies/echo/toxics/latency_downstream"
    status, error = raw(url, "PATCH", {"stream": "upstream"})
    assert status == 400
    assert isinstance(error, dict)
    assert "'stream'" in error["error"]
    assert "cannot be changed" in error["error"]
    with pytest.raises(ProxyError, match=r"HTTP 400: .*'jitter'.*Hint: check the toxic's"):
        client.update_toxic("echo", "latency_downstream", attributes={"jitter": -1})
    assert client.toxics("echo") == [toxic]


def test_unknown_proxy_or_toxic_is_404_and_duplicate_is_409(proxy_server, client, echo):
    """Missing proxies and toxics answer 404, a taken toxic name 409, each with a hint."""
    with pytest.raises(ProxyError, match=r"HTTP 404: proxy not found\. Hint: no proxy named"):
        client.add_toxic("nope", "latency")
    with pytest.raises(ProxyError, match="HTTP 404: proxy not found"):
        client.toxics("nope")
    with pytest.raises(ProxyError, match=r"HTTP 404: toxic not found\. Hint: .*toxics\('echo'\)"):
        client.remove_toxic("echo", "ghost")
    with pytest.raises(ProxyError, match="HTTP 404: toxic not found"):
        client.update_toxic("echo", "ghost", toxicity=0.5)
    with pytest.raises(ProxyError, match="HTTP 404: toxic not found"):
        client.toxic("echo", "ghost")
    client.add_toxic("echo", "latency")
    with pytest.raises(ProxyError, match=r"HTTP 409: toxic already exists\. Hint: .*remove_toxic"):
        client.add_toxic("echo", "latency")
    status, error = raw(f"{proxy_server.url}/proxies/echo/toxics", "POST", {"type": "latency"})
    assert (status, error) == (409, {"error": "toxic already exists", "status": 409})


def test_reset_removes_toxics_and_reenables(client, echo):
    """POST /reset removes every toxic and enables every proxy."""
    client.add_toxic("echo", "latency", attributes={"latency": 500})
    client.add_toxic("echo", "timeout", stream="upstream")
    client.update("echo", enabled=False)
    client.reset()
    assert client.toxics("echo") == []
    assert client.get("echo").enabled is True
    assert roundtrip(echo()) < SLACK


def test_toxics_survive_disable_and_die_with_the_proxy(client, echo, upstreams):
    """Toxics stay on a disabled and re-enabled proxy; a new proxy of the same name has none."""
    client.add_toxic("echo", "latency", attributes={"latency": 150})
    client.update("echo", enabled=False)
    client.update("echo", enabled=True)
    assert roundtrip(echo()) >= 0.15
    client.delete("echo")
    client.create("echo", listen="127.0.0.1:0", upstream=upstreams().address)
    assert client.toxics("echo") == []


# --- what each toxic does to the bytes ----------------------------------------------------


def test_latency_delays_each_round_trip(client, echo):
    """A downstream latency of 100 ms delays every answer by at least 100 ms."""
    client.add_toxic("echo", "latency", attributes={"latency": 100})
    sock = echo()
    for _ in range(3):
        assert 0.1 <= roundtrip(sock) < 0.1 + SLACK


def test_latency_jitter_stays_within_bounds_and_keeps_order(client, echo):
    """Each delay stays within latency ± jitter, and jitter never reorders bytes."""
    client.add_toxic("echo", "latency", attributes={"latency": 60, "jitter": 40})
    sock = echo()
    for _ in range(5):
        assert 0.02 <= roundtrip(sock) < 0.1 + SLACK
    payload = os.urandom(256 * 1024)
    sender = threading.Thread(
        target=lambda: [sock.sendall(payload[i : i + 1024]) for i in range(0, len(payload), 1024)]
    )
    sender.start()
    try:
        assert recv_exactly(sock, len(payload)) == payload
    finally:
        sender.join(TIMEOUT)


def test_two_latencies_add_up(client, echo):
    """Two latency toxics on one stream add their delays, as in Toxiproxy."""
    client.add_toxic("echo", "latency", name="a", attributes={"latency": 80})
    client.add_toxic("echo", "latency", name="b", attributes={"latency": 80})
    assert roundtrip(echo()) >= 0.16


def test_latency_direction(client, upstreams, sockets):
    """Upstream latency delays what the server receives; downstream what the client receives."""
    upstream = upstreams(greeting=b"hello")
    info = client.create("greet", listen="127.0.0.1:0", upstream=upstream.address)
    client.add_toxic("greet", "latency", stream="upstream", attributes={"latency": 200})
    started = time.monotonic()
    sock = sockets(info.port)
    assert recv_exactly(sock, 5) == b"hello"
    assert time.monotonic() - started < 0.2, "upstream latency must not delay the greeting"
    sent = time.monotonic()
    sock.sendall(b"up")
    assert recv_exactly(sock, 2) == b"up"
    assert upstream.arrivals[-1][0] - sent >= 0.2

    client.remove_toxic("greet", "latency_upstream")
    client.add_toxic("greet", "latency", stream="downstream", attributes={"latency": 200})
    started = time.monotonic()
    sock = sockets(info.port)
    assert recv_exactly(sock, 5) == b"hello"
    assert time.monotonic() - started >= 0.2
    sent = time.monotonic()
    sock.sendall(b"down")
    assert recv_exactly(sock, 4) == b"down"
    assert upstream.arrivals[-1][0] - sent < 0.2, "downstream latency must not delay requests"


def test_bandwidth_limits_the_rate(client, echo):
    """A 200 KB/s downstream limit makes 60 KB take at least about 0.3 s."""
    client.add_toxic("echo", "bandwidth", attributes={"rate": 200})
    sock = echo()
    assert 0.25 <= roundtrip(sock, b"b" * 60_000) < 0.3 + 2 * SLACK


def test_timeout_stalls_then_closes(client, echo):
    """timeout=300 passes no data and closes the connection after 300 ms."""
    client.add_toxic("echo", "timeout", stream="upstream", attributes={"timeout": 300})
    sock = echo()
    sock.sendall(b"lost")
    assert 0.25 <= wait_closed(sock) < 0.3 + 2 * SLACK


def test_timeout_zero_holds_until_removed(client, echo):
    """timeout=0 holds the connection open without data; removing it closes the connection."""
    client.add_toxic("echo", "timeout", attributes={"timeout": 0})
    sock = echo()
    sock.sendall(b"held")
    assert_open(sock, 0.5)
    client.remove_toxic("echo", "timeout_downstream")
    assert wait_closed(sock) < SLACK


def test_reset_peer_resets_the_connection(client, echo):
    """reset_peer ends the connection with a TCP RST (ECONNRESET) after its timeout."""
    client.add_toxic("echo", "reset_peer", stream="upstream", attributes={"timeout": 100})
    sock = echo()
    started = time.monotonic()
    sock.sendall(b"x")
    sock.settimeout(TIMEOUT)
    with pytest.raises(ConnectionResetError):
        sock.recv(1024)
    assert time.monotonic() - started >= 0.09


def test_slow_close_delays_only_the_close(client, echo):
    """slow_close passes data at once and the server's close only after its delay."""
    client.add_toxic("echo", "slow_close", attributes={"delay": 300})
    sock = echo()
    started = time.monotonic()
    sock.sendall(b"bye")
    sock.shutdown(socket.SHUT_WR)
    assert recv_exactly(sock, 3) == b"bye"
    assert time.monotonic() - started < 0.3
    assert sock.recv(10) == b""
    assert time.monotonic() - started >= 0.3


def test_limit_data_truncates_then_closes(client, echo):
    """limit_data passes exactly its byte budget, then closes the connection."""
    client.add_toxic("echo", "limit_data", attributes={"bytes": 10})
    sock = echo()
    sock.sendall(b"0123456789abcdef")
    assert recv_all(sock) == b"0123456789"


def test_limit_data_lets_nothing_through_after_the_limit(client, upstreams, sockets):
    """Bytes sent after limit_data closed the connection never reach the server."""
    upstream = upstreams()
    info = client.create("limited", listen="127.0.0.1:0", upstream=upstream.address)
    client.add_toxic("limited", "limit_data", stream="upstream", attributes={"bytes": 4})
    sock = sockets(info.port)
    sock.sendall(b"abcd")
    time.sleep(0.05)
    with contextlib.suppress(OSError):
        sock.sendall(b"efgh")
    with contextlib.suppress(ConnectionResetError):
        recv_all(sock)
    time.sleep(0.05)
    assert b"".join(data for _, data in upstream.arrivals) == b"abcd"


def test_slicer_keeps_bytes_intact(client, echo):
    """The slicer cuts data into small pieces that arrive complete and in order."""
    client.add_toxic(
        "echo", "slicer", attributes={"average_size": 100, "size_variation": 50, "delay": 100}
    )
    payload = os.urandom(20_000)
    assert roundtrip(echo(), payload) < SLACK + 1


def test_toxicity_zero_never_applies(client, echo):
    """A toxic with toxicity 0 leaves every connection alone."""
    client.add_toxic("echo", "latency", toxicity=0, attributes={"latency": 1000})
    for _ in range(5):
        assert roundtrip(echo()) < SLACK


def test_toxics_apply_to_established_connections(client, echo):
    """A toxic added or removed later changes connections that are already open."""
    sock = echo()
    assert roundtrip(sock) < SLACK
    client.add_toxic("echo", "latency", attributes={"latency": 150})
    assert roundtrip(sock) >= 0.15
    client.remove_toxic("echo", "latency_downstream")
    assert roundtrip(sock) < SLACK
    # A partition-like stall on a long-lived connection.
    client.add_toxic("echo", "timeout", stream="upstream", attributes={"timeout": 0})
    sock.sendall(b"stalled")
    assert_open(sock, 0.3)
    client.remove_toxic("echo", "timeout_upstream")
    assert wait_closed(sock) < SLACK


def test_removing_latency_passes_held_bytes_at_once(client, echo):
    """Bytes held by a latency toxic go on at once when it is removed."""
    client.add_toxic("echo", "latency", attributes={"latency": 5000})
    sock = echo()
    started = time.monotonic()
    sock.sendall(b"waiting")
    time.sleep(0.1)
    client.remove_toxic("echo", "latency_downstream")
    assert recv_exactly(sock, 7) == b"waiting"
    assert time.monotonic() - started < 0.1 + SLACK


def test_client_close_waits_for_held_bytes(client, upstreams, sockets):
    """A client that closes right after sending still gets its bytes to the server, late."""
    upstream = upstreams()
    info = client.create("late", listen="127.0.0.1:0", upstream=upstream.address)
    client.add_toxic("late", "latency", stream="upstream", attributes={"latency": 150})
    sock = sockets(info.port)
    sent = time.monotonic()
    sock.sendall(b"last words")
    sock.close()
    deadline = time.monotonic() + TIMEOUT
    while not upstream.arrivals and time.monotonic() < deadline:
        time.sleep(0.01)
    assert b"".join(data for _, data in upstream.arrivals) == b"last words"
    assert upstream.arrivals[0][0] - sent >= 0.15


# --- in process: the pipeline's own state -----------------------------------------------------


@pytest.fixture
def app_loop() -> Iterator[tuple[api_module.ProxyApp, Callable[..., object]]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    app = api_module.ProxyApp()

    def run(coro_or_fn: object) -> object:
        async def call() -> object:
            return coro_or_fn() if callable(coro_or_fn) else await coro_or_fn  # type: ignore[misc]

        return asyncio.run_coroutine_threadsafe(call(), loop).result(5)

    yield app, run
    run(app.close())
    loop.call_soon_threadsafe(loop.stop)
    thread.join(TIMEOUT)
    loop.close()


def test_slow_toxic_pushes_back_and_last_removal_restores_fast_path(app_loop, upstreams):
    """A slow toxic bounds what the proxy holds; without toxics a link has no pipeline again."""
    app, run = app_loop
    upstream = upstreams()

    def call(method: str, path: str, body: object = None) -> object:
        data = json.dumps(body).encode() if body is not None else b""
        return run(app.handle(method, path, data))

    spec = {"name": "slow", "listen": "127.0.0.1:0", "upstream": upstream.address}
    _, created = call("POST", "/proxies", spec)  # type: ignore[misc]
    port = int(str(created["listen"]).rpartition(":")[2])
    call(
        "POST",
        "/proxies/slow/toxics",
        {"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 50}},
    )
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 16)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(0.2)

    def pipelines() -> list[Pipeline | None]:
        links = app._proxies["slow"].links
        return [link.client.pipeline for link in links]

    chunk = b"x" * (1 << 20)
    sent = 0
    try:
        while sent < 32 * len(chunk):
            try:
                sent += sock.send(chunk)
            except TimeoutError:
                break
        assert sent < 32 * len(chunk), "the proxy never pushed back"
        held = run(lambda: [p.buffered for p in pipelines() if p is not None])
        assert held and max(held) <= Pipeline.HIGH_WATER + (1 << 20)  # type: ignore[operator]
        call("DELETE", "/proxies/slow/toxics/bandwidth_upstream")
        assert run(pipelines) == [None]
    finally:
        sock.close()


class _Recorder:
    """Just enough of an asyncio transport to watch what the proxy writes and closes."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False
        self.reading = True

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def test_nothing_passes_a_connection_that_a_toxic_ended():
    """Once limit_data has closed the upstream, later client bytes are dropped, not forwarded."""

    async def scenario() -> _Recorder:
        proxy = forwarder._Proxy("p", "127.0.0.1:0", "127.0.0.1:1")
        link = forwarder._Link(proxy, 0, ("127.0.0.1", 1))
        client, upstream = _Recorder(), _Recorder()
        link.client.transport = client  # type: ignore[assignment]
        link.upstream.transport = upstream  # type: ignore[assignment]
        link.add_toxic(Toxic("cap", "limit_data", "upstream", 1.0, {"bytes": 4}))
        for chunk in (b"ab", b"cdef", b"gh"):
            link.client.data_received(chunk)
        return upstream

    upstream = asyncio.run(scenario())
    assert upstream.written == [b"ab", b"cd"]
    assert upstream.closed
