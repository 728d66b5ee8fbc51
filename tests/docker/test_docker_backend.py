"""The Docker backend's containers, networks, labels, Docker-level faults and cleanup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest
import redis
from docker_helpers import run_objects

from pytest_drdrill import timing
from pytest_drdrill.clients.redis import sync_client
from pytest_drdrill.faults import FaultInjector
from pytest_drdrill.faults import docker as docker_faults
from pytest_drdrill.record import DrillRecord
from pytest_drdrill.servers import processes
from pytest_drdrill.topology.docker import DockerBackend, DockerTopology
from pytest_drdrill.topology.docker_engine import (
    LABEL_HOST,
    LABEL_OWNER,
    LABEL_RUN,
    connect,
    host_id,
)
from pytest_drdrill.topology.docker_nodes import ContainerNode, DockerPostgresNode


def _answers(node: DockerPostgresNode, timeout: float = 1.0) -> bool:
    try:
        with psycopg.connect(node.dsn(), connect_timeout=2, autocommit=True) as conn:
            conn.execute(f"SET statement_timeout = {int(timeout * 1000)}")
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def _redis_answers(url: str) -> bool:
    try:
        with sync_client(url, timeout=0.5) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


def test_everything_carries_the_run_labels(backend: DockerBackend, topology: DockerTopology):
    """Each container and network of the run is labelled with its run, owner and machine."""
    client = connect()
    try:
        label = {"label": f"{LABEL_RUN}={backend.run_id}"}
        containers = client.containers.list(all=True, filters=label)
        networks = client.networks.list(filters=label)
    finally:
        client.close()
    names = sorted(c.labels.get("io.drdrill.node", "fault-proxy") for c in containers)
    assert names == sorted([*topology.nodes(), "fault-proxy"])
    assert len(networks) == 3  # primary, dr, and the backup region's
    for labels in [c.labels for c in containers] + [n.attrs["Labels"] for n in networks]:
        assert labels[LABEL_OWNER] == processes.owner_tag()
        assert labels[LABEL_HOST] == host_id()


def test_regions_meet_only_through_the_fault_proxy(topology: DockerTopology):
    """The DR standby cannot reach the primary's address; its replication link can."""
    dr = topology.pg_nodes["pg-dr"]
    primary = topology.pg_nodes["pg-primary"]
    assert isinstance(dr, ContainerNode)
    link = topology.replication_links["pg-dr"]

    def ready(host: str, port: int) -> int:
        argv = ["pg_isready", "-h", host, "-p", str(port), "-t", "2"]
        return dr.container.exec_run(argv, user="postgres").exit_code

    assert ready(primary.host, primary.port) != 0
    assert ready(link.host, link.port) == 0
    assert {n.region for n in topology.nodes().values()} == {"primary", "dr", "backup"}


def test_the_backup_region_store_has_its_own_network_reached_through_the_proxy(
    topology: DockerTopology,
):
    """s3-backup runs on the backup region's network; its client path answers through the proxy."""
    from pytest_drdrill.topology.s3 import _answers_s3

    store = topology.s3_nodes["s3-backup"]
    assert isinstance(store, ContainerNode) and store.region == "backup"
    assert store.network.name.endswith("-backup")
    path = topology.client_paths["s3-backup"]
    assert _answers_s3(path.host, path.port, 2.0) is None


def test_pause_through_the_injector_freezes_and_heals(topology: DockerTopology):
    """A paused Redis primary answers nothing; the injector records the fault and heals it."""
    node = topology.redis_nodes["redis-primary"]
    record = DrillRecord("t", scenario="pause", cadence="monthly", target=None, backend="docker")
    injector = FaultInjector(record, topology=topology)
    injector.inject(docker_faults.pause(node))
    try:
        assert not _redis_answers(node.url())
        assert record.faults[0].kind == "container-pause"
    finally:
        injector.heal()
    assert _redis_answers(node.url())
    assert record.faults[0].healed_at is not None


def test_disconnect_isolates_the_node_and_reconnects_it_at_its_address(
    topology: DockerTopology,
):
    """Disconnected, the S3 DR store is unreachable even through its path; healed, it is back."""
    from pytest_drdrill.topology.s3 import _answers_s3

    node = topology.s3_nodes["s3-dr"]
    path = topology.client_paths["s3-dr"]
    fault = docker_faults.disconnect(node)
    fault.inject()
    try:
        assert _answers_s3(node.host, node.port, 1.0) is not None
        assert _answers_s3(path.host, path.port, 1.0) is not None
    finally:
        fault.heal()
    assert _answers_s3(node.host, node.port, 2.0) is None
    assert _answers_s3(path.host, path.port, 2.0) is None


def test_restart_brings_postgres_back_at_its_address_with_its_data(
    fresh_topology: DockerTopology,
):
    """A restarted primary recovers, keeps its rows and serves at the same address again."""
    node = fresh_topology.pg_nodes["pg-primary"]
    assert isinstance(node, DockerPostgresNode)
    with psycopg.connect(node.dsn(), autocommit=True) as conn:
        conn.execute("INSERT INTO drdrill_ledger (id) VALUES (424242)")
    address = node.address
    docker_faults.restart(node).inject()
    node.wait_accepting(timeout=60)
    assert node.address == address
    with psycopg.connect(fresh_topology.pg_endpoint.dsn(), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM drdrill_ledger WHERE id = 424242").fetchone()
    assert row == (1,)


def test_kill_with_sigterm_and_crash_of_a_fenced_node(fresh_topology: DockerTopology):
    """SIGTERM stops a server its own way; a fenced node refuses to restart."""
    store = fresh_topology.s3_nodes["s3-dr"]
    docker_faults.kill(store, "TERM").inject()
    deadline = timing.monotonic() + 15
    while store.is_running() and timing.monotonic() < deadline:
        timing.sleep(0.05)
    assert not store.is_running()
    replica = fresh_topology.redis_nodes["redis-dr"]
    replica.fence()
    assert not replica.is_running() and replica.pids() == []
    with pytest.raises(Exception, match="fenced"):
        docker_faults.restart(replica).inject()


def test_pids_are_the_host_view_of_the_container(topology: DockerTopology):
    """A node's pids are host processes (for memory accounting): PostgreSQL has several."""
    pids = topology.pg_nodes["pg-primary"].pids()
    assert len(pids) >= 3
    assert all(Path(f"/proc/{pid}").exists() for pid in pids)


def test_teardown_leaves_no_container_network_or_volume(tmp_path: Path):
    """Closing the topology and the backend removes every labelled object and the data root."""
    backend = DockerBackend(tmp_path / "backend").start()
    try:
        topo = backend.topology(tmp_path / "topology")
        assert backend.dataroot is not None
        dataroot = backend.dataroot
        assert len(run_objects(backend.run_id)) == 3 + 1 + len(topo.nodes())  # networks, proxy
        topo.close()
        assert sorted(run_objects(backend.run_id)) == sorted(
            [
                f"container {backend.prefix}-proxy",
                *(f"network {n.name}" for n in backend.networks.networks.values()),
            ]
        )
    finally:
        backend.close()
    assert run_objects(backend.run_id) == []
    assert not dataroot.exists()


_KILLED_RUN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from pytest_drdrill.topology.docker import DockerBackend

    backend = DockerBackend(Path(sys.argv[1])).start()
    backend.topology(Path(sys.argv[1]) / "topology")
    print(backend.run_id, backend.dataroot, flush=True)
    time.sleep(600)
    """
)


def test_leftovers_of_a_killed_run_are_reaped_at_the_next_start(tmp_path: Path):
    """A run killed with SIGKILL leaves containers; the next backend start removes them all."""
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUN, str(tmp_path / "killed")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        run_id, dataroot = child.stdout.readline().split()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    left = run_objects(run_id)
    assert len(left) == 3 + 1 + 8, left  # 3 networks, the proxy, 8 nodes (s3-backup too)
    backend = DockerBackend(tmp_path / "next").start()
    try:
        reaped = "\n".join(backend.reaped)
        assert run_objects(run_id) == []
        assert f"left by dead run {run_id}" in reaped
        assert reaped.count("Docker container") >= 8
        assert reaped.count("Docker network") >= 2
        assert not Path(dataroot).exists()
    finally:
        backend.close()
