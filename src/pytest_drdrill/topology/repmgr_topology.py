"""The local two-region topology with PostgreSQL run by repmgr instead of the reference.

Redis and object storage start as on the reference topology; the PostgreSQL part is a
:class:`~pytest_drdrill.topology.repmgr_cluster.RepmgrCluster` whose nodes carry the
usual names, so a drill written for the reference runs unchanged. Clients reach
PostgreSQL through HAProxy; :attr:`RepmgrTopology.primary` is the node last seen out of
recovery, followed in a background thread so reading it never blocks on a frozen node.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from typing import TYPE_CHECKING, Any

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.topology.local import LocalTopology
from pytest_drdrill.topology.proxied import PRIMARY, SYNC
from pytest_drdrill.topology.repmgr_cluster import RepmgrCluster

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from pytest_drdrill.proxy import ProxyClient
    from pytest_drdrill.servers.processes import RunAs
    from pytest_drdrill.topology.nodes import PostgresNode, ServiceNode
    from pytest_drdrill.topology.postgres import PostgresInstall

logger = logging.getLogger(__name__)

#: Seconds between two looks at who is out of recovery.
FOLLOW_INTERVAL = 0.2


def in_recovery(dsn: str) -> bool | None:
    """``pg_is_in_recovery()`` asked directly, bounded; ``None`` without an answer."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=1) as conn:
            conn.execute("SET statement_timeout = 500")
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    except psycopg.Error:
        return None
    return None if row is None else bool(row[0])


class RepmgrTopology(LocalTopology):
    """The local topology whose PostgreSQL nodes are a repmgr cluster behind HAProxy.

    .. versionadded:: 0.8
    """

    def __init__(
        self,
        workdir: Path,
        dataroot: Path,
        proxy: ProxyClient,
        *,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        executables: dict[str, str] | None = None,
    ) -> None:
        """See :meth:`LocalTopology.build`, which passes ``settings`` and ``executables``.

        :param settings: repmgr.conf settings per node (``"*"`` for all), or ``None``.
        :param executables: ``haproxy`` by name.
        """
        super().__init__(workdir, dataroot, proxy)
        self.repmgr: RepmgrCluster | None = None
        self.settings = dict(settings or {})
        self.executables = dict(executables or {})
        self._leader = PRIMARY
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._install: PostgresInstall | None = None
        self._run_as: RunAs | None = None

    def _start_postgres(
        self, data: Path, install: PostgresInstall, template: Path, run_as: RunAs | None,
        t0: float,
    ) -> None:  # fmt: skip
        self._install, self._run_as = install, run_as
        cluster = RepmgrCluster.build(
            self.workdir / "repmgr",
            dataroot=data,
            proxy=self.proxy,
            bin_dir=install.bindir,
            template=template,
            run_as=run_as,
            settings=self.settings,
            haproxy=self.executables.get("haproxy", "haproxy"),
        )
        self.repmgr = cluster
        self.pg_nodes = dict(cluster.members)
        self._sync_names = (SYNC,)
        primary_path = cluster.links[f"pg-{PRIMARY}"]
        for name in cluster.members:
            if name != PRIMARY:
                self.replication_links[name] = primary_path
        for member in cluster.members.values():
            self._client_path(member)
        self.pg_endpoint = cluster.endpoint
        self._thread = threading.Thread(target=self._follow, name="drdrill-repmgr", daemon=True)
        self._thread.start()
        self.timings.update({f"repmgr {k}": v for k, v in cluster.timings.items()})
        self.timings["postgres streaming"] = timing.monotonic() - t0

    # --- who leads ----------------------------------------------------------------------------

    def out_of_recovery(self) -> list[str]:
        """The nodes answering ``pg_is_in_recovery() = false`` now (asked at once)."""
        names = list(self.pg_nodes)
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(names)) as pool:
            answers = list(pool.map(in_recovery, [self.pg_nodes[n].dsn(app="drdrill-roles")
                                                  for n in names]))  # fmt: skip
        return [n for n, answer in zip(names, answers, strict=True) if answer is False]

    def _follow(self) -> None:
        while not self._stop.wait(FOLLOW_INTERVAL):
            try:
                writable = self.out_of_recovery()
            except Exception:  # the follower must never die silently mid-drill
                logger.exception("looking for the repmgr primary failed")
                continue
            # Two writable nodes (a split brain) keep the one already followed.
            if writable and self._leader not in writable:
                self._leader = writable[0]

    @property
    def primary(self) -> PostgresNode:
        """The node last seen out of recovery."""
        return self.pg_nodes[self._leader]

    def nodes(self) -> dict[str, ServiceNode]:
        """Every node, the witness included: a region's loss takes it too."""
        witness = None if self.repmgr is None else self.repmgr.witness
        return {**super().nodes(), **({witness.name: witness} if witness else {})}

    def ledger_ids_of(self, name: str) -> set[int]:
        """The ledger ids node ``name`` committed, read from a copy of its data directory."""
        if self.repmgr is None or name not in self.repmgr.members:
            raise TopologyError(f"{name} is not a repmgr node of this topology")
        assert self._install is not None
        member = self.repmgr.members[name]
        return self._ledger_on_disk(member, member.datadir, self._install, self._run_as)

    def links(self) -> list[Any]:
        """Every proxied path: the topology's and the repmgr cluster's."""
        cluster = [] if self.repmgr is None else list(self.repmgr.links.values())
        return [*super().links(), *(link for link in cluster if link not in self._links)]

    def close(self) -> None:
        """Stop following, stop the repmgr cluster, then everything else; never raises."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.repmgr is not None:
            self.repmgr.close()
        super().close()
