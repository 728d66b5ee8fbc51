"""Tests for the built-in fault proxy: its data path, its HTTP API, the client and the launcher."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import pytest_drdrill.proxy
from pytest_drdrill.errors import ProxyError
from pytest_drdrill.proxy import ProxyClient, ProxyInfo, ProxyServer, find_toxiproxy_server
from pytest_drdrill.proxy import api as api_module

SRC = Path(pytest_drdrill.proxy.__file__).resolve().parents[2]
TIMEOUT = 2.0


class Upstream:
    """A threaded TCP server on 127.0.0.1 that answers every chunk with ``prefix + chunk``.

    It closes a connection when the peer closes its side, so half-closes round-trip.
    """

    def __init__(self, prefix: bytes = b"") -> None:
        self.prefix = prefix
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.accepted = 0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._start(self._accept_loop)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._open)

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
            with self._lock:
                self.accepted += 1
                self._open.add(conn)
            self._start(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        try:
            while data := conn.recv(1 << 16):
                conn.sendall(self.prefix + data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(conn)
            conn.close()

    def close(self) -> None:
        # shutdown() wakes the threads blocked in accept() and recv(); close() alone does not.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(TIMEOUT)
            assert not thread.is_alive(), "an upstream thread did not stop"


@pytest.fixture(scope="module")
def proxy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    server = ProxyServer(tmp_path_factory.mktemp("proxy")).start()
    yield server
    server.stop()


@pytest.fixture
def client(proxy_server: ProxyServer) -> Iterator[ProxyClient]:
    client = proxy_server.client()
    yield client
    for name in client.proxies():
        client.delete(name)


@pytest.fixture
def upstreams() -> Iterator[Callable[..., Upstream]]:
    made: list[Upstream] = []

    def make(prefix: bytes = b"") -> Upstream:
        made.append(Upstream(prefix))
        return made[-1]

    yield make
    for upstream in made:
        upstream.close()


@pytest.fixture
def sockets() -> Iterator[Callable[[int], socket.socket]]:
    opened: list[socket.socket] = []

    def connect(port: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        opened.append(sock)
        return sock

    yield connect
    for sock in opened:
        sock.close()


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


def roundtrip(sock: socket.socket, data: bytes, expected: bytes) -> None:
    sock.sendall(data)
    assert recv_exactly(sock, len(expected)) == expected


def assert_cut(sock: socket.socket) -> None:
    """Assert the proxy closed this connection: a read gives EOF or a reset, not data."""
    sock.settimeout(0.5)
    try:
        assert sock.recv(1024) == b""
    except ConnectionResetError:
        pass


def assert_refused(port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def raw(url: str, method: str = "GET", body: object = None, **headers: str) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            payload = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        status = exc.code
    return status, json.loads(payload) if payload else None


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


def child_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }


# --- data path -------------------------------------------------------------------------------


def test_forwards_bytes_both_ways_and_half_close(client, upstreams, sockets):
    """Bytes reach the upstream and come back; a client's half-close reaches the upstream."""
    upstream = upstreams(b"echo:")
    proxy = client.create("db", listen="127.0.0.1:0", upstream=upstream.address)
    sock = sockets(proxy.port)
    roundtrip(sock, b"hello", b"echo:hello")
    sock.sendall(b"bye")
    sock.shutdown(socket.SHUT_WR)
    assert recv_all(sock) == b"echo:bye"
    assert wait_until(lambda: upstream.open_connections == 0)


def test_forwards_10_mb_intact(client, upstreams, sockets):
    """10 MB sent while reading the echo concurrently arrive back complete and in order."""
    upstream = upstreams()
    proxy = client.create("bulk", listen="127.0.0.1:0", upstream=upstream.address)
    payload = os.urandom(10 * 1024 * 1024)
    sock = sockets(proxy.port)

    def send() -> None:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        received = recv_all(sock)
    finally:
        sender.join(TIMEOUT)
    assert len(received) == len(payload)
    assert received == payload


def test_upstream_refused_closes_client(client, sockets):
    """When the upstream refuses, the proxy closes the client's connection at once."""
    proxy = client.create("dead", listen="127.0.0.1:0", upstream=f"127.0.0.1:{free_port()}")
    sock = sockets(proxy.port)
    assert_cut(sock)


# --- faults: disable, re-enable, repoint -------------------------------------------------------


def test_disable_cuts_connections_and_refuses_new_ones(client, upstreams, sockets):
    """enabled=false closes both sides of live connections and the listener before it returns."""
    upstream = upstreams(b"A:")
    proxy = client.create("svc", listen="127.0.0.1:0", upstream=upstream.address)
    sock = sockets(proxy.port)
    roundtrip(sock, b"1", b"A:1")
    assert upstream.open_connections == 1

    updated = client.update("svc", enabled=False)

    assert updated == ProxyInfo("svc", proxy.listen, upstream.address, enabled=False)
    assert_refused(proxy.port)
    assert_cut(sock)
    assert wait_until(lambda: upstream.open_connections == 0)
    assert client.get("svc").enabled is False


def test_reenable_listens_on_the_same_port(client, upstreams, sockets):
    """enabled=true after a disable accepts connections again on the same address."""
    upstream = upstreams(b"A:")
    proxy = client.create("svc", listen="127.0.0.1:0", upstream=upstream.address)
    client.update("svc", enabled=False)
    again = client.update("svc", enabled=True)
    assert again == proxy
    roundtrip(sockets(proxy.port), b"2", b"A:2")


def test_new_upstream_cuts_connections_and_routes_new_ones(client, upstreams, sockets):
    """Changing upstream closes live connections; new ones reach the new upstream."""
    first, second = upstreams(b"A:"), upstreams(b"B:")
    proxy = client.create("svc", listen="127.0.0.1:0", upstream=first.address)
    old = sockets(proxy.port)
    roundtrip(old, b"x", b"A:x")

    updated = client.update("svc", upstream=second.address)

    assert updated == ProxyInfo("svc", proxy.listen, second.address, enabled=True)
    assert_cut(old)
    assert wait_until(lambda: first.open_connections == 0)
    roundtrip(sockets(proxy.port), b"y", b"B:y")
    assert second.accepted == 1


def test_connections_racing_a_repoint_are_served_or_closed_never_left_hanging(client, upstreams):
    """Clients connecting while the upstream changes get an answer or a close, never silence.

    Regression: with asyncio's create_server on CPython 3.11, a connection accepted just
    before Server.close() stayed open with no upstream until garbage collection.
    """
    first, second = upstreams(b"A:"), upstreams(b"B:")
    proxy = client.create("svc", listen="127.0.0.1:0", upstream=first.address)
    stop = threading.Event()
    hung: list[float] = []
    served = 0

    def connect_in_a_loop() -> None:
        nonlocal served
        while not stop.is_set():
            started = time.monotonic()
            try:
                with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as sock:
                    sock.settimeout(2)
                    sock.sendall(b"x")
                    if sock.recv(3):
                        served += 1
            except TimeoutError:
                hung.append(time.monotonic() - started)
            except OSError:
                pass  # refused or cut by the repoint: an answer, not a hang

    worker = threading.Thread(target=connect_in_a_loop)
    worker.start()
    try:
        for i in range(150):
            client.update("svc", upstream=(second if i % 2 else first).address)
            time.sleep(0.005)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert hung == []
    assert served > 0


def test_new_listen_address_moves_the_listener(client, upstreams, sockets):
    """Changing listen closes the old port and serves on the new one."""
    upstream = upstreams(b"A:")
    proxy = client.create("svc", listen="127.0.0.1:0", upstream=upstream.address)
    old = sockets(proxy.port)
    roundtrip(old, b"x", b"A:x")
    moved = client.update("svc", listen="127.0.0.1:0")
    assert moved.port != proxy.port
    assert_cut(old)
    assert_refused(proxy.port)
    roundtrip(sockets(moved.port), b"y", b"A:y")


def test_update_of_disabled_proxy_keeps_it_down(client, upstreams):
    """A new upstream on a disabled proxy is stored without starting it (as in Toxiproxy)."""
    first, second = upstreams(), upstreams()
    proxy = client.create("svc", listen="127.0.0.1:0", upstream=first.address, enabled=False)
    assert proxy.enabled is False
    assert proxy.port == 0
    updated = client.update("svc", upstream=second.address)
    assert (updated.enabled, updated.upstream) == (False, second.address)


def test_reset_reenables_every_proxy(client, upstreams, sockets):
    """POST /reset brings every disabled proxy back up on its address."""
    upstream = upstreams(b"A:")
    one = client.create("one", listen="127.0.0.1:0", upstream=upstream.address)
    two = client.create("two", listen="127.0.0.1:0", upstream=upstream.address)
    client.update("one", enabled=False)
    client.update("two", enabled=False)
    client.reset()
    assert client.proxies() == {"one": one, "two": two}
    roundtrip(sockets(one.port), b"1", b"A:1")
    roundtrip(sockets(two.port), b"2", b"A:2")


def test_delete_closes_connections(client, upstreams, sockets):
    """Deleting a proxy cuts its connections and frees its port."""
    upstream = upstreams()
    proxy = client.create("gone", listen="127.0.0.1:0", upstream=upstream.address)
    sock = sockets(proxy.port)
    roundtrip(sock, b"z", b"z")
    client.delete("gone")
    assert_cut(sock)
    assert_refused(proxy.port)
    assert "gone" not in client.proxies()


# --- API ----------------------------------------------------------------------------------------


def test_version(client):
    """GET /version answers the built-in proxy's version."""
    assert client.version().endswith("+drdrill")


def test_create_get_list_delete(client, upstreams):
    """A created proxy reports its bound port and shows up in get/list until deleted."""
    upstream = upstreams()
    created = client.create("db", listen="127.0.0.1:0", upstream=upstream.address)
    assert created.name == "db"
    assert created.host == "127.0.0.1"
    assert created.port > 0
    assert created.listen == f"127.0.0.1:{created.port}"
    assert created.enabled is True
    assert client.get("db") == created
    assert client.proxies() == {"db": created}
    client.delete("db")
    assert client.proxies() == {}


def test_proxy_json_matches_toxiproxy(proxy_server, client, upstreams):
    """Proxy objects carry name, listen, upstream, enabled and an empty toxics list."""
    upstream = upstreams()
    proxy = client.create("db", listen="127.0.0.1:0", upstream=upstream.address)
    status, body = raw(f"{proxy_server.url}/proxies/db")
    assert status == 200
    assert body == {
        "name": "db",
        "listen": proxy.listen,
        "upstream": upstream.address,
        "enabled": True,
        "toxics": [],
    }
    assert raw(f"{proxy_server.url}/proxies/db/toxics") == (200, [])


def test_duplicate_name_is_409(proxy_server, client, upstreams):
    """Creating a proxy whose name exists answers 409 with Toxiproxy's error body."""
    upstream = upstreams()
    client.create("db", listen="127.0.0.1:0", upstream=upstream.address)
    with pytest.raises(ProxyError, match=r"HTTP 409: proxy already exists\. Hint: .*delete"):
        client.create("db", listen="127.0.0.1:0", upstream=upstream.address)
    body = {"name": "db", "listen": "127.0.0.1:0", "upstream": upstream.address}
    status, error = raw(f"{proxy_server.url}/proxies", "POST", body)
    assert (status, error) == (409, {"error": "proxy already exists", "status": 409})


def test_unknown_proxy_is_404(proxy_server, client):
    """Every operation on a proxy that does not exist answers 404 and names the proxy."""
    with pytest.raises(
        ProxyError, match=r"HTTP 404: proxy not found\. Hint: no proxy named 'nope'"
    ):
        client.get("nope")
    with pytest.raises(ProxyError, match="HTTP 404"):
        client.update("nope", enabled=False)
    with pytest.raises(ProxyError, match="HTTP 404"):
        client.delete("nope")
    status, error = raw(f"{proxy_server.url}/proxies/nope/toxics")
    assert (status, error) == (404, {"error": "proxy not found", "status": 404})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}, "missing required field: name"),
        ({"name": "x", "listen": "127.0.0.1:0"}, "missing required field: upstream"),
        ({"name": "x", "listen": "nowhere", "upstream": "127.0.0.1:1"}, "field 'listen'"),
        ({"name": "x", "listen": "127.0.0.1:0", "upstream": "h:1", "enabled": "no"}, "'enabled'"),
        (["not", "an", "object"], "expected a JSON object"),
    ],
)
def test_bad_create_body_is_400(proxy_server, client, body, message):
    """Invalid proxy definitions answer 400 with a message naming the problem."""
    status, error = raw(f"{proxy_server.url}/proxies", "POST", body)
    assert status == 400
    assert isinstance(error, dict)
    assert error["status"] == 400
    assert message in error["error"]
    assert client.proxies() == {}


def test_listen_address_in_use_is_500(client, upstreams):
    """A listen address that cannot be bound fails the create and leaves no proxy behind."""
    upstream = upstreams()
    with pytest.raises(ProxyError, match="HTTP 500: could not listen on"):
        client.create("busy", listen=upstream.address, upstream=upstream.address)
    assert client.proxies() == {}


def test_populate_creates_keeps_and_replaces(client, upstreams, sockets):
    """/populate keeps unchanged proxies running, replaces changed ones and creates new ones."""
    first, second = upstreams(b"A:"), upstreams(b"B:")
    keep = client.create("keep", listen="127.0.0.1:0", upstream=first.address)
    change = client.create("change", listen="127.0.0.1:0", upstream=first.address)
    kept_sock = sockets(keep.port)
    roundtrip(kept_sock, b"k", b"A:k")
    changed_sock = sockets(change.port)
    roundtrip(changed_sock, b"c", b"A:c")

    result = client.populate(
        [
            {"name": "keep", "listen": keep.listen, "upstream": first.address},
            {"name": "change", "listen": change.listen, "upstream": second.address},
            {"name": "new", "listen": "127.0.0.1:0", "upstream": second.address, "enabled": False},
        ]
    )

    assert [info.name for info in result] == ["keep", "change", "new"]
    assert result[0] == keep
    assert result[1] == ProxyInfo("change", change.listen, second.address, enabled=True)
    assert (result[2].upstream, result[2].enabled) == (second.address, False)
    assert client.proxies() == {info.name: info for info in result}
    roundtrip(kept_sock, b"k2", b"A:k2")
    assert_cut(changed_sock)
    roundtrip(sockets(change.port), b"c2", b"B:c2")


def test_populate_rejects_bad_input_without_changes(proxy_server, client, upstreams):
    """A /populate with one invalid entry or a duplicate name answers 400 and creates nothing."""
    upstream = upstreams()
    good = {"name": "good", "listen": "127.0.0.1:0", "upstream": upstream.address}
    with pytest.raises(ProxyError, match=r"HTTP 400: missing required field: upstream"):
        client.populate([good, {"name": "bad", "listen": "127.0.0.1:0"}])
    status, error = raw(f"{proxy_server.url}/populate", "POST", [good, good])
    assert status == 400
    assert isinstance(error, dict)
    assert "duplicate proxy names ['good']" in error["error"]
    assert client.proxies() == {}
    assert client.populate([]) == []


def test_unknown_routes_and_methods_answer_json(proxy_server):
    """Unknown paths, unknown methods and browser user agents get Toxiproxy-style JSON errors."""
    assert raw(f"{proxy_server.url}/nope")[0] == 404
    assert raw(f"{proxy_server.url}/proxies", "PUT", {}) == (
        501,
        {"error": "Unsupported method ('PUT')", "status": 501},
    )
    assert raw(f"{proxy_server.url}/reset", "GET")[0] == 405
    browser = {"User-Agent": "Mozilla/5.0"}
    assert raw(f"{proxy_server.url}/proxies", **browser)[0] == 403


# --- client ---------------------------------------------------------------------------------------


def test_client_reports_a_missing_server():
    """A client pointed at a port nobody serves says which URL and that the proxy is not running."""
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ProxyError, match=r"connection refused\. Hint: .*not running") as info:
        ProxyClient(url).proxies()
    assert url in str(info.value)


class _OldToxiproxy(http.server.BaseHTTPRequestHandler):
    """Canned answers in the shape of older Toxiproxy releases."""

    calls: list[tuple[str, str, object]] = []
    version = b"2.1.4\n"

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._reply(200, self.version)

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        sent = json.loads(self.rfile.read(length))
        self.calls.append((self.command, self.path, sent))
        if self.path == "/populate":
            self._reply(201, b'{"proxies": null}')
        else:
            proxy = {"name": "my db", "listen": "[::1]:2000", "upstream": "db:5432"}
            self._reply(200, json.dumps({**proxy, **sent, "toxics": []}).encode())

    def log_message(self, format, *args):
        pass


@pytest.fixture
def old_toxiproxy() -> Iterator[ProxyClient]:
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _OldToxiproxy)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield ProxyClient(f"127.0.0.1:{httpd.server_address[1]}")
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.mark.parametrize(
    "body", [b"2.1.4\n", b'{"version": "2.1.4"}\n', b'{"version": 2.1.4}\n'], ids=repr
)
def test_client_reads_every_version_format(old_toxiproxy, monkeypatch, body):
    """/version as plain text, as JSON and as the invalid JSON of one Toxiproxy release."""
    monkeypatch.setattr(_OldToxiproxy, "version", body)
    assert old_toxiproxy.version() == "2.1.4"


def test_client_understands_older_toxiproxy_answers(old_toxiproxy):
    """A null populate list, IPv6 listen addresses and POST updates work."""
    assert old_toxiproxy.populate([]) == []
    info = old_toxiproxy.update("my db", enabled=False)
    assert info == ProxyInfo("my db", "[::1]:2000", "db:5432", enabled=False)
    assert (info.host, info.port) == ("::1", 2000)
    assert _OldToxiproxy.calls[-1] == ("POST", "/proxies/my%20db", {"enabled": False})


# --- launcher ---------------------------------------------------------------------------------


def test_stop_leaves_no_process(tmp_path):
    """stop() ends the process with exit code 0, is idempotent, and the client then says so."""
    with ProxyServer(tmp_path, env={"DRDRILL_TEST_MARK": "x"}) as server:
        client = server.client()
        assert client.version()
        pid = server.pid
        assert server.ready_file.exists()
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"DRDRILL_TEST_MARK=x" in environ
        assert f"DRDRILL_PROXY_TAG={server.tag}".encode() in environ
        assert f"PATH={os.environ['PATH']}".encode() in environ
    assert server.returncode == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    server.stop()
    assert not server.ready_file.exists()
    with pytest.raises(ProxyError, match="not running"):
        client.version()


def test_exits_when_parent_process_dies(tmp_path):
    """With --parent-pid the proxy exits by itself soon after that process dies (even unreaped)."""
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ready = tmp_path / "ready"
    command = [sys.executable, "-m", "pytest_drdrill.proxy", "--listen", "127.0.0.1:0"]
    command += ["--ready-file", str(ready), "--parent-pid", str(parent.pid)]
    with (tmp_path / "log").open("wb") as log:
        proxy = subprocess.Popen(command, env=child_env(), stdout=log, stderr=log)
    try:
        assert wait_until(ready.exists, timeout=10), (tmp_path / "log").read_text()
        assert ProxyClient(ready.read_text()).version()
        assert proxy.poll() is None
        # Not reaped yet: the dead parent stays a zombie, which must count as gone.
        parent.kill()
        started = time.monotonic()
        assert proxy.wait(timeout=3) == 0
        assert time.monotonic() - started < 1.5
    finally:
        for process in (parent, proxy):
            process.kill()
            process.wait()


def test_start_reports_early_exit_with_log(tmp_path):
    """If the child exits before it is ready, start() raises with its exit code and log tail."""
    fake = tmp_path / "fake-python"
    fake.write_text("#!/bin/sh\necho 'boom: no such module' >&2\nexit 3\n")
    fake.chmod(0o755)
    server = ProxyServer(tmp_path / "work", python=str(fake))
    with pytest.raises(ProxyError, match="exited with code 3 before it was ready") as info:
        server.start()
    assert "boom: no such module" in "\n".join(info.value.__notes__)
    assert server.returncode == 3


def test_start_reports_a_missing_interpreter(tmp_path):
    """An interpreter that does not exist gives a ProxyError naming it."""
    server = ProxyServer(tmp_path, python=str(tmp_path / "no-python"))
    with pytest.raises(ProxyError, match="could not run the fault proxy with .*no-python"):
        server.start()
    server.stop()


def test_start_timeout_kills_the_child(tmp_path):
    """A child that never becomes ready is killed, and start() raises with the timeout."""
    fake = tmp_path / "fake-python"
    fake.write_text("#!/bin/sh\necho 'stuck' >&2\nexec sleep 30\n")
    fake.chmod(0o755)
    server = ProxyServer(tmp_path / "work", python=str(fake), ready_timeout=0.3)
    with pytest.raises(ProxyError, match="did not write its ready file .* within 0.3 s") as info:
        server.start()
    assert "stuck" in "\n".join(info.value.__notes__)
    assert server.returncode == -9
    server.stop()


# --- launcher: toxiproxy-server in place of the built-in proxy ---------------------------------

# A stand-in for toxiproxy-server: it takes Toxiproxy's flags and runs the built-in proxy
# with the same meaning, so ProxyServer's toxiproxy-server path runs for real.
FAKE_TOXIPROXY = """#!/bin/sh
{prelude}
while [ $# -gt 0 ]; do
  case "$1" in
    -host) host=$2; shift 2 ;;
    -port) port=$2; shift 2 ;;
    *) echo "unexpected argument $1" >&2; exit 2 ;;
  esac
done
exec {python} -m pytest_drdrill.proxy --listen "$host:$port"
"""


def fake_toxiproxy(directory: Path, prelude: str = "") -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / "toxiproxy-server"
    path.write_text(FAKE_TOXIPROXY.format(prelude=prelude, python=sys.executable))
    path.chmod(0o755)
    return path


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rpartition(")")[2].split()
            if fields[0] != "Z" and int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return pids


def test_find_toxiproxy_server_looks_on_path(tmp_path, monkeypatch):
    """find_toxiproxy_server() returns the executable found on PATH, or None."""
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert find_toxiproxy_server() is None
    fake = fake_toxiproxy(tmp_path / "bin")
    assert find_toxiproxy_server() == str(fake)
    assert find_toxiproxy_server(path=str(tmp_path)) is None


def test_runs_toxiproxy_server_in_place_of_the_builtin(tmp_path, monkeypatch):
    """With toxiproxy_server, ProxyServer runs it with -host/-port, tagged, and stops it."""
    monkeypatch.setenv("PATH", os.pathsep.join([str(tmp_path / "bin"), os.environ["PATH"]]))
    fake_toxiproxy(tmp_path / "bin")
    binary = find_toxiproxy_server()
    assert binary is not None
    server = ProxyServer(tmp_path / "work", env={"DRDRILL_TEST_MARK": "x"}, toxiproxy_server=binary)
    with server:
        client = server.client()
        assert client.version().endswith("+drdrill")
        members = group_pids(server.pid)
        assert len(members) == 2, "the supervisor and the server"
        for pid in members:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert b"DRDRILL_TEST_MARK=x" in environ
            assert f"DRDRILL_PROXY_TAG={server.tag}".encode() in environ
        port = server.url.rpartition(":")[2]
        cmdlines = [
            Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1] for pid in members
        ]
        assert [binary, "-host", "127.0.0.1", "-port", port] in [c[-5:] for c in cmdlines]
        assert ["--listen", f"127.0.0.1:{port}"] in [c[-2:] for c in cmdlines]
    assert server.returncode == 0
    assert group_pids(server.pid) == []
    with pytest.raises(ProxyError, match="not running"):
        client.version()


def test_toxiproxy_server_exits_with_its_parent(tmp_path):
    """A toxiproxy-server started by a process that is killed exits soon after it."""
    fake = fake_toxiproxy(tmp_path / "bin")
    script = (
        "import sys, time; from pathlib import Path; "
        "from pytest_drdrill.proxy import ProxyServer; "
        f"s = ProxyServer(Path({str(tmp_path / 'work')!r}), toxiproxy_server={str(fake)!r}); "
        "s.start(); print(s.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], env=child_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        pgid = int(parent.stdout.readline())
        assert len(group_pids(pgid)) == 2
        parent.kill()
        parent.wait()
        assert wait_until(lambda: group_pids(pgid) == [], timeout=3)
    finally:
        parent.kill()
        parent.wait()


def test_toxiproxy_server_that_fails_is_reported_with_its_log(tmp_path):
    """A toxiproxy-server that exits before answering gives a ProxyError with its log tail."""
    fake = fake_toxiproxy(tmp_path / "bin", prelude="echo 'boom: bad flags' >&2; exit 3")
    server = ProxyServer(tmp_path / "work", toxiproxy_server=fake)
    with pytest.raises(ProxyError, match="toxiproxy-server exited with code 3") as info:
        server.start()
    assert "is a working toxiproxy-server" in str(info.value)
    assert "boom: bad flags" in "\n".join(info.value.__notes__)


def test_toxiproxy_server_that_loses_its_port_is_started_again(tmp_path):
    """When the picked port is taken before toxiproxy-server binds it, another port is tried."""
    marker = tmp_path / "failed-once"
    prelude = (
        f"if [ ! -e {marker} ]; then touch {marker}; "
        "echo 'listen tcp: bind: address already in use' >&2; exit 1; fi"
    )
    fake = fake_toxiproxy(tmp_path / "bin", prelude=prelude)
    with ProxyServer(tmp_path / "work", toxiproxy_server=fake) as server:
        assert server.client().version()
    assert marker.exists()


# --- flow control (in process, to look at the proxy's own buffers) -------------------------------


def test_flow_control_bounds_proxy_buffers(upstreams):
    """A client that stops reading makes the proxy stop reading too instead of buffering."""
    upstream = upstreams()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    app = api_module.ProxyApp()

    def call(method: str, path: str, body: object = None) -> tuple[int, object]:
        data = json.dumps(body).encode() if body is not None else b""
        return asyncio.run_coroutine_threadsafe(app.handle(method, path, data), loop).result(5)

    def proxy_buffered() -> int:
        async def measure() -> int:
            links = app._proxies["slow"].links
            sides = [side for link in links for side in (link.client, link.upstream)]
            return sum(s.transport.get_write_buffer_size() for s in sides if s.transport)

        return asyncio.run_coroutine_threadsafe(measure(), loop).result(5)

    spec = {"name": "slow", "listen": "127.0.0.1:0", "upstream": upstream.address}
    _, created = call("POST", "/proxies", spec)
    assert isinstance(created, dict)
    port = int(str(created["listen"]).rpartition(":")[2])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(0.2)
    chunk = b"x" * (1 << 20)
    sent = 0
    peak = 0
    try:
        # Push data without reading the echo until the whole path pushes back.
        while sent < 64 * len(chunk):
            try:
                sent += sock.send(chunk)
            except TimeoutError:
                break
            peak = max(peak, proxy_buffered())
        peak = max(peak, proxy_buffered())
        assert sent < 64 * len(chunk), "the proxy never pushed back"
        assert peak < 2 * 1024 * 1024
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(TIMEOUT)
        assert len(recv_all(sock)) == sent
    finally:
        sock.close()
        call("DELETE", "/proxies/slow")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        loop.close()


class _RecordingTransport:
    """Just enough of an asyncio transport to watch what the proxy does to it."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.reading = True
        self.eof_written = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True


def test_bytes_and_eof_sent_before_the_upstream_connects_are_held_then_forwarded():
    """Client bytes that arrive while the upstream still connects reach it, in order, with EOF.

    CPython before 3.11.4 (Debian 12 ships 3.11.2) starts reading a new connection even when
    connection_made paused it, so such bytes do arrive early there.
    """
    from pytest_drdrill.proxy import forwarder

    async def scenario() -> tuple[_RecordingTransport, _RecordingTransport]:
        proxy = forwarder._Proxy("p", "127.0.0.1:0", "127.0.0.1:1")
        link = forwarder._Link(proxy, 0, ("127.0.0.1", 1))
        client, upstream = _RecordingTransport(), _RecordingTransport()
        link.client.transport = client  # type: ignore[assignment]
        link.client.data_received(b"startup ")
        link.client.data_received(b"packet")
        assert client.reading is False, "reading must pause while there is nowhere to write"
        link.side_eof(link.client)
        link.upstream.transport = upstream  # type: ignore[assignment]
        link.side_made(link.upstream)
        return client, upstream

    client, upstream = asyncio.run(scenario())
    assert b"".join(upstream.written) == b"startup packet"
    assert upstream.eof_written
    assert client.reading
