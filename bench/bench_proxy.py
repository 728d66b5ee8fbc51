"""Measure what the built-in fault proxy adds: round-trip latency and bulk throughput.

Run from the repository root::

    PYTHONPATH=src python bench/bench_proxy.py

The upstreams (an echo server and a byte sink) run in a child process and the proxy in
another, so this process only plays the client. Three routes are measured: direct, through
a proxy without toxics (the fast path), and through a proxy with one downstream latency
toxic (5 ms, no jitter), whose added latency is compared with the configured one. Each
figure is the median of 3 repeats.
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
#: The latency toxic of the third route, in milliseconds.
TOXIC_MS = 5


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


def latency(port: int, rounds: int, size: int = 64) -> tuple[float, float, float]:
    """Return p50, p95 and p99 round-trip times in microseconds over one connection."""
    message = b"x" * size
    samples = []
    warmup = min(100, rounds)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(rounds + warmup):
            start = timing.monotonic()
            sock.sendall(message)
            _recv_exactly(sock, size)
            if i >= warmup:  # the first rounds warm up caches and the TCP windows
                samples.append((timing.monotonic() - start) * 1e6)
    samples.sort()
    return tuple(samples[min(len(samples) - 1, int(len(samples) * q))] for q in (0.5, 0.95, 0.99))


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
    """Print latency and throughput: direct, through the proxy, and through a latency toxic."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--toxic-rounds", type=int, default=200)
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    upstreams = multiprocessing.Process(target=_upstreams, args=(child,), daemon=True)
    upstreams.start()
    echo_port, sink_port = parent.recv()
    with tempfile.TemporaryDirectory() as workdir, ProxyServer(Path(workdir)) as server:
        client = server.client()
        echo_to, sink_to = f"127.0.0.1:{echo_port}", f"127.0.0.1:{sink_port}"
        echo = client.create("echo", listen="127.0.0.1:0", upstream=echo_to)
        sink = client.create("sink", listen="127.0.0.1:0", upstream=sink_to)
        slow_echo = client.create("slow-echo", listen="127.0.0.1:0", upstream=echo_to)
        slow_sink = client.create("slow-sink", listen="127.0.0.1:0", upstream=sink_to)
        # Downstream delays the echo's answers; upstream delays the bytes sent to the sink.
        client.add_toxic("slow-echo", "latency", attributes={"latency": TOXIC_MS})
        client.add_toxic(
            "slow-sink", "latency", stream="upstream", attributes={"latency": TOXIC_MS}
        )
        routes = {
            "direct": (echo_port, sink_port, args.rounds),
            "proxy": (echo.port, sink.port, args.rounds),
            f"{TOXIC_MS}ms": (slow_echo.port, slow_sink.port, args.toxic_rounds),
        }
        keys = ("p50", "p95", "p99", "mbps")
        results: dict[str, dict[str, list[float]]] = {
            route: {key: [] for key in keys} for route in routes
        }
        for _ in range(args.repeats):
            for route, (echo_port_, sink_port_, rounds) in routes.items():
                for key, value in zip(keys[:3], latency(echo_port_, rounds), strict=True):
                    results[route][key].append(value)
                results[route]["mbps"].append(throughput(sink_port_, args.megabytes * MB))
    parent.send("stop")
    upstreams.join(5)

    med = {
        route: {key: statistics.median(values) for key, values in figures.items()}
        for route, figures in results.items()
    }
    print(
        f"64 B round trips over one connection ({args.rounds}; {args.toxic_rounds} through "
        f"the toxic); {args.megabytes} MB bulk; median of {args.repeats} repeats; "
        f"{multiprocessing.cpu_count()} CPUs"
    )
    print(f"{'':10}{'p50 µs':>10}{'p95 µs':>10}{'p99 µs':>10}{'MB/s':>10}")
    for route, figures in med.items():
        row = "".join(f"{figures[key]:>10.1f}" for key in keys[:3])
        print(f"{route:10}{row}{figures['mbps']:>10.0f}")
    direct = med["direct"]
    for route, label in (("proxy", "added"), (f"{TOXIC_MS}ms", f"+{TOXIC_MS}ms")):
        added = "".join(f"{med[route][key] - direct[key]:>10.1f}" for key in keys[:3])
        ratio = med[route]["mbps"] / direct["mbps"]
        print(f"{label:10}{added}{ratio:>9.0%} of direct")
    configured = TOXIC_MS * 1000
    over = med[f"{TOXIC_MS}ms"]["p50"] - direct["p50"] - configured
    print(
        f"latency toxic: configured {configured} µs, added {configured + over:.0f} µs at p50 "
        f"({over:+.0f} µs, {over / configured:+.1%})"
    )


if __name__ == "__main__":
    main()
