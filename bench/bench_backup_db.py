"""Benchmark: backing up and restoring a real PostgreSQL database, encrypted against plain.

Run from the repository root::

    PYTHONPATH=src python bench/bench_backup_db.py [--scale 35] [--runs 3]

A PostgreSQL server (from the local backend's template) is filled with ``pgbench -i`` at
``--scale`` (35 gives about 530 MB), and one moto server plays the object store. Then,
``--runs`` times each, in this process:

- backup, plain: ``pg_basebackup -Ft`` tar uploaded with boto3's ``upload_file``;
- backup, encrypted: the same tar through ``Catalog.put_backup`` (AES-256-GCM stream,
  both digests, multipart upload);
- restore, plain: the plain object through ``copy_to_path``: the same pipeline as an
  encrypted restore without the cipher (one streaming ``get_object``, SHA-256 and size
  compared with what the upload recorded, fsync, rename into place);
- restore, encrypted: ``Catalog.restore_file`` (download, authenticate and decrypt every
  chunk, compare sizes and the plaintext digest with the manifest, fsync, rename);
- download only (for reference, not a target): the plain object's bytes read and dropped.

The tar is made once; each figure is MB/s of database bytes (10^6), median and p95 (of
times), and the encrypted/plain ratio of the medians. Targets (issue 4): encrypted at
least 80 % of plain; restore at least 100 MB/s.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

from _streams import copy_to_path

from pytest_drdrill import timing
from pytest_drdrill.backup.catalog import Catalog
from pytest_drdrill.backup.keys import generate_key
from pytest_drdrill.backup.manifest import Manifest
from pytest_drdrill.clients.s3 import ensure_bucket, s3_client
from pytest_drdrill.servers import processes
from pytest_drdrill.topology.local import LocalBackend
from pytest_drdrill.topology.postgres import LocalPostgresNode
from pytest_drdrill.topology.s3 import LocalS3Node


def _times(runs: int, call: Callable[[], object]) -> list[float]:
    took = []
    for _ in range(runs):
        start = timing.monotonic()
        call()
        took.append(timing.monotonic() - start)
    return took


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    """Print MB/s per operation and the encrypted/plain ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=35, help="pgbench scale (35: ~530 MB)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drdrill-bench-") as tmp:
        work = Path(tmp)
        (work / "backend").mkdir()
        backend = LocalBackend(work / "backend").start()
        store = LocalS3Node("s3-bench", "primary", work / "s3", log=work / "s3.log")
        node = None
        try:
            assert backend.dataroot is not None
            node = LocalPostgresNode(
                "pg-bench", "primary", backend.dataroot / "pg-bench", backend.install,
                backend.run_as, log=work / "pg.log",
            )  # fmt: skip
            node.init_from_template(backend.template)
            node.start()
            store.start()
            started = timing.monotonic()
            processes.run(
                [backend.install.tool("pgbench"), "-i", "-q", "-s", str(args.scale),
                 "-h", node.host, "-p", str(node.port), "-U", "postgres", "postgres"],
                run_as=backend.run_as, timeout=1800, what="pgbench -i",
            )  # fmt: skip
            loaded = timing.monotonic() - started
            tar_dir = backend.dataroot / "bench-base"
            tar_dir.mkdir()
            if backend.run_as is not None:
                backend.run_as.own(tar_dir)
            processes.run(
                [backend.install.tool("pg_basebackup"), "-h", node.host, "-p", str(node.port),
                 "-U", "postgres", "-D", str(tar_dir), "-Ft", "-X", "fetch", "-c", "fast",
                 "--no-manifest"],
                run_as=backend.run_as, timeout=1800, what="pg_basebackup",
            )  # fmt: skip
            tar = tar_dir / "base.tar"
            size = tar.stat().st_size
            client = s3_client(store.endpoint_url, timeout=300.0)
            ensure_bucket(client, "bench")
            catalog = Catalog(client, "bench")
            key = generate_key()
            ids: list[str] = []

            def put_encrypted() -> None:
                manifest = Manifest.new(
                    "postgres-base", "pg-bench", data_category="critical_user_data"
                )
                stored = catalog.put_backup(manifest, {"base.tar": tar}, key)
                ids.append(stored.backup_id)

            with open(tar, "rb") as f:
                tar_sha256 = hashlib.file_digest(f, "sha256").hexdigest()

            def restore_plain(path: Path) -> None:
                body = client.get_object(Bucket="bench", Key="plain/base.tar")["Body"]
                copy_to_path(body, path, expect_size=size, expect_sha256=tar_sha256)

            def download_only() -> None:
                body = client.get_object(Bucket="bench", Key="plain/base.tar")["Body"]
                while body.read(1 << 20):
                    pass

            results = {
                "backup, plain": _times(
                    args.runs, lambda: client.upload_file(str(tar), "bench", "plain/base.tar")
                ),
                "backup, encrypted": _times(args.runs, put_encrypted),
                "restore, plain": [],
                "restore, encrypted": [],
            }
            # Restores alternate, so both see the same page cache and background load.
            for _ in range(args.runs):
                results["restore, plain"] += _times(1, lambda: restore_plain(work / "p.tar"))
                results["restore, encrypted"] += _times(
                    1, lambda: catalog.restore_file(ids[-1], "base.tar", work / "e.tar", key)
                )
            results["download only"] = _times(args.runs, download_only)
        finally:
            if node is not None:
                node.cleanup()
            store.cleanup()
            backend.close()
    mb = size / 1e6
    print(f"database tar: {mb:.0f} MB (pgbench scale {args.scale}, loaded in {loaded:.0f}s)")
    print(f"{'operation':<20}{'median MB/s':>12}{'p95 MB/s':>10}")
    medians = {}
    for name, took in results.items():
        medians[name] = mb / statistics.median(took)
        print(f"{name:<20}{medians[name]:>12.0f}{mb / _p95(took):>10.0f}")
    for what in ("backup", "restore"):
        ratio = medians[f"{what}, encrypted"] / medians[f"{what}, plain"]
        print(f"{what}: encrypted / plain = {ratio:.0%} (target >= 80%)")


if __name__ == "__main__":
    main()
