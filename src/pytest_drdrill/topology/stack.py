"""The running-stack backend (``--drill-backend=stack``): drills on a stack started by others.

A YAML file (``--drill-stack`` / ``drill_stack``) describes the stack: where each node
answers, the fault proxy (Toxiproxy's API) that carries every path, the names of the
proxies that are the paths, and the faults the stack's owners allow. The backend starts
and stops nothing. It reads the stack's current shape (which node each endpoint leads
to) from the proxy, empties the drills' own ledgers, and injects only what the file
allows: any other fault is refused with an error naming the file, the fault and the key
to add. ``fixtures/stack-compose.yaml`` describes the stack of ``docker-compose.yml``.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from pytest_drdrill.errors import FaultError, TopologyError
from pytest_drdrill.ledger import LEDGER_DDL, LEDGER_KEY, LEDGER_TABLE, VALIDATION_TABLE
from pytest_drdrill.proxy import ProxyClient
from pytest_drdrill.proxy.client import split_address
from pytest_drdrill.topology._protocol import BACKUP_REGION
from pytest_drdrill.topology.links import Link
from pytest_drdrill.topology.patroni_rest import LeaderFollower, PatroniRest, running_leader
from pytest_drdrill.topology.postgres import conninfo
from pytest_drdrill.topology.proxied import ProxiedTopology
from pytest_drdrill.topology.stack_file import StackFileError, StackNodeSpec, StackSpec

if TYPE_CHECKING:
    import redis

    from pytest_drdrill.proxy import ProxyInfo, ToxicInfo
    from pytest_drdrill.proxy.identity import FaultProxyIdentity
    from pytest_drdrill.topology._protocol import ServiceNode
    from pytest_drdrill.topology.nodes import PostgresNode

logger = logging.getLogger(__name__)


class _GuardedProxy(ProxyClient):
    """The stack's fault proxy, refusing what the stack file does not allow.

    Healing (enabling a path, removing a toxic) and repointing (failover) always pass.
    """

    def __init__(self, spec: StackSpec) -> None:
        super().__init__(spec.proxy_api)
        self.spec = spec

    def update(
        self,
        name: str,
        *,
        listen: str | None = None,
        upstream: str | None = None,
        enabled: bool | None = None,
    ) -> ProxyInfo:
        """Update a proxy; disabling it needs ``cut``."""
        if enabled is False:
            self.spec.require("cut", f"cutting path {name!r}")
        return super().update(name, listen=listen, upstream=upstream, enabled=enabled)

    def add_toxic(self, proxy: str, type: str, **options: Any) -> ToxicInfo:  # noqa: A002
        """Add a toxic; its type must be allowed."""
        self.spec.require(type, f"a {type} toxic on path {proxy!r}")
        return super().add_toxic(proxy, type, **options)


class StackLink(Link):
    """A path of the stack: an existing proxy, read, never created nor deleted.

    :param host: where pytest reaches the proxy's listeners.
    """

    def __init__(
        self,
        client: ProxyClient,
        proxy_name: str,
        target: ServiceNode,
        label: str,
        *,
        host: str,
        source: str,
        upstream_of: Any,
        kind: str,
    ) -> None:
        self.client = client
        self.kind = kind
        self.proxy_name = proxy_name
        self.label = label
        self.source = source
        self.target = target
        self._upstream_of = upstream_of or (lambda node: node.address)
        info = client.get(proxy_name)
        self.upstream = info.upstream
        self.host = host
        self.port = info.port

    def remove(self) -> None:
        """Nothing: the stack's proxies are its own."""


class StackNode:
    """A node of the stack; faults on it need its container and the file's permission.

    :param spec: the node's entry in the stack file.
    :param stack: the whole file, for permissions.

    .. versionadded:: 0.4
    """

    def __init__(self, spec: StackNodeSpec, stack: StackSpec) -> None:
        self.spec = spec
        self.stack = stack
        self.name = spec.name
        self.region = spec.region
        self.host, self.port = split_address(spec.address)
        self.fenced = False
        self._container: Any = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.host}:{self.port}>"

    @property
    def address(self) -> str:
        """``host:port`` where the fault proxy reaches this node (its upstream)."""
        return self.spec.upstream

    def _docker(self, operation: str) -> Any:
        self.stack.require(operation, f"{operation} of {self.name}")
        if self.spec.container is None:
            raise FaultError(
                f"{operation} of {self.name} needs its container; stack file "
                f"{self.stack.source} names none: add nodes.{self.name}.container"
            )
        if self._container is None:
            from pytest_drdrill.topology.docker_engine import connect

            self._container = connect().containers.get(self.spec.container)
        self._container.reload()
        return self._container

    def crash(self) -> None:
        """``docker kill`` of the node's container, when the file allows ``crash``."""
        container = self._docker("crash")
        if container.status in ("running", "paused"):
            container.kill()

    def freeze(self) -> None:
        """``docker pause``, when the file allows ``freeze``."""
        container = self._docker("freeze")
        if container.status == "running":
            container.pause()

    def thaw(self) -> None:
        """Undo :meth:`freeze` (healing is always allowed)."""
        if self._container is not None:
            self._container.reload()
            if self._container.status == "paused":
                self._container.unpause()

    def stop(self) -> None:
        """``docker stop``, when the file allows ``stop``."""
        self._docker("stop").stop(timeout=10)

    def fence(self) -> None:
        """Failover's fencing: the container is killed when the file allows ``crash``.

        Otherwise every path to the node is cut at the fault proxy, so nothing reaches it
        any more (a fence at the network, for stacks whose servers may not be killed).
        """
        self.fenced = True
        if self.spec.container is not None and "crash" in self.stack.allowed:
            self.crash()

    def is_running(self) -> bool:
        """Whether its container runs; a node without a container counts as running."""
        if self.spec.container is None or self._container is None:
            return not self.fenced
        self._container.reload()
        return bool(self._container.status in ("running", "paused"))

    def pids(self) -> list[int]:
        """None: the stack's processes are not this machine's to account for."""
        return []


class StackPostgresNode(StackNode):
    """A PostgreSQL node of the stack."""

    def dsn(self, *, app: str = "drdrill") -> str:
        """Connection string to this node directly."""
        return conninfo(self.host, self.port, app=app)


class StackRedisNode(StackNode):
    """A Redis node of the stack."""

    def url(self) -> str:
        """A ``redis://`` URL straight to this node."""
        return f"redis://{self.host}:{self.port}/0"

    def client(self, *, timeout: float = 2.0) -> redis.Redis:
        """A blocking client straight to this node; close it after use."""
        from pytest_drdrill.clients.redis import sync_client

        return sync_client(self.url(), timeout=timeout)


class StackS3Node(StackNode):
    """An object store of the stack."""

    @property
    def endpoint_url(self) -> str:
        """``http://host:port`` straight to this store."""
        return f"http://{self.host}:{self.port}"


class StackTopology(ProxiedTopology):
    """The running stack, as a :class:`~pytest_drdrill.topology._protocol.Topology`.

    It has none of the optional capabilities: the stack's own failover decides Redis
    (no Sentinel of ours), and its disks and WAL are not ours to read.

    .. versionadded:: 0.4
    """

    backend = "stack"

    def __init__(self, workdir: Path, dataroot: Path, proxy: _GuardedProxy) -> None:
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
        topo = cls(workdir, dataroot, _GuardedProxy(spec))
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


class StackBackend:
    """Session resources of the running-stack backend: its file and its fault proxy.

    :param stack_file: the stack's description (``--drill-stack`` / ``drill_stack``).
    :param basedir: a session temp directory.

    .. versionadded:: 0.4
    """

    name = "stack"

    def __init__(self, stack_file: Path, basedir: Path) -> None:
        self.stack_file = stack_file
        self.basedir = basedir
        self.reaped: list[str] = []
        self.versions: dict[str, str] = {}
        self.dataroot: Path | None = None
        self._proxy_identity: FaultProxyIdentity | None = None

    def fault_proxy(self) -> FaultProxyIdentity:
        """The stack's own fault proxy, as its API names its version."""
        from pytest_drdrill.proxy import identity

        if self._proxy_identity is not None:
            return self._proxy_identity
        try:
            spec = StackSpec.load(self.stack_file)
        except (TopologyError, OSError) as exc:  # start() reports it; the header must not fail
            return identity.FaultProxyIdentity("toxiproxy", f"unknown ({exc})", "")
        return identity.of_url(spec.proxy_api)

    def start(self) -> StackBackend:
        """Read the stack file and check that the fault proxy answers.

        :raises StackFileError: when the file is bad.
        :raises ProxyError: when the fault proxy does not answer.
        """
        self.spec = StackSpec.load(self.stack_file)
        self.proxy = _GuardedProxy(self.spec)
        from pytest_drdrill.proxy.identity import from_api_version

        self._proxy_identity = from_api_version(self.proxy.version(), where=self.spec.proxy_api)
        self.versions["fault proxy"] = self._proxy_identity.label
        self.dataroot = Path(tempfile.mkdtemp(prefix=f"drdrill-stack-{uuid.uuid4().hex[:6]}-"))
        return self

    def topology(
        self, workdir: Path, *, sentinel: bool = False, patroni: bool = False
    ) -> StackTopology:
        """The stack, ready for one drill: ledgers emptied, current primaries read.

        :param patroni: the drill runs under ``--drill-postgres-failover=patroni``: the
            file must name the team's Patroni cluster.
        :raises TopologyError: with ``sentinel`` (the stack decides its own failover), or
            when the file's ``patroni:`` section and the HA stack chosen disagree.
        """
        if self.dataroot is None:
            raise TopologyError("the stack backend is not started: call start() first")
        if patroni and self.spec.patroni is None:
            raise StackFileError(
                f"--drill-postgres-failover=patroni on the stack backend drills the team's "
                f"Patroni: stack file {self.stack_file} has no patroni: section; add "
                f"patroni.rest with each postgres node's REST URL (and patroni.haproxy)"
            )
        if not patroni and self.spec.patroni is not None:
            raise TopologyError(
                f"stack file {self.stack_file} names a Patroni cluster (patroni:), which "
                f"decides its own failovers; run with --drill-postgres-failover=patroni so "
                f"the reference orchestrator does not fail over beside it"
            )
        if sentinel:
            raise TopologyError(
                "--drill-redis-failover=sentinel does not apply to the stack backend: the "
                "stack runs its own failover, or the reference orchestrator does"
            )
        workdir.mkdir(parents=True, exist_ok=True)
        return StackTopology.attach(self.spec, workdir, self.dataroot)

    def close(self) -> None:
        """Nothing of the stack is stopped; only the scratch directory goes."""
        import shutil

        if self.dataroot is not None:
            shutil.rmtree(self.dataroot, ignore_errors=True)
            self.dataroot = None
