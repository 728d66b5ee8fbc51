"""The running-stack backend's topology: the stack's shape, read from its fault proxy.

:class:`StackTopology` is wired as every proxied topology
(:mod:`pytest_drdrill.topology.proxied`), from paths and nodes that already exist
(:mod:`.stack_nodes`): which node each endpoint leads to is read from the proxy, a team's
Patroni cluster is asked who leads, and the drills' own ledgers are emptied before each
drill. The session's resources (the stack file, the guarded fault proxy) are
:class:`~.stack.StackBackend`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from pytest_drdrill.errors import TopologyError
from pytest_drdrill.ledger import LEDGER_DDL, LEDGER_KEY, LEDGER_TABLE, VALIDATION_TABLE
from pytest_drdrill.proxy.client import split_address
from pytest_drdrill.topology._protocol import BACKUP_REGION
from pytest_drdrill.topology.patroni_rest import LeaderFollower, PatroniRest, running_leader
from pytest_drdrill.topology.proxied import ProxiedTopology
from pytest_drdrill.topology.stack_file import StackFileError, StackNodeSpec
from pytest_drdrill.topology.stack_nodes import (
    GuardedProxy,
    StackLink,
    StackNode,
    StackPostgresNode,
    StackRedisNode,
    StackS3Node,
)

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_drdrill.topology._protocol import ServiceNode
    from pytest_drdrill.topology.links import Link
    from pytest_drdrill.topology.nodes import PostgresNode
    from pytest_drdrill.topology.stack_file import StackSpec


class StackTopology(ProxiedTopology):
    """The running stack, as a :class:`~pytest_drdrill.topology._protocol.Topology`.

    It has none of the optional capabilities: the stack's own failover decides Redis
    (no Sentinel of ours), and its disks and WAL are not ours to read.

    .. versionadded:: 0.4
    """

    backend = "stack"

    def __init__(self, workdir: Path, dataroot: Path, proxy: GuardedProxy) -> None:
        super().__init__(workdir, dataroot, proxy)
        self.spec = proxy.spec
        self.bucket = self.spec.bucket
        self.dcs_nodes: dict[str, StackNode] = {}
        self._dcs_links: dict[str, list[Link]] = {}
        self._follower: LeaderFollower | None = None

    @classmethod
    def attach(cls, spec: StackSpec, workdir: Path, dataroot: Path) -> StackTopology:
        """Read the stack's current shape from its proxy and get it ready for one drill.

        :raises TopologyError: when a path or node of the file does not answer.
        """
        topo = cls(workdir, dataroot, GuardedProxy(spec))
        try:
            topo._attach()
        except BaseException:
            topo.close()
            raise
        return topo

    def _stack_link(self, proxy: str, target: ServiceNode, label: str, **kw: Any) -> Link:
        link = StackLink(self.proxy, proxy, target, label, host=self.spec.proxy_host, **kw)
        self._links.append(link)
        return link

    def _attach(self) -> None:
        spec = self.spec
        (self.dataroot / self.id).mkdir(parents=True, exist_ok=True)
        for name, node_spec in spec.nodes.items():
            if node_spec.service == "postgres":
                self.pg_nodes[name] = StackPostgresNode(node_spec, spec)
            elif node_spec.service == "redis":
                self.redis_nodes[name] = StackRedisNode(node_spec, spec)
            else:
                self.s3_nodes[name] = StackS3Node(node_spec, spec)
        self._sync_names = spec.sync_standbys
        if spec.patroni is not None:
            self._follow_patroni()
        nodes = self.nodes()
        for name, proxy in spec.client_paths.items():
            self.client_paths[name] = self._stack_link(
                proxy, nodes[name], f"clients -> {name}", source="clients", upstream_of=None,
                kind="path",
            )  # fmt: skip
        haproxy = None if spec.patroni is None else spec.patroni.haproxy
        for service, proxy in spec.endpoints.items():
            upstream = self.proxy.get(proxy).upstream
            if service == "postgres" and haproxy is not None and upstream == haproxy:
                # HAProxy picks the leader by Patroni's REST checks: the endpoint leads there.
                self.pg_endpoint = self._stack_link(
                    proxy, self.primary, "clients -> postgres (service endpoint, HAProxy)",
                    source="clients", kind="endpoint", upstream_of=lambda _n: haproxy,
                )  # fmt: skip
                continue
            serving = self._serving(upstream)
            if serving is None:
                raise StackFileError(
                    f"stack file {spec.source}: the {service} endpoint {proxy!r} leads to "
                    f"{self.proxy.get(proxy).upstream}, which is neither a client path's "
                    f"listener nor a node's upstream of the file"
                )
            link = self._stack_link(
                proxy, nodes[serving], f"clients -> {service} (service endpoint)",
                source="clients", kind="endpoint",
                upstream_of=lambda n: f"127.0.0.1:{self.client_paths[n.name].port}",
            )  # fmt: skip
            if service == "postgres":
                self.pg_endpoint = link
            elif service == "redis":
                self.redis_endpoint = link
            else:
                self.s3_endpoint = link
        for name, proxy in spec.replication.items():
            service = spec.nodes[name].service
            primary = self.endpoint(service).target
            link = self._stack_link(
                proxy, primary, f"{name} -> {primary.name} (replication)", source=name,
                kind="replication", upstream_of=None,
            )  # fmt: skip
            if service == "postgres":
                self.replication_links[name] = link
            elif service == "redis":
                self.redis_links[name] = link
            else:
                self.storage_link = link
        for member, targets in {} if spec.patroni is None else spec.patroni.dcs_paths.items():
            self._dcs_links[member] = [
                self._stack_link(
                    proxy,
                    self.dcs_nodes[dcs],
                    f"{member} -> {dcs} (DCS)",
                    source=member,
                    kind="dcs",
                    upstream_of=None,
                )  # fmt: skip
                for dcs, proxy in targets.items()
            ]
        self._prepare_ledgers()

    # --- a team's Patroni cluster -------------------------------------------------------------

    def _follow_patroni(self) -> None:
        """Ask the team's Patroni who leads, check its members are the file's, follow it."""
        patroni = self.spec.patroni
        assert patroni is not None
        self.patroni_rest = PatroniRest(patroni.rest)
        state = self.patroni_rest.cluster(timeout=5.0)
        members = {str(m.get("name")) for m in state.get("members", [])}
        strangers = sorted(members - set(patroni.rest))
        if strangers:
            raise StackFileError(
                f"stack file {self.spec.source}, key patroni.rest: Patroni's /cluster names "
                f"member(s) {', '.join(strangers)} the file does not; name each postgres node "
                f"as its Patroni member (the name: in its patroni.yml)"
            )
        leader = running_leader(state)
        if leader is None:
            raise TopologyError(
                f"the Patroni cluster of stack file {self.spec.source} has no running leader "
                f"now (/cluster: {state.get('members')}); drill it once it is healthy"
            )
        self._follower = LeaderFollower(self.patroni_rest, leader).start()
        for name, region in patroni.dcs.items():
            paths = [p[name] for p in patroni.dcs_paths.values() if name in p]
            upstream = self.proxy.get(paths[0]).upstream if paths else "127.0.0.1:0"
            node_spec = StackNodeSpec(name, "dcs", region, upstream, upstream)
            self.dcs_nodes[name] = StackNode(node_spec, self.spec)

    @property
    def primary(self) -> PostgresNode:
        """The node behind the endpoint; under the team's Patroni, the member it says leads."""
        if self._follower is not None:
            return self.pg_nodes[self._follower.leader]
        return super().primary

    def cluster_state(self) -> dict[str, Any]:
        """Patroni's ``/cluster`` as last read (empty without a ``patroni:`` section)."""
        return {} if self._follower is None else dict(self._follower.state)

    def dcs_links(self, member: str) -> list[Link]:
        """The paths the stack file names from Patroni member ``member`` to its DCS."""
        return list(self._dcs_links.get(member, []))

    def nodes(self) -> dict[str, ServiceNode]:
        """Every node, the DCS members the file names included."""
        return {**super().nodes(), **self.dcs_nodes}

    def close(self) -> None:
        """Stop following Patroni, then what the proxied topology closes; never raises."""
        if self._follower is not None:
            self._follower.stop()
        super().close()

    def _serving(self, upstream: str) -> str | None:
        """The node an endpoint's upstream leads to: through its client path, or directly."""
        port = split_address(upstream)[1]
        for name, link in self.client_paths.items():
            if link.port == port and split_address(upstream)[0] in ("127.0.0.1", "localhost"):
                return name
        return next((n for n, s in self.spec.nodes.items() if s.upstream == upstream), None)

    def _prepare_ledgers(self) -> None:
        """Create the drill tables if missing; empty every drill ledger through the endpoints."""
        from pytest_drdrill.clients.redis import sync_client
        from pytest_drdrill.clients.s3 import ensure_bucket, s3_client

        with psycopg.connect(self.pg_endpoint.dsn(app="drdrill-stack"), autocommit=True) as conn:
            row = conn.execute(f"SELECT to_regclass('{LEDGER_TABLE}') IS NULL").fetchone()
            if row is not None and row[0]:
                conn.execute(LEDGER_DDL)
            conn.execute(f"TRUNCATE {LEDGER_TABLE}, {VALIDATION_TABLE}")
        with sync_client(self.redis_endpoint.url(), timeout=5.0) as client:
            client.delete(LEDGER_KEY)
        for node in self.s3_nodes.values():
            if node.region == BACKUP_REGION:
                continue  # the team's backup store holds backups, not the drill's bucket
            client = s3_client(node.endpoint_url, timeout=10.0)
            ensure_bucket(client, self.bucket, versioned=True)
            for page in client.get_paginator("list_object_versions").paginate(Bucket=self.bucket):
                for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    client.delete_object(
                        Bucket=self.bucket, Key=item["Key"], VersionId=item["VersionId"]
                    )
        replicated = [n for n in self.spec.replication if self.spec.nodes[n].service == "s3"]
        if replicated:
            from pytest_drdrill.topology.s3_replication import Replicator

            dr = self.s3_nodes[replicated[0]]
            self.replicator = Replicator(
                self.storage_link.endpoint_url, dr.endpoint_url, self.bucket
            )
            self.replicator.start()
