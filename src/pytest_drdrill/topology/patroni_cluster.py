"""A Patroni cluster over two regions, every path through the fault proxy.

Three etcd members (two in the primary region, one in DR), three Patroni members
(two in the primary region, one in DR tagged ``nosync`` so it stays asynchronous) and
HAProxy in front of them. Patroni reaches etcd, its peers' REST APIs and its upstream
for replication through fault-proxy links, HAProxy reaches each node's PostgreSQL and
REST API through the same links, and clients reach HAProxy through one endpoint link:
a partition cut in the proxy therefore reaches Patroni's own traffic. etcd's peer
traffic does not pass the proxy yet.

Measured on a 2-core machine shared with other work (ttl 10, loop_wait 1,
retry_timeout 4, bootstrap from the session template): cold start 8.4-11.6 s, of which
up to 2 s is etcd probing peers that are not listening yet and ~2 s Patroni's loop
naming the synchronous standby in the DCS; node loss to the first write through HAProxy
10.3-11.1 s, the leader lease's ttl dominating.
"""

from __future__ import annotations

import concurrent.futures
import logging
import shutil
import uuid
from typing import TYPE_CHECKING, Any

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.ledger import LEDGER_DDL
from pytest_drdrill.topology.etcd import EtcdMember, http_json, start_members
from pytest_drdrill.topology.haproxy import LocalHAProxy
from pytest_drdrill.topology.links import Link
from pytest_drdrill.topology.patroni import PatroniMember
from pytest_drdrill.topology.proxied import DR, PRIMARY, SYNC, SYNC2

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from pytest_drdrill.proxy import ProxyClient
    from pytest_drdrill.servers.processes import RunAs
    from pytest_drdrill.topology.nodes import ServiceNode

logger = logging.getLogger(__name__)

#: ``(name, region)`` of the etcd members and the Patroni members.
ETCD_MEMBERS = (("etcd-1", "primary"), ("etcd-2", "primary"), ("etcd-dr", "dr"))
PATRONI_MEMBERS = ((PRIMARY, "primary"), (SYNC, "primary"), (SYNC2, "primary"), (DR, "dr"))
#: The DR member stays asynchronous: Patroni never picks it as synchronous standby.
DR_TAGS: dict[str, Any] = {"nosync": True}


class PatroniCluster:
    """A running Patroni + etcd + HAProxy cluster for one drill.

    Build it with :meth:`build`; :meth:`close` removes every process, proxy entry and
    data directory. :attr:`endpoint` is where clients connect (HAProxy, through the
    proxy); :attr:`members` are the nodes, each a
    :class:`~pytest_drdrill.topology.nodes.PostgresNode`.
    """

    def __init__(self, workdir: Path, dataroot: Path, proxy: ProxyClient) -> None:
        self.workdir = workdir
        self.proxy = proxy
        self.id = uuid.uuid4().hex[:8]
        self.scope = f"drdrill-{self.id}"
        self.data = dataroot / self.id
        self.etcd: list[EtcdMember] = []
        self.members: dict[str, PatroniMember] = {}
        self.haproxy: LocalHAProxy | None = None
        #: Links by name: ``etcd-<etcd member>-<member>``, ``pg-<member>``,
        #: ``rest-<member>``, ``endpoint``.
        self.links: dict[str, Link] = {}
        self.endpoint: Link
        self.timings: dict[str, float] = {}

    @classmethod
    def build(
        cls,
        workdir: Path,
        *,
        dataroot: Path,
        proxy: ProxyClient,
        bin_dir: Path,
        run_as: RunAs | None,
        dcs: Mapping[str, Any] | None = None,
        tags: Mapping[str, Mapping[str, Any]] | None = None,
        etcd: str = "etcd",
        patroni: str = "patroni",
        haproxy: str = "haproxy",
        template: Path | None = None,
        timeout: float = 60.0,
    ) -> PatroniCluster:
        """Start the cluster; return once a leader exists and both standbys stream.

        :param workdir: a directory for logs.
        :param dataroot: a directory the server account can reach (short path: sockets).
        :param proxy: the fault proxy that carries every path.
        :param bin_dir: PostgreSQL's binaries.
        :param run_as: the account servers run as when pytest runs as root.
        :param dcs: bootstrap DCS settings over the defaults (e.g. ``ttl``).
        :param tags: extra Patroni tags per member name.
        :param template: the session's template data directory, copied to bootstrap the
            cluster instead of running ``initdb``; ``None`` runs ``initdb``.
        :param timeout: seconds the whole start may take.
        :raises TopologyError: when it does not come up; what was started is removed.
        """
        cluster = cls(workdir, dataroot, proxy)
        try:
            cluster._start(
                bin_dir, run_as, dcs, tags or {}, (etcd, patroni, haproxy), template, timeout
            )
        except BaseException:
            cluster.close()
            raise
        return cluster

    def _link(self, name: str, target: ServiceNode, label: str, source: str, **kw: Any) -> Link:
        link = Link(self.proxy, f"drdrill-{self.id}-{name}", target, label, source=source, **kw)
        self.links[name] = link
        return link

    def _start(
        self,
        bin_dir: Path,
        run_as: RunAs | None,
        dcs: Mapping[str, Any] | None,
        tags: Mapping[str, Mapping[str, Any]],
        executables: tuple[str, str, str],
        template: Path | None,
        timeout: float,
    ) -> None:
        etcd, patroni, haproxy = executables
        t0 = timing.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data.mkdir()
        if run_as is not None:
            run_as.own(self.data)
        self.etcd = [
            EtcdMember(
                name, region, self.data / name, log=self.workdir / f"{name}.log",
                run_as=run_as, etcd=etcd, token=self.scope,
            )
            for name, region in ETCD_MEMBERS
        ]  # fmt: skip
        start_members(self.etcd)
        self.timings["etcd healthy"] = timing.monotonic() - t0
        for name, region in PATRONI_MEMBERS:
            # Each member reaches etcd over paths of its own, so one member can be cut
            # off from the DCS while the others still reach it.
            etcd_hosts = [
                self._link(f"etcd-{e.name}-{name}", e, f"{name} -> {e.name}", name).address
                for e in self.etcd
            ]
            member_tags = {**(DR_TAGS if region == "dr" else {}), **tags.get(name, {})}
            member = PatroniMember(
                name, region, self.data / name, scope=self.scope, etcd_hosts=etcd_hosts,
                bin_dir=bin_dir, log=self.workdir / f"{name}.log", run_as=run_as,
                tags=member_tags, dcs=dcs, patroni=patroni, template=template,
            )  # fmt: skip
            pg = self._link(f"pg-{name}", member, f"peers -> {name}", "peers")
            rest = self._link(
                f"rest-{name}", member, f"peers -> {name} (Patroni REST)", "peers",
                upstream_of=lambda n: n.rest_address,
            )  # fmt: skip
            member.connect_address = pg.address
            member.rest_connect_address = rest.address
            self.members[name] = member
        # Whoever wins the initialize key bootstraps the cluster: the others start once
        # the first member leads, so the drills' names hold (pg-primary leads, pg-sync is
        # its synchronous standby) as they do under the reference failover.
        first, *others = self.members.values()
        self._start_members([first], timeout)
        self.timings["patroni answering"] = timing.monotonic() - t0
        self.wait_leader(timeout=t0 + timeout - timing.monotonic())
        self.timings["leader"] = timing.monotonic() - t0
        self._start_members(others, timeout)
        backends = [
            (n, self.links[f"pg-{n}"].address, self.links[f"rest-{n}"].address)
            for n in self.members
        ]
        self.haproxy = LocalHAProxy(
            self.data / "haproxy",
            backends,
            log=self.workdir / "haproxy.log",
            run_as=run_as,
            haproxy=haproxy,
        )
        self.haproxy.start()
        self.endpoint = self._link(
            "endpoint", self.haproxy, "clients -> postgres (HAProxy)", "clients", kind="endpoint"
        )
        deadline = t0 + timeout
        leader = self.wait_leader(timeout=deadline - timing.monotonic())
        self.wait_streaming(timeout=deadline - timing.monotonic())
        self.timings["replicas streaming"] = timing.monotonic() - t0
        if template is None:  # the template already holds the drill tables
            with psycopg.connect(self.members[leader].dsn(), autocommit=True) as conn:
                conn.execute(LEDGER_DDL)
        self.timings["ready"] = timing.monotonic() - t0

    def _start_members(self, members: list[PatroniMember], timeout: float) -> None:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(members))) as pool:
            futures = [pool.submit(m.start, timeout=timeout) for m in members]
            errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
        # A member that lost a port race runs on new ports: its paths must follow.
        for member in members:
            for kind in ("pg", "rest"):
                self.links[f"{kind}-{member.name}"].follow()

    # --- observation ------------------------------------------------------------------------

    def cluster_state(self, *, timeout: float = 1.0) -> dict[str, Any]:
        """Patroni's REST ``/cluster`` from the first member that answers.

        :raises TopologyError: when none answers.
        """
        for member in self.members.values():
            try:
                reply = http_json(member.rest_url("/cluster"), timeout=timeout)
            except (OSError, ValueError):
                continue
            if isinstance(reply, dict) and "members" in reply:
                return reply
        raise TopologyError(f"no Patroni member of {self.scope} answers /cluster")

    def roles(self) -> dict[str, tuple[str, str]]:
        """``{member: (role, state)}`` as ``/cluster`` reports them."""
        members = self.cluster_state().get("members", [])
        return {m["name"]: (str(m.get("role")), str(m.get("state"))) for m in members}

    def leader(self) -> str | None:
        """The member holding the leader lease and running, ``None`` when there is none."""
        try:
            roles = self.roles()
        except TopologyError:
            return None
        for name, (role, state) in roles.items():
            if role == "leader" and state == "running":
                return name
        return None

    def wait_leader(self, *, timeout: float, other_than: str | None = None) -> str:
        """Wait for a running leader (other than ``other_than``) and return its name."""
        deadline = timing.monotonic() + timeout
        while timing.monotonic() < deadline:
            name = self.leader()
            if name is not None and name != other_than:
                return name
            timing.sleep(0.05)
        raise TopologyError(
            f"no Patroni leader{f' other than {other_than}' if other_than else ''} within "
            f"{timeout:.0f}s; logs in {self.workdir}"
        )

    def wait_streaming(self, *, timeout: float) -> None:
        """Wait until every other member streams from the leader, one of them synchronously.

        Read from the leader's ``pg_stat_replication``: Patroni 3.0.2 reports a streaming
        replica's state only as ``running``.
        """
        deadline = timing.monotonic() + timeout
        seen: dict[str, tuple[str, str]] = {}
        roles: dict[str, tuple[str, str]] = {}
        while timing.monotonic() < deadline:
            try:
                roles = self.roles()
            except TopologyError:
                roles = {}
            leader = next((n for n, (r, st) in roles.items() if r == "leader"), None)
            # The DCS must name the synchronous standby too: until it does, Patroni may
            # promote any replica, the asynchronous DR member included.
            named_sync = any(r == "sync_standby" for r, _ in roles.values())
            if leader is not None and named_sync:
                try:
                    seen = self._replication(self.members[leader])
                except psycopg.Error:
                    seen = {}
                others = set(self.members) - {leader}
                streaming = {n for n, (state, _) in seen.items() if state == "streaming"}
                sync = any(s == "sync" for _, s in seen.values())
                if others <= streaming and sync:
                    return
            timing.sleep(0.05)
        raise TopologyError(
            f"Patroni standbys did not all stream within {timeout:.0f}s: pg_stat_replication "
            f"showed {seen or 'nothing'}, /cluster {roles}; logs in {self.workdir}"
        )

    @staticmethod
    def _replication(leader: PatroniMember) -> dict[str, tuple[str, str]]:
        with psycopg.connect(leader.dsn(), autocommit=True, connect_timeout=2) as conn:
            rows = conn.execute(
                "SELECT application_name, state, sync_state FROM pg_stat_replication"
            ).fetchall()
        return {str(r[0]): (str(r[1]), str(r[2])) for r in rows}

    def reform_dcs(self, region: str, *, timeout: float = 15.0) -> EtcdMember:
        """Make the one etcd member left in ``region`` a cluster of its own, its keys kept.

        What a lost quorum leaves an operator (etcd's disaster recovery): the survivor
        restarts with ``--force-new-cluster``. The links to it follow it should the
        restart have had to take another port.

        :raises TopologyError: when ``region`` holds no etcd member, or more than one.
        """
        survivors = [e for e in self.etcd if e.region == region and not e.fenced]
        if len(survivors) != 1:
            raise TopologyError(
                f"re-forming etcd in region {region} needs exactly one member there; "
                f"found {[e.name for e in survivors]}"
            )
        member = survivors[0].restart_alone(timeout=timeout)
        for link in self.links.values():
            if link.target is member:
                link.repoint(member)
        return member

    def dcs_links(self, member: str) -> list[Link]:
        """The paths from Patroni member ``member`` to every etcd member."""
        return [self.links[f"etcd-{e.name}-{member}"] for e in self.etcd]

    def nodes(self) -> dict[str, PatroniMember]:
        """The Patroni members by name (each a PostgreSQL node)."""
        return dict(self.members)

    # --- teardown ---------------------------------------------------------------------------

    def close(self) -> None:
        """Kill every process, delete every proxy entry and the data; never raises."""
        servers: list[Any] = [self.haproxy, *self.members.values(), *self.etcd]
        for server in servers:
            if server is not None:
                server.cleanup()
        for link in self.links.values():
            link.remove()
        # A second close (a test closed it, then its fixture) has nothing left to remove.
        self.haproxy, self.members, self.etcd, self.links = None, {}, [], {}
        shutil.rmtree(self.data, ignore_errors=True)
