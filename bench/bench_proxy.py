"""Measure what the built-in fault proxy adds: round-trip latency and bulk throughput.

Run from the repository root::

    PYTHONPATH=src python bench/bench_proxy.py

The upstreams (an echo server and a byte sink) run in a child process and the proxy in
another, so this process only plays the client. Each figure is the median of 3 repeats.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import statistics
import tempfile
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from pytest_drdrill import timing
from pytest_drdrill.proxy import ProxyServer

MB = 1_000_000


def _echo(conn: socket.socket) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def _sink(conn: socket.socket) -> None:
    buffer = bytearray(1 << 20)
    total = 0
    with conn:
        while count := conn.recv_into(buffer):
            total += count
        conn.sendall(total.to_bytes(8, "big"))


def _serve(listener: socket.socket, handler: Callable[[socket.socket], None]) -> None:
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handler, args=(conn,), daemon=True).start()


def _upstreams(pipe: Connection) -> None:
    echo = socket.create_server(("127.0.0.1", 0))
    sink = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_serve, args=(echo, _echo), daemon=True).start()
    threading.Thread(target=_serve, args=(sink, _sink), daemon=True).start()
    pipe.send((echo.getsockname()[1], sink.getsockname()[1]))
    pipe.recv()


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed mid-message")
        data += chunk
    return data


def latency(port: int, rounds: int, size: int = 64) -> tuple[float, float]:
    """Return p50 and p99 round-trip times in microseconds over one connection."""
    message = b"x" * size
    samples = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(rounds + 100):
            start = timing.monotonic()
            sock.sendall(message)
            _recv_exactly(sock, size)
            if i >= 100:  # the first 100 warm up caches and the TCP windows
                samples.append((timing.monotonic() - start) * 1e6)
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99) - 1]


def throughput(port: int, total: int) -> float:
    """Return MB/s for sending ``total`` bytes to the sink, counted until it confirms them."""
    chunk = memoryview(bytes(1 << 20))
    start = timing.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sent = 0
        while sent < total:
            piece = chunk[: min(len(chunk), total - sent)]
            sock.sendall(piece)
            sent += len(piece)
        sock.shutdown(socket.SHUT_WR)
        received = int.from_bytes(_recv_exactly(sock, 8), "big")
    elapsed = timing.monotonic() - start
    if received != total:
        raise AssertionError(f"sink counted {received} bytes, expected {total}")
    return total / MB / elapsed


def main() -> None:
    """Print latency and throughput, direct and through the proxy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    upstreams = multiprocessing.Process(target=_upstreams, args=(child,), daemon=True)
    upstreams.start()
    echo_port, sink_port = parent.recv()
    with tempfile.TemporaryDirectory() as workdir, ProxyServer(Path(workdir)) as server:
        client = server.client()
        echo = client.create("echo", listen="127.0.0.1:0", upstream=f"127.0.0.1:{echo_port}")
        sink = client.create("sink", listen="127.0.0.1:0", upstream=f"127.0.0.1:{sink_port}")
        routes = {"direct": (echo_port, sink_port), "proxy": (echo.port, sink.port)}
        results: dict[str, dict[str, list[float]]] = {
            route: {"p50": [], "p99": [], "mbps": []} for route in routes
        }
        for _ in range(args.repeats):
            for route, (echo_to, sink_to) in routes.items():
                p50, p99 = latency(echo_to, args.rounds)
                results[route]["p50"].append(p50)
                results[route]["p99"].append(p99)
                results[route]["mbps"].append(throughput(sink_to, args.megabytes * MB))
    parent.send("stop")
    upstreams.join(5)

    med = {
        route: {key: statistics.median(values) for key, values in figures.items()}
        for route, figures in results.items()
    }
    print(
        f"{args.rounds} round trips of 64 B over one connection; {args.megabytes} MB bulk; "
        f"median of {args.repeats} repeats; {multiprocessing.cpu_count()} CPUs"
    )
    print(f"{'':8}{'p50 µs':>10}{'p99 µs':>10}{'MB/s':>10}")
    for route, figures in med.items():
        print(f"{route:8}{figures['p50']:>10.1f}{figures['p99']:>10.1f}{figures['mbps']:>10.0f}")
    added50 = med["proxy"]["p50"] - med["direct"]["p50"]
    added99 = med["proxy"]["p99"] - med["direct"]["p99"]
    ratio = med["proxy"]["mbps"] / med["direct"]["mbps"]
    print(f"added   {added50:>10.1f}{added99:>10.1f}{ratio:>9.0%} of direct")


if __name__ == "__main__":
    main()
