"""The stack backend drills a Patroni cluster it did not start.

This test process builds a Patroni + etcd + HAProxy cluster with Redis and object storage
(the team's running stack) and describes it in a stack file, as a team would; an inner
pytest run with ``--drill-backend=stack --drill-postgres-failover=patroni`` drills it,
starting nothing. Its leader is cut off from etcd: Patroni must demote it and the
synchronous standby must take over, measured from the clients' history, the envelope
read back from the team's live ``/config``.

Heavy (a Patroni cluster and a drill, about 60 s): run it under
``flock /tmp/drdrill-heavy.lock``. Skipped without Patroni, etcd and HAProxy unless
``DRDRILL_REQUIRE_PATRONI=1`` (CI).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from drill_helpers import require_patroni
from pytest_drdrill.ha.patroni import PatroniHA
from pytest_drdrill.topology.local import LocalBackend
from pytest_drdrill.topology.patroni_topology import PatroniTopology

DRILL = """
import pytest

from pytest_drdrill import timing
from pytest_drdrill.faults.patroni import DcsPartition


@pytest.mark.drdrill(
    cadence="monthly", tier="tier_1_critical", scenario="stack-patroni-leader-cut-from-dcs",
    max_lost_writes=0,
)
def test_leader_cut_from_etcd(drdrill):
    topology = drdrill.topology
    leader = topology.primary.name
    assert leader == "pg-primary", topology.cluster_state()
    with drdrill.running():
        at = drdrill.faults.inject(DcsPartition(leader, topology.dcs_links(leader)))
        # Writes go on until the leader gives up on etcd: wait for the new leader first,
        # or recovery is "seen" before the outage begins.
        while topology.primary.name == leader:
            assert timing.monotonic() < at + drdrill.observe, "the leader never demoted"
            timing.sleep(0.1)
        drdrill.await_recovery()
    result = drdrill.conclude()
    assert result.rpo is not None and result.rpo.lost_writes == 0
    assert topology.primary.name in ("pg-sync", "pg-sync2"), topology.cluster_state()
"""


@pytest.fixture(scope="module")
def team_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PatroniTopology]:
    """The team's running stack: Patroni, etcd, HAProxy, Redis, object storage."""
    require_patroni()
    backend = LocalBackend(tmp_path_factory.mktemp("team-backend")).start()
    try:
        topology = backend.topology(
            tmp_path_factory.mktemp("team-stack"),
            kind=PatroniTopology,
            executables=PatroniHA().executables,
        )
        try:
            yield topology  # type: ignore[misc]
        finally:
            topology.close()
    finally:
        backend.close()


def stack_file(topology: PatroniTopology, path: Path) -> Path:
    """Describe the running stack as a team would: nodes, proxies, Patroni's REST and DCS."""
    cluster = topology.patroni
    assert cluster is not None
    proxy = topology.proxy
    haproxy = proxy.get(topology.pg_endpoint.proxy_name).upstream
    nodes = {
        name: {"service": service, "region": node.region, "address": node.address,
               "upstream": node.address}
        for service, group in (("postgres", topology.pg_nodes), ("redis", topology.redis_nodes),
                               ("s3", topology.s3_nodes))
        for name, node in group.items()
    }  # fmt: skip
    spec = {
        "name": "team-patroni",
        "proxy": {"api": proxy.base_url, "host": "127.0.0.1"},
        "bucket": topology.bucket,
        "nodes": nodes,
        "paths": {
            "endpoints": {
                "postgres": topology.pg_endpoint.proxy_name,
                "redis": topology.redis_endpoint.proxy_name,
                "s3": topology.s3_endpoint.proxy_name,
            },
            "client_paths": {n: link.proxy_name for n, link in topology.client_paths.items()},
            "replication": {n: link.proxy_name for n, link in topology.redis_links.items()},
        },
        "sync_standbys": ["pg-sync", "pg-sync2"],
        "allowed_faults": ["cut", "timeout", "latency"],
        "patroni": {
            "rest": {name: member.rest_url() for name, member in cluster.members.items()},
            "haproxy": haproxy,
            "dcs": {member.name: {"region": member.region} for member in cluster.etcd},
            "dcs_paths": {
                name: {link.target.name: link.proxy_name for link in cluster.dcs_links(name)}
                for name in cluster.members
            },
        },
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_stack_backend_drills_a_patroni_cluster_it_did_not_start(
    pytester: pytest.Pytester, drill_args: list[str], team_stack: PatroniTopology
) -> None:
    """The leader cut from etcd demotes, the sync standby leads, nothing is lost or started."""
    stack = stack_file(team_stack, pytester.path / "stack.yaml")
    pytester.makepyfile(test_team_stack=DRILL)
    args = [a for a in drill_args if not a.startswith("--drill-backend=")]
    result = pytester.runpytest_subprocess(
        *args,
        "--drill-backend=stack",
        f"--drill-stack={stack}",
        "--drill-postgres-failover=patroni",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["drdrill: backend stack*", "drdrill: postgres failover patroni*"])
    (report,) = (pytester.path / "reports").glob("*/drill.json")
    (drill,) = json.loads(report.read_text())["drills"]
    assert drill["verdict"] == "pass", drill["reason"]
    envelopes = [n for n in drill["notes"] if "failover envelope (live settings)" in n]
    assert envelopes and "ttl" in envelopes[0], drill["notes"]
    roles = {sample["node"] for sample in drill["roles"]}
    assert roles == {"pg-primary", "pg-sync", "pg-sync2", "pg-dr"}, roles
    # Patroni, not the plugin, moved the leader of the cluster the plugin did not start.
    assert team_stack.patroni is not None
    assert team_stack.patroni.wait_leader(timeout=5) in ("pg-sync", "pg-sync2")
