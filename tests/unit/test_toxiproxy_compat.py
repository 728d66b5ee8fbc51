"""The fault proxy driven by an independent client: the ``toxiproxy-python`` package, unmodified.

That client keeps the API's host and port as class attributes of ``APIConsumer``; every
test sets them through ``monkeypatch`` so they are restored afterwards. It updates
proxies with POST, which Toxiproxy still accepts. The same tests run against a real
``toxiproxy-server`` when one is on PATH.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from pytest_drdrill.proxy import ProxyServer, find_toxiproxy_server
from pytest_drdrill.proxy.client import split_address

TIMEOUT = 3.0
SLACK = 0.5


@pytest.fixture(scope="module")
def echo_address() -> Iterator[str]:
    """An echo server on 127.0.0.1, for the whole module."""
    listener = socket.create_server(("127.0.0.1", 0))
    conns: list[socket.socket] = []

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while data := conn.recv(1 << 16):
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conns.append(conn)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    for conn in conns:
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
    thread.join(TIMEOUT)


@pytest.fixture(scope="module", params=["built-in", "toxiproxy-server"])
def proxy_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyServer]:
    """The built-in proxy, and a real ``toxiproxy-server`` if one is installed."""
    binary = None
    if request.param == "toxiproxy-server":
        binary = find_toxiproxy_server()
        if binary is None:
            pytest.skip("toxiproxy-server is not on PATH")
    with ProxyServer(tmp_path_factory.mktemp("proxy"), toxiproxy_server=binary) as server:
        yield server


@pytest.fixture
def toxiproxy(proxy_server: ProxyServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Toxiproxy]:
    host, port = split_address(proxy_server.url.removeprefix("http://"))
    monkeypatch.setattr(APIConsumer, "host", host)
    monkeypatch.setattr(APIConsumer, "port", port)
    server = Toxiproxy()
    yield server
    server.destroy_all()


def connect(listen: str) -> socket.socket:
    host, port = split_address(listen)
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def roundtrip(sock: socket.socket, data: bytes = b"ping") -> float:
    started = time.monotonic()
    sock.sendall(data)
    received = b""
    while len(received) < len(data):
        chunk = sock.recv(len(data) - len(received))
        assert chunk, "connection closed mid-answer"
        received += chunk
    assert received == data
    return time.monotonic() - started


def assert_refused(listen: str) -> None:
    with pytest.raises(ConnectionRefusedError):
        connect(listen).close()


def assert_cut(sock: socket.socket) -> None:
    sock.settimeout(TIMEOUT)
    try:
        assert sock.recv(1024) == b""
    except ConnectionResetError:
        pass


def test_version_and_running(toxiproxy):
    """The client sees a running server and reads its version."""
    assert toxiproxy.running() is True
    # Toxiproxy up to 2.6 answers plain text, later releases and the built-in proxy JSON.
    assert toxiproxy.version().strip()


def test_create_list_get_destroy(toxiproxy, echo_address):
    """Proxies created by the client forward bytes, are listed and found, and are destroyed."""
    proxy = toxiproxy.create(upstream=echo_address, name="db")
    assert (proxy.name, proxy.upstream, proxy.enabled) == ("db", echo_address, True)
    assert split_address(proxy.listen)[1] > 0
    listed = toxiproxy.proxies()
    assert list(listed) == ["db"]
    assert (listed["db"].listen, listed["db"].upstream) == (proxy.listen, echo_address)
    assert toxiproxy.get_proxy("db").listen == proxy.listen
    with connect(proxy.listen) as sock:
        assert roundtrip(sock) < SLACK
    assert proxy.destroy() is True
    assert toxiproxy.proxies() == {}
    assert toxiproxy.get_proxy("db") is None
    assert_refused(proxy.listen)


def test_disable_and_enable(toxiproxy, echo_address):
    """disable() refuses new connections and cuts open ones; enable() and down() restore them."""
    proxy = toxiproxy.create(upstream=echo_address, name="db")
    sock = connect(proxy.listen)
    roundtrip(sock)
    proxy.disable()
    assert toxiproxy.get_proxy("db").enabled is False
    assert_refused(proxy.listen)
    assert_cut(sock)
    sock.close()
    proxy.enable()
    with connect(proxy.listen) as sock:
        roundtrip(sock)
    with proxy.down():
        assert_refused(proxy.listen)
    with connect(proxy.listen) as sock:
        roundtrip(sock)


def test_latency_toxic_delays_round_trips_until_removed(toxiproxy, echo_address):
    """A latency toxic added by the client delays round trips; removing it ends the delay."""
    proxy = toxiproxy.create(upstream=echo_address, name="db")
    proxy.add_toxic(type="latency", attributes={"latency": 150})
    toxics = proxy.toxics()
    assert list(toxics) == ["latency_downstream"]
    toxic = toxics["latency_downstream"]
    assert (toxic.type, toxic.stream, toxic.toxicity) == ("latency", "downstream", 1.0)
    assert toxic.attributes == {"latency": 150, "jitter": 0}
    assert proxy.get_toxic("latency_downstream").name == "latency_downstream"
    with connect(proxy.listen) as sock:
        assert roundtrip(sock) >= 0.15
        assert proxy.destroy_toxic("latency_downstream") is True
        assert proxy.toxics() == {}
        assert roundtrip(sock) < SLACK


def test_toxics_with_name_stream_and_toxicity(toxiproxy, echo_address):
    """Named upstream toxics with a toxicity are stored as sent; toxicity 0 never applies."""
    proxy = toxiproxy.create(upstream=echo_address, name="db")
    proxy.add_toxic(
        type="latency", name="slow_up", stream="upstream", toxicity=0, attributes={"latency": 500}
    )
    toxic = proxy.get_toxic("slow_up")
    assert (toxic.type, toxic.stream, toxic.toxicity) == ("latency", "upstream", 0)
    with connect(proxy.listen) as sock:
        assert roundtrip(sock) < SLACK


def test_timeout_toxic_stalls_an_established_connection(toxiproxy, echo_address):
    """A timeout toxic added while a connection is open stalls it; removing it closes it."""
    proxy = toxiproxy.create(upstream=echo_address, name="db")
    with connect(proxy.listen) as sock:
        roundtrip(sock)
        proxy.add_toxic(type="timeout", attributes={"timeout": 0})
        sock.sendall(b"stalled")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(1024)
        proxy.destroy_toxic("timeout_downstream")
        assert_cut(sock)


def test_populate(toxiproxy, echo_address):
    """The client's populate() creates missing proxies; the server's /populate answers 201."""
    created = toxiproxy.populate(
        [
            {"name": "one", "upstream": echo_address, "listen": "127.0.0.1:0"},
            {"name": "two", "upstream": echo_address, "listen": "127.0.0.1:0"},
        ]
    )
    assert sorted(proxy.name for proxy in created) == ["one", "two"]
    assert sorted(toxiproxy.proxies()) == ["one", "two"]
    listen = toxiproxy.get_proxy("one").listen
    assert toxiproxy.populate([{"name": "one", "upstream": echo_address, "listen": listen}]) == []
    response = APIConsumer.post(
        "/populate", json=[{"name": "three", "upstream": echo_address, "listen": "127.0.0.1:0"}]
    )
    assert response.status_code == 201
    assert [proxy["name"] for proxy in response.json()["proxies"]] == ["three"]
    with connect(toxiproxy.get_proxy("three").listen) as sock:
        roundtrip(sock)


def test_reset_enables_proxies_and_removes_toxics(toxiproxy, echo_address):
    """reset() re-enables every proxy and removes every toxic."""
    proxy = toxiproxy.create(upstream=echo_address, name="db")
    proxy.add_toxic(type="latency", attributes={"latency": 1000})
    proxy.disable()
    assert toxiproxy.reset() is True
    assert toxiproxy.get_proxy("db").enabled is True
    assert proxy.toxics() == {}
    with connect(proxy.listen) as sock:
        assert roundtrip(sock) < SLACK


def test_errors_map_to_the_clients_exceptions(toxiproxy, echo_address):
    """409, 404 and 400 answers raise ProxyExists, NotFound and InvalidToxic."""
    proxy = toxiproxy.create(upstream=echo_address, name="db")
    with pytest.raises(ProxyExists):
        toxiproxy.create(upstream=echo_address, name="db")
    with pytest.raises(ProxyExists):
        APIConsumer.post(
            "/proxies", json={"name": "db", "upstream": echo_address, "listen": "127.0.0.1:0"}
        )
    with pytest.raises(NotFound):
        APIConsumer.get("/proxies/nope")
    with pytest.raises(NotFound):
        proxy.destroy_toxic("ghost")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="no_such_toxic")
    proxy.add_toxic(type="latency")
    with pytest.raises(ProxyExists):
        proxy.add_toxic(type="latency")
