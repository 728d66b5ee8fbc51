"""A real repmgr cluster (repmgrd, a witness, HAProxy): start, node loss, negative control.

Heavy (about 40 s): run it under ``flock /tmp/drdrill-heavy.lock``. Skipped when
Debian's postgresql-15-repmgr or haproxy are missing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pytest_drdrill.errors import ExecutableMissing
from pytest_drdrill.recovery.envelope import repmgr_envelope
from pytest_drdrill.servers import processes
from pytest_drdrill.topology.haproxy import find_haproxy
from pytest_drdrill.topology.local import LocalBackend
from pytest_drdrill.topology.repmgr import find_repmgr
from pytest_drdrill.topology.repmgr_cluster import RepmgrCluster


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    started = LocalBackend(tmp_path_factory.mktemp("backend")).start()
    try:
        find_repmgr(started.install.bindir)
        find_haproxy()
    except ExecutableMissing as exc:
        started.close()
        pytest.skip(f"repmgr drills need postgresql-15-repmgr and haproxy: {exc}")
    try:
        yield started
    finally:
        started.close()


def _build(backend: LocalBackend, workdir: Path, **settings: object) -> RepmgrCluster:
    assert backend.dataroot is not None
    return RepmgrCluster.build(
        workdir,
        dataroot=backend.dataroot,
        proxy=backend.proxy,
        bin_dir=backend.install.bindir,
        run_as=backend.run_as,
        template=backend.template,
        settings={"*": settings} if settings else None,
    )


class _Writer:
    """Writes numbered rows through the endpoint; remembers which were acknowledged."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.acked: list[int] = []
        self.first_after: dict[float, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        conn = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=2)
                    conn.execute("CREATE TABLE IF NOT EXISTS repmgr_probe (id int)")
                n += 1
                conn.execute("INSERT INTO repmgr_probe VALUES (%s)", (n,))
                self.acked.append(n)
            except psycopg.Error:
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.02)
        if conn is not None:
            conn.close()

    def start(self) -> _Writer:
        self._thread.start()
        return self

    def wait_acked_after(self, count: int, timeout: float) -> float | None:
        """Seconds until more than ``count`` rows are acknowledged, ``None`` on timeout."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if len(self.acked) > count:
                return time.monotonic() - t0
            time.sleep(0.02)
        return None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_node_loss_promotes_pg_sync_with_no_acknowledged_write_lost(
    backend: LocalBackend, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    t0 = time.monotonic()
    cluster = _build(backend, tmp_path / "repmgr")
    record_property("cold_start_s", round(time.monotonic() - t0, 2))
    try:
        rows = {int(r[0]): (r[1], r[2]) for r in cluster.cluster_show()}
        assert rows == {1: ("0", "0"), 2: ("0", "1"), 3: ("0", "1"), 4: ("0", "0")}
        assert all(len(m.pids()) >= 2 for m in cluster.members.values())  # repmgrd + postgres
        writer = _Writer(cluster.endpoint.dsn()).start()
        assert writer.wait_acked_after(50, timeout=10) is not None
        lost = cluster.members["pg-primary"]
        lost.crash()
        # Counted once the primary is dead: writes acknowledged during the kill are its.
        acked_before = len(writer.acked)
        assert not lost.is_running() and lost.pids() == []
        rto = writer.wait_acked_after(acked_before, timeout=40)
        writer.stop()
        assert rto is not None, "no write acknowledged within 40 s of the primary's loss"
        record_property("node_loss_rto_s", round(rto, 2))
        print(f"repmgr node loss -> writes acknowledged again: {rto:.2f} s")
        with psycopg.connect(cluster.members["pg-sync"].dsn(), autocommit=True) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
            on_new = {r[0] for r in conn.execute("SELECT id FROM repmgr_probe").fetchall()}
        assert set(writer.acked) - on_new == set()  # synchronous: nothing acknowledged lost
        env = repmgr_envelope("node_loss", cluster.members["pg-sync"].config())
        assert env.worst_case_seconds is not None and rto <= env.worst_case_seconds + 2.0
    finally:
        cluster.close()


def test_manual_failover_leaves_the_cluster_without_a_primary(
    backend: LocalBackend, tmp_path: Path
) -> None:
    """Negative control: failover=manual, the same node loss, and writes never resume."""
    cluster = _build(backend, tmp_path / "repmgr", failover="manual")
    try:
        env = repmgr_envelope("node_loss", cluster.members["pg-sync"].config())
        assert env.worst_case_seconds is None  # the envelope knows no failover comes
        writer = _Writer(cluster.endpoint.dsn()).start()
        assert writer.wait_acked_after(20, timeout=10) is not None
        cluster.members["pg-primary"].crash()
        time.sleep(0.5)  # writes in flight at the crash may still be acknowledged
        acked = len(writer.acked)
        # Three times the automatic envelope (5 s) pass without a write: an RTO target of
        # tier 1 (seconds) is missed, as the drill must report.
        assert writer.wait_acked_after(acked, timeout=15) is None
        writer.stop()
        for name in ("pg-sync", "pg-dr"):
            with psycopg.connect(cluster.members[name].dsn(), autocommit=True) as conn:
                assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    finally:
        cluster.close()


def test_close_leaves_nothing_running(backend: LocalBackend, tmp_path: Path) -> None:
    cluster = _build(backend, tmp_path / "repmgr")
    servers = [*cluster.members.values(), cluster.witness, cluster.haproxy]
    pids = [p for s in servers if s is not None for p in s.pids()]
    assert pids
    data = str(cluster.data)
    cluster.close()
    assert processes.wait_gone(pids, timeout=5)
    left = [
        (pid, cmd)
        for pid, _ in processes.tagged_processes()
        if (cmd := processes.command_line(pid)) and data in cmd
    ]
    assert left == []
    assert not Path(data).exists()


@pytest.mark.parametrize("fenced", [True, False], ids=["fenced", "unfenced-negative"])
def test_thawed_old_primary_gets_no_clients_only_when_fenced(
    backend: LocalBackend, tmp_path: Path, fenced: bool, record_property: pytest.RecordProperty
) -> None:
    """The freeze drill's cause: a thawed old primary is writable and passes HAProxy's check.

    Fenced (the drill's default event_notification_command), HAProxy puts every server
    but the promoted one in maintenance and the endpoint stays on pg-sync with every
    acknowledged row. Unfenced (a team hook that does nothing), the endpoint leads to the
    thawed old primary within a few checks: the rows acknowledged after the failover are
    not there, and a write hangs on a synchronous standby that is gone.
    """
    settings = {} if fenced else {"event_notification_command": "/bin/true %n"}
    cluster = _build(backend, tmp_path / "repmgr", **settings)
    try:
        writer = _Writer(cluster.endpoint.dsn()).start()
        assert writer.wait_acked_after(30, timeout=10) is not None
        old = cluster.members["pg-primary"]
        old.freeze()
        acked = len(writer.acked)
        rto = writer.wait_acked_after(acked, timeout=40)
        assert rto is not None, "no failover within 40 s of the freeze"
        record_property("freeze_rto_s", round(rto, 2))
        assert writer.wait_acked_after(len(writer.acked) + 20, timeout=10) is not None
        writer.stop()
        old.thaw()
        time.sleep(2.0)  # four HAProxy checks: long enough for it to mark the thawed node up
        with psycopg.connect(cluster.endpoint.dsn(), autocommit=True, connect_timeout=3) as c:
            c.execute("SET statement_timeout = 2000")
            port, in_recovery = c.execute(
                "SELECT inet_server_port(), pg_is_in_recovery()"
            ).fetchone()  # type: ignore[misc]
            present = {r[0] for r in c.execute("SELECT id FROM repmgr_probe").fetchall()}
        missing = set(writer.acked) - present
        served_by = {m.port: n for n, m in cluster.members.items()}.get(port, str(port))
        print(f"fenced={fenced}: endpoint -> {served_by}, {len(missing)} acknowledged rows missing")
        states = cluster.haproxy.server_states() if cluster.haproxy else {}
        if fenced:
            assert served_by == "pg-sync" and not in_recovery
            assert missing == set()
            assert states["pg-primary"] == "maint" and states["pg-dr"] == "maint"
            assert "repmgrd_failover_promote of node 2" in cluster.fence_log.read_text()
        else:
            assert served_by == "pg-primary", "the unfenced old primary must be served again"
            assert len(missing) >= 20
            assert states["pg-primary"] == "up"
    finally:
        cluster.close()
