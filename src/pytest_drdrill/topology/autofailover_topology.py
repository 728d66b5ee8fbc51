"""The local two-region topology with PostgreSQL run by pg_auto_failover.

Redis and object storage start as on the reference topology; the PostgreSQL part is an
:class:`~pytest_drdrill.topology.autofailover_cluster.AutofailoverCluster` whose keepers
carry the usual names (``pg-primary`` is primary at the start, ``pg-sync`` the
synchronous standby, ``pg-dr`` the asynchronous DR node), so drills written for the
reference run unchanged. Clients connect with the multi-host URI ``pg_autoctl show uri``
gives, ``target_session_attrs=read-write``, each host a client path of the fault proxy:
libpq, not a proxy in front, finds the primary, as the team's applications would.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from pytest_drdrill import timing
from pytest_drdrill.topology.autofailover_cluster import AutofailoverCluster
from pytest_drdrill.topology.links import Link
from pytest_drdrill.topology.local import LocalTopology
from pytest_drdrill.topology.proxied import PRIMARY, SYNC

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from pytest_drdrill.proxy import ProxyClient
    from pytest_drdrill.servers.processes import RunAs
    from pytest_drdrill.topology.nodes import PostgresNode, ServiceNode
    from pytest_drdrill.topology.postgres import PostgresInstall


class MultiHostEndpoint(Link):
    """The clients' PostgreSQL endpoint: every node's client path in one libpq URI.

    No proxy entry of its own: :meth:`dsn` lists the client paths in the order the
    monitor's ``show uri`` lists the nodes, and libpq tries them until one is writable.
    Repointing means nothing here (libpq finds the primary); cutting it cuts every path.
    """

    def __init__(self, paths: list[Link], primary: ServiceNode) -> None:
        self.paths = paths
        self.kind = "endpoint"
        self.label = "clients -> postgres (multi-host URI)"
        self.source = "clients"
        self.target = primary
        self.proxy_name = ""
        self.host = ",".join(p.host for p in paths)
        self.port = paths[0].port
        self.upstream = ""

    @property
    def address(self) -> str:
        """Every host:port, comma-separated."""
        return ",".join(p.address for p in self.paths)

    def dsn(self, *, app: str = "drdrill") -> str:
        """``host=a,b,c port=x,y,z ... target_session_attrs=read-write connect_timeout=2``.

        ``connect_timeout`` applies per host: without it a frozen first host (it accepts
        the TCP connection and never answers) holds libpq there and the writable host
        later in the list is never tried.
        """
        return (
            f"host={self.host} port={','.join(str(p.port) for p in self.paths)} user=postgres "
            f"dbname=postgres application_name={app} target_session_attrs=read-write "
            "connect_timeout=2"
        )

    def repoint(self, node: ServiceNode) -> None:
        """Only remembers ``node``: libpq finds the primary among the hosts itself."""
        self.target = node

    def follow(self) -> None:
        """Nothing to follow: the paths follow their nodes."""

    def cut(self) -> None:
        """Cut every client path."""
        for path in self.paths:
            path.cut()

    def restore(self) -> None:
        """Undo :meth:`cut`."""
        for path in self.paths:
            path.restore()

    def remove(self) -> None:
        """Nothing of its own to remove: the paths are the topology's."""


class AutofailoverTopology(LocalTopology):
    """The local topology whose PostgreSQL nodes are pg_auto_failover keepers.

    :attr:`autofailover` is the cluster. The WAL spool of the reference is not built.

    .. versionadded:: 0.6
    """

    def __init__(
        self,
        workdir: Path,
        dataroot: Path,
        proxy: ProxyClient,
        *,
        settings: Mapping[str, Any] | None = None,
        executables: dict[str, str] | None = None,
    ) -> None:
        """See :meth:`LocalTopology.build`, which passes ``settings`` and ``executables``.

        :param settings: keyword arguments for :meth:`AutofailoverCluster.build`
            (``monitor_settings``, ``priorities``, ``number_sync_standbys``).
        """
        super().__init__(workdir, dataroot, proxy)
        self.autofailover: AutofailoverCluster | None = None
        self.settings = dict(settings or {})
        self.executables = dict(executables or {})
        self._install: PostgresInstall | None = None
        self._run_as: RunAs | None = None
        self._primary = PRIMARY
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_state: list[dict[str, Any]] = []

    def _start_postgres(
        self, data: Path, install: PostgresInstall, template: Path, run_as: RunAs | None,
        t0: float,
    ) -> None:  # fmt: skip
        self._install, self._run_as = install, run_as
        cluster = AutofailoverCluster.build(
            self.workdir / "autofailover",
            dataroot=data,
            proxy=self.proxy,
            bin_dir=install.bindir,
            run_as=run_as,
            template=template,
            pg_autoctl=self.executables.get("pg_autoctl", "pg_autoctl"),
            **self.settings,
        )
        self.autofailover = cluster
        self.pg_nodes = dict(cluster.keepers)
        self._sync_names = (SYNC,)
        for name in cluster.keepers:
            if name != PRIMARY:
                self.replication_links[name] = cluster.links[f"pg-{PRIMARY}"]
        paths = [self._client_path(k) for k in cluster.keepers.values()]
        self.pg_endpoint = MultiHostEndpoint(paths, cluster.keepers[PRIMARY])
        self._thread = threading.Thread(target=self._follow, name="autofailover-follower")
        self._thread.daemon = True
        self._thread.start()
        self.timings.update({f"pg_auto_failover {k}": v for k, v in cluster.timings.items()})
        self.timings["postgres streaming"] = timing.monotonic() - t0

    def _follow(self) -> None:
        """Read the monitor's node table every 100 ms: who is primary, and the states."""
        while not self._stop.wait(0.1):
            cluster = self.autofailover
            if cluster is None:
                return
            try:
                self.last_state = cluster.node_states(timeout=0.5)
            except Exception:  # the monitor may be down in a drill: keep the last answer
                continue
            for row in self.last_state:
                if row["reportedstate"] in ("primary", "single", "wait_primary") and row[
                    "goalstate"
                ] in ("primary", "single", "wait_primary"):
                    self._primary = str(row["nodename"])
                    self.pg_endpoint.target = self.pg_nodes[self._primary]

    @property
    def primary(self) -> PostgresNode:
        """The keeper the monitor last reported as primary."""
        return self.pg_nodes[self._primary]

    def nodes(self) -> dict[str, ServiceNode]:
        """Every node, the monitor included: a primary-region loss takes it too."""
        monitor = [] if self.autofailover is None else [self.autofailover.monitor]
        return {**super().nodes(), **{m.name: m for m in monitor if m is not None}}

    def ledger_ids_of(self, name: str) -> set[int]:
        """The ledger ids keeper ``name`` committed, read from a copy of its data directory."""
        node = self.pg_nodes[name]
        assert self._install is not None and self.autofailover is not None
        keeper = self.autofailover.keepers[name]
        return self._ledger_on_disk(node, keeper.datadir, self._install, self._run_as)

    def links(self) -> list[Any]:
        """Every proxied path: the topology's and the cluster's."""
        cluster = [] if self.autofailover is None else list(self.autofailover.links.values())
        return [*super().links(), *cluster]

    def close(self) -> None:
        """Stop following, stop the cluster, then everything else; never raises."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self.autofailover is not None:
            self.autofailover.close()
        super().close()
