"""Benchmark: throughput of the encrypted backup stream against the unencrypted baseline.

Streams of generated data (never held in memory whole) go through ``copy_stream`` (the
unencrypted baseline: copy + SHA-256), ``encrypt_stream`` and ``decrypt_stream``, either
to a discarding sink (CPU only) or to a temporary file (with the page cache's writes).
Each figure is MB/s (10^6 bytes of plaintext per second) over several runs, median and
p95 (the p95 of times, so the slow end), and the encrypted/unencrypted ratio of medians.
Process CPU seconds per GB are printed too: on a loaded machine the wall-clock ratio
falls because encryption runs one SHA-256 on a second core.

    python bench/bench_backup_stream.py [--size-mb 512] [--runs 5] [--chunk-kib 1024]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _streams import copy_stream

from pytest_drdrill import timing
from pytest_drdrill.backup.keys import generate_key
from pytest_drdrill.backup.stream import decrypt_stream, encrypt_stream


class Generated:
    """``size`` bytes of a repeated random block, made on demand."""

    def __init__(self, size: int, block: bytes) -> None:
        self.left = size
        self.block = block

    def read(self, size: int = -1) -> bytes:
        take = min(self.left, size if size > 0 else len(self.block))
        self.left -= take
        if take == len(self.block):
            return self.block
        reps, rest = divmod(take, len(self.block))
        return self.block * reps + self.block[:rest]


class Discard:
    def write(self, data: bytes) -> int:
        return len(data)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(runs: int, size: int, job: Callable[[], object]) -> tuple[list[float], float]:
    times, cpu = [], 0.0
    for _ in range(runs):
        c0 = time.process_time()
        t0 = timing.monotonic()
        job()
        times.append(timing.monotonic() - t0)
        cpu += time.process_time() - c0
    return times, cpu / runs / (size / 1e9)


def line(label: str, size: int, times: list[float], cpu_per_gb: float) -> float:
    median = size / 1e6 / statistics.median(times)
    slow = size / 1e6 / pct(times, 0.95)
    print(
        f"  {label:<24} median {median:6.0f} MB/s  p95 {slow:6.0f} MB/s  cpu {cpu_per_gb:5.2f} s/GB"
    )
    return median


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chunk-kib", type=int, default=1024)
    args = parser.parse_args()
    size = args.size_mb << 20
    chunk = args.chunk_kib << 10
    key = generate_key()
    block = os.urandom(chunk)
    print(
        f"{args.size_mb} MiB stream, {args.chunk_kib} KiB chunks, {args.runs} runs, "
        f"{os.cpu_count()} CPUs"
    )

    print("memory only (generated source, discarding sink):")
    copy = line(
        "copy_stream (baseline)",
        size,
        *measure(
            args.runs,
            size,
            lambda: copy_stream(Generated(size, block), Discard(), chunk_size=chunk),
        ),
    )
    enc = line(
        "encrypt_stream",
        size,
        *measure(
            args.runs,
            size,
            lambda: encrypt_stream(Generated(size, block), Discard(), key, chunk_size=chunk),
        ),
    )
    print(f"  encrypted/unencrypted: {enc / copy:.0%}")

    with tempfile.TemporaryDirectory(prefix="drdrill-bench-") as tmp:
        plain, stored, out = Path(tmp, "plain"), Path(tmp, "stored"), Path(tmp, "out")
        with open(plain, "wb") as f:
            copy_stream(Generated(size, block), f, chunk_size=chunk)
        with open(plain, "rb") as src, open(stored, "wb") as dst:
            encrypt_stream(src, dst, key, chunk_size=chunk)

        def file_job(
            fn: Callable[..., object], source: Path, *extra: object
        ) -> Callable[[], object]:
            def run() -> object:
                with open(source, "rb") as src, open(out, "wb") as dst:
                    return fn(src, dst, *extra)

            return run

        def decrypt_discard() -> object:
            with open(stored, "rb") as src:
                return decrypt_stream(src, Discard(), key)

        dec_mem = line("decrypt (file->discard)", size, *measure(args.runs, size, decrypt_discard))
        print("file backed (temporary files, page cache):")
        copy_f = line(
            "copy_stream (baseline)", size, *measure(args.runs, size, file_job(copy_stream, plain))
        )
        enc_f = line(
            "encrypt_stream", size, *measure(args.runs, size, file_job(encrypt_stream, plain, key))
        )
        dec_f = line(
            "decrypt_stream", size, *measure(args.runs, size, file_job(decrypt_stream, stored, key))
        )
        print(
            f"  encrypted/unencrypted: {enc_f / copy_f:.0%}"
            f"   decrypt/unencrypted: {dec_f / copy_f:.0%}"
        )
        print(
            f"  restore target >= 100 MB/s: decrypt file->file {dec_f:.0f} MB/s,"
            f" file->discard {dec_mem:.0f} MB/s"
        )


if __name__ == "__main__":
    main()
