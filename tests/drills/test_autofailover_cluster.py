"""A real pg_auto_failover cluster (monitor + three keepers): start, node loss, control.

Heavy (about 40 s): run it under ``flock /tmp/drdrill-heavy.lock``. Skipped without
Debian's pg_auto_failover (``pg_autoctl``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pytest_drdrill.errors import ExecutableMissing
from pytest_drdrill.recovery.autofailover_envelope import node_loss_envelope
from pytest_drdrill.topology.autofailover import find_pg_autoctl
from pytest_drdrill.topology.autofailover_cluster import AutofailoverCluster
from pytest_drdrill.topology.local import LocalBackend


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    try:
        find_pg_autoctl()
    except ExecutableMissing as exc:
        pytest.skip(f"pg_auto_failover drills need pg_autoctl (run scripts/bootstrap): {exc}")
    started = LocalBackend(tmp_path_factory.mktemp("backend")).start()
    try:
        yield started
    finally:
        started.close()


def _build(backend: LocalBackend, workdir: Path, **kw: object) -> AutofailoverCluster:
    assert backend.dataroot is not None
    return AutofailoverCluster.build(
        workdir,
        dataroot=backend.dataroot,
        proxy=backend.proxy,
        bin_dir=backend.install.bindir,
        run_as=backend.run_as,
        template=backend.template,
        **kw,  # type: ignore[arg-type]
    )


def _uri(cluster: AutofailoverCluster) -> str:
    """The multi-host URI the monitor gives, hosts in its order, as libpq would use it."""
    paths = [cluster.links[f"pg-{name}"] for name in cluster.keepers]
    return (
        f"host={','.join(p.host for p in paths)} port={','.join(str(p.port) for p in paths)} "
        "user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=2"
    )


class _Writer(threading.Thread):
    """The drill's own client: one row per write, acknowledged ids kept, first ack timed."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.acked: list[int] = []
        self.stop = threading.Event()
        self.acks_at: list[float] = []

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    while not self.stop.is_set():
                        n += 1
                        conn.execute("INSERT INTO af_probe VALUES (%s)", (n,))
                        self.acked.append(n)
                        self.acks_at.append(time.monotonic())
                        time.sleep(0.005)
            except psycopg.Error:
                time.sleep(0.05)


def test_cluster_starts_kills_primary_promotes_sync_without_losing_writes(
    backend: LocalBackend, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    t0 = time.monotonic()
    cluster = _build(backend, tmp_path / "af")
    try:
        record_property("cold_start_s", round(time.monotonic() - t0, 2))
        states = {r["nodename"]: r["reportedstate"] for r in cluster.node_states()}
        assert states == {"pg-primary": "primary", "pg-sync": "secondary", "pg-dr": "secondary"}
        uri = cluster.autoctl_monitor("show", "uri", "--formation", "default")
        assert "target_session_attrs=read-write" in uri
        # Every registered address is a fault-proxy path.
        for name, keeper in cluster.keepers.items():
            assert f"127.0.0.1:{cluster.links[f'pg-{name}'].port}" in uri
            assert keeper.host == "127.0.0.2"
        # Killed at teardown, a server with posix dynamic shared memory leaves /dev/shm
        # segments behind: every server, the cloned standbys too, uses mmap.
        assert cluster.monitor is not None
        for server in [cluster.monitor, *cluster.keepers.values()]:
            with psycopg.connect(server.dsn(), autocommit=True) as conn:
                row = conn.execute("SHOW dynamic_shared_memory_type").fetchone()
            assert row == ("mmap",), server.name
        with psycopg.connect(cluster.keepers["pg-primary"].dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE af_probe (v int PRIMARY KEY)")
            sync = conn.execute(
                "SELECT sync_state FROM pg_stat_replication ORDER BY application_name"
            ).fetchall()
        assert sorted(s for (s,) in sync) == ["async", "quorum"]
        env = node_loss_envelope(cluster.monitor_settings())
        writer = _Writer(_uri(cluster))
        writer.start()
        time.sleep(1.0)
        assert writer.acked, "no write acknowledged before the fault"
        killed_at = time.monotonic()
        cluster.keepers["pg-primary"].crash()
        # Acknowledged once the kill is complete: only the new primary can have written it.
        dead_at = time.monotonic()
        cluster.wait_state("pg-sync", {"primary", "wait_primary"}, timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(t > dead_at for t in writer.acks_at):
            time.sleep(0.05)
        time.sleep(0.5)
        writer.stop.set()
        writer.join(timeout=10)
        after = [t for t in writer.acks_at if t > dead_at]
        assert after, "no write acknowledged after the primary was killed"
        rto = after[0] - killed_at
        record_property("node_loss_rto_s", round(rto, 2))
        print(f"node loss RTO {rto:.2f}s; envelope {env.describe()}")
        # The envelope's promotion term is an estimate, overrun once on a loaded 2-core
        # machine (9.86 s against 9.5 s); a drill reports that as a WARN, measured. Here the
        # bound only proves the lowered settings took effect: the defaults take over 60 s.
        assert env.worst_case_seconds is not None and rto <= env.worst_case_seconds * 1.5
        with psycopg.connect(cluster.keepers["pg-sync"].dsn(), autocommit=True) as conn:
            present = {v for (v,) in conn.execute("SELECT v FROM af_probe").fetchall()}
        lost = set(writer.acked) - present
        assert not lost, f"{len(lost)} acknowledged writes lost"
    finally:
        cluster.close()


def test_negative_control_no_candidate_means_no_failover(
    backend: LocalBackend, tmp_path: Path
) -> None:
    """With pg-sync at candidate priority 0 too, nobody may be promoted: the RTO is missed."""
    cluster = _build(backend, tmp_path / "af", priorities={"pg-sync": 0})
    try:
        env = node_loss_envelope(cluster.monitor_settings())
        assert env.worst_case_seconds is not None
        cluster.keepers["pg-primary"].crash()
        deadline = time.monotonic() + env.worst_case_seconds * 1.5
        writable = False
        while time.monotonic() < deadline and not writable:
            try:
                with psycopg.connect(_uri(cluster), autocommit=True) as conn:
                    conn.execute("SELECT 1")
                    writable = True
            except psycopg.Error:
                time.sleep(0.2)
        assert not writable, "a node was promoted although no keeper may be a candidate"
    finally:
        cluster.close()
