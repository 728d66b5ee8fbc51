"""Whole-region and storage faults: what a data-centre loss looks like from outside."""

from __future__ import annotations

import concurrent.futures
from typing import TYPE_CHECKING

from pytest_drdrill.errors import FaultError
from pytest_drdrill.faults.network import LinkCut
from pytest_drdrill.faults.process import Crash
from pytest_drdrill.topology._protocol import SentinelWatched

if TYPE_CHECKING:
    from pytest_drdrill.topology._protocol import ServiceNode, Topology
    from pytest_drdrill.topology.sentinel import LocalSentinel


class RegionOutage:
    """Every path into or out of a region cut, and every process of the region crashed.

    One fault: the servers die first, so nothing of the region answers while the paths
    are being cut.
    Healing restores the paths; the crashed servers stay down, as after a real loss
    (failover fences them). Service endpoints are not cut: failover repoints them.

    :param topology: the drill's topology.
    :param region: ``primary`` or ``dr``.
    """

    kind = "region-outage"

    def __init__(self, topology: Topology, region: str) -> None:
        nodes = {name: n for name, n in topology.nodes().items() if n.region == region}
        if not nodes:
            regions = sorted({n.region for n in topology.nodes().values()})
            raise FaultError(f"no node in region {region!r}; regions: {', '.join(regions)}")
        self.region = region
        self.target = f"region {region} ({', '.join(sorted(nodes))})"
        self.nodes = list(nodes.values())
        # The region's Redis Sentinels are lost with it too; they serve no clients, so no
        # path of theirs is cut and they are not in the target's list of nodes.
        sentinels = topology.sentinels if isinstance(topology, SentinelWatched) else []
        self.processes: list[ServiceNode | LocalSentinel] = [
            *self.nodes,
            *(s for s in sentinels if s.region == region),
        ]
        self.cuts = [
            LinkCut(link)
            for link in topology.links()
            if link.kind != "endpoint" and (link.source in nodes or link.target.name in nodes)
        ]

    def inject(self) -> None:
        """Crash the region's servers, all at once, then cut its paths.

        The servers go first and side by side: a dead server answers nobody, whatever its
        paths. Cutting first (one proxy call per path) once left the primary writable for
        0.8 s on a loaded machine, long enough for a team's fast region failover to
        promote the DR standby beside it (the split-brain watcher saw both).
        """
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.processes)) as pool:
            for crashed in [pool.submit(node.crash) for node in self.processes]:
                crashed.result()
        for cut in self.cuts:
            cut.inject()

    def heal(self) -> None:
        """Restore the paths; make sure no process of the region survived."""
        for node in self.processes:
            node.crash()
        for cut in self.cuts:
            cut.heal()


class StorageLoss(Crash):
    """An object store's server killed and its data gone (moto keeps data in memory).

    A :class:`~pytest_drdrill.faults.Crash` under its own name: for an in-memory store the
    crash is the data loss, and healing brings nothing back.
    """

    kind = "storage-loss"
