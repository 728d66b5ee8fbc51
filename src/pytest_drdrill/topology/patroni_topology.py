"""The local two-region topology with PostgreSQL run by Patroni instead of the reference.

Redis and object storage start exactly as on the reference topology; the PostgreSQL
part is a :class:`~pytest_drdrill.topology.patroni_cluster.PatroniCluster` whose
members carry the topology's usual names (``pg-primary`` leads at the start,
``pg-sync`` and ``pg-sync2`` its synchronous standbys, ``pg-dr`` the asynchronous DR
member), so a
drill written for the reference runs unchanged. Clients reach PostgreSQL through
HAProxy; :attr:`PatroniTopology.primary` is the member Patroni says leads, followed in a
background thread so reading it never blocks on a frozen member.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_drdrill import timing
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.topology.local import LocalTopology
from pytest_drdrill.topology.patroni_cluster import PatroniCluster
from pytest_drdrill.topology.patroni_rest import LeaderFollower, PatroniRest
from pytest_drdrill.topology.proxied import PRIMARY, SYNC, SYNC2

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_drdrill.proxy import ProxyClient
    from pytest_drdrill.servers.processes import RunAs
    from pytest_drdrill.topology.links import Link
    from pytest_drdrill.topology.nodes import PostgresNode, ServiceNode
    from pytest_drdrill.topology.patroni_settings import PatroniSettings
    from pytest_drdrill.topology.postgres import PostgresInstall


class PatroniTopology(LocalTopology):
    """The local topology whose PostgreSQL nodes are Patroni members behind HAProxy.

    :attr:`patroni` is the cluster (etcd, Patroni, HAProxy and their links). The WAL
    spool of the reference topology is not built: Patroni's members do not archive.

    .. versionadded:: 0.6
    """

    def __init__(
        self,
        workdir: Path,
        dataroot: Path,
        proxy: ProxyClient,
        *,
        settings: PatroniSettings | None = None,
        executables: dict[str, str] | None = None,
    ) -> None:
        """See :meth:`LocalTopology.build`, which passes ``settings`` and ``executables``.

        :param settings: the team's Patroni settings (``--drill-patroni-config``), or
            ``None`` for the drill's defaults.
        :param executables: ``patroni``, ``etcd`` and ``haproxy`` programs by name.
        """
        super().__init__(workdir, dataroot, proxy)
        self.patroni: PatroniCluster | None = None
        self.settings = settings
        self.executables: dict[str, str] = dict(executables or {})
        self.patroni_rest = PatroniRest({})
        self._follower = LeaderFollower(self.patroni_rest, PRIMARY)
        self._install: PostgresInstall | None = None
        self._run_as: RunAs | None = None

    def _start_postgres(
        self, data: Path, install: PostgresInstall, template: Path, run_as: RunAs | None,
        t0: float,
    ) -> None:  # fmt: skip
        settings = self.settings
        self._install, self._run_as = install, run_as
        cluster = PatroniCluster.build(
            self.workdir / "patroni",
            dataroot=data,
            proxy=self.proxy,
            bin_dir=install.bindir,
            run_as=run_as,
            dcs=None if settings is None else settings.dcs,
            tags=None if settings is None else settings.tags,
            template=template,
            etcd=self.executables.get("etcd", "etcd"),
            patroni=self.executables.get("patroni", "patroni"),
            haproxy=self.executables.get("haproxy", "haproxy"),
        )
        self.patroni = cluster
        self.pg_nodes = dict(cluster.members)
        self._sync_names = (SYNC, SYNC2)
        primary_path = cluster.links[f"pg-{PRIMARY}"]
        for name in cluster.members:
            if name != PRIMARY:
                self.replication_links[name] = primary_path
        for member in cluster.members.values():
            self._client_path(member)
        self.pg_endpoint = cluster.endpoint
        self.patroni_rest.urls.update({n: m.rest_url() for n, m in cluster.members.items()})
        self._follower.start()
        self.timings.update({f"patroni {k}": v for k, v in cluster.timings.items()})
        self.timings["postgres streaming"] = timing.monotonic() - t0

    # --- who leads ----------------------------------------------------------------------------

    @property
    def primary(self) -> PostgresNode:
        """The member Patroni last reported as running leader."""
        return self.pg_nodes[self._follower.leader]

    def cluster_state(self) -> dict[str, Any]:
        """Patroni's ``/cluster`` as last read by the leader follower (may be a moment old)."""
        return dict(self._follower.state)

    def dcs_links(self, member: str) -> list[Link]:
        """The paths from Patroni member ``member`` to every etcd member."""
        return [] if self.patroni is None else self.patroni.dcs_links(member)

    def nodes(self) -> dict[str, ServiceNode]:
        """Every node, the etcd members included: a region's loss takes its etcd members too."""
        etcd = [] if self.patroni is None else self.patroni.etcd
        return {**super().nodes(), **{member.name: member for member in etcd}}

    def ledger_ids_of(self, name: str) -> set[int]:
        """The ledger ids member ``name`` committed, read from a copy of its data directory."""
        member = self.pg_nodes[name]
        if self.patroni is None or member is not self.patroni.members.get(name):
            raise TopologyError(f"{name} is not a Patroni member of this topology")
        assert self._install is not None
        datadir = self.patroni.members[name].datadir
        return self._ledger_on_disk(member, datadir, self._install, self._run_as)

    def links(self) -> list[Any]:
        """Every proxied path: the topology's and the Patroni cluster's."""
        cluster = [] if self.patroni is None else list(self.patroni.links.values())
        return [*super().links(), *(link for link in cluster if link not in self._links)]

    def close(self) -> None:
        """Stop following, stop the Patroni cluster, then everything else; never raises."""
        self._follower.stop()
        if self.patroni is not None:
            self.patroni.close()
        super().close()
