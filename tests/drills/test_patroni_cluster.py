"""A real Patroni + etcd + HAProxy cluster: start, node loss, teardown.

Heavy (about 30 s): run it under ``flock /tmp/drdrill-heavy.lock``. Skipped when Debian's
patroni, etcd-server or haproxy are missing, unless ``DRDRILL_REQUIRE_PATRONI=1`` (CI),
which turns the skip into a failure.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from drill_helpers import require_patroni
from pytest_drdrill.servers import processes
from pytest_drdrill.topology.local import LocalBackend
from pytest_drdrill.topology.nodes import PostgresNode
from pytest_drdrill.topology.patroni_cluster import PatroniCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PatroniCluster]:
    require_patroni()
    backend = LocalBackend(tmp_path_factory.mktemp("backend")).start()
    try:
        assert backend.dataroot is not None
        t0 = time.monotonic()
        built = PatroniCluster.build(
            tmp_path_factory.mktemp("patroni"),
            dataroot=backend.dataroot,
            proxy=backend.proxy,
            bin_dir=backend.install.bindir,
            run_as=backend.run_as,
            template=backend.template,
        )
        built.timings["cold start (test)"] = time.monotonic() - t0
        try:
            yield built
        finally:
            built.close()
    finally:
        backend.close()


def _write(dsn: str, value: int) -> None:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS patroni_probe (v int)")
        conn.execute("INSERT INTO patroni_probe VALUES (%s)", (value,))


def test_cluster_starts_with_a_leader_and_takes_writes(
    cluster: PatroniCluster, record_property: pytest.RecordProperty
) -> None:
    record_property("cold_start_s", round(cluster.timings["cold start (test)"], 2))
    print(f"cold start timings: {cluster.timings}")
    leader = cluster.leader()
    assert leader == "pg-primary", cluster.roles()
    roles = {role for role, _ in cluster.roles().values()}
    assert roles == {"leader", "sync_standby", "replica"}
    assert cluster.roles()["pg-dr"][0] == "replica"  # nosync: never the synchronous standby
    for node in cluster.nodes().values():
        assert isinstance(node, PostgresNode)
        assert node.is_running() and len(node.pids()) >= 2  # Patroni and its postmaster
    with psycopg.connect(cluster.endpoint.dsn(), autocommit=True, connect_timeout=2) as conn:
        row = conn.execute("SELECT inet_server_port(), pg_is_in_recovery()").fetchone()
    assert row == (cluster.members[leader].port, False)
    _write(cluster.endpoint.dsn(), 1)


def test_node_loss_elects_a_new_leader_and_writes_resume(
    cluster: PatroniCluster, record_property: pytest.RecordProperty
) -> None:
    old = cluster.leader()
    assert old is not None
    lost = cluster.members[old]
    t0 = time.monotonic()
    lost.crash()
    assert not lost.is_running() and lost.pids() == []
    deadline = t0 + 40
    while True:
        try:
            _write(cluster.endpoint.dsn(), 2)
            break
        except psycopg.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    seconds = time.monotonic() - t0
    record_property("node_loss_failover_s", round(seconds, 2))
    print(f"node loss -> first write through HAProxy: {seconds:.2f} s")
    new = cluster.wait_leader(timeout=5, other_than=old)
    assert new != old
    assert cluster.members[new].region == "primary"  # the synchronous standby, not DR
    ttl = cluster.members[new].dcs["ttl"]
    assert seconds < ttl + 5


def test_close_leaves_nothing_running(cluster: PatroniCluster) -> None:
    pids = [p for node in cluster.nodes().values() for p in node.pids()]
    pids += [p for server in (*cluster.etcd, cluster.haproxy) if server for p in server.pids()]
    assert pids
    cluster.close()
    assert processes.wait_gone(pids, timeout=5)
    data = str(cluster.data)
    left = [
        (pid, cmd)
        for pid, _ in processes.tagged_processes()
        if (cmd := processes.command_line(pid)) and data in cmd
    ]
    assert left == []
    assert not Path(data).exists()
