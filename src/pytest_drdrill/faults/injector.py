"""The fault injector: records every fault and heals all of them at teardown."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.errors import FaultError
from pytest_drdrill.faults import network
from pytest_drdrill.faults.network import LinkCut, Partition, Toxic
from pytest_drdrill.faults.process import Crash, Freeze, Stop
from pytest_drdrill.faults.region import RegionOutage, StorageLoss
from pytest_drdrill.ledger import LEDGER_TABLE

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pluggy

    from pytest_drdrill.backup.tools._protocol import Backups
    from pytest_drdrill.faults._protocol import Fault
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.topology._protocol import PostgresNode, ServiceNode, Topology
    from pytest_drdrill.topology.links import Link

logger = logging.getLogger(__name__)


class FaultInjector:
    """Injects faults into a drill's topology and guarantees they are healed.

    :param record: the drill record that receives injection and healing times.
    :param hook: the plugin manager's hook relay, for the observer hooks.
    :param topology: the drill's topology, for faults named by node or region.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        record: DrillRecord,
        hook: pluggy.HookRelay | None = None,
        topology: Topology | None = None,
    ) -> None:
        self.record = record
        self.hook = hook
        self._topology = topology
        self._active: list[tuple[int, Fault]] = []
        #: Called with each fault before it is injected; raising refuses the fault (the
        #: drill's failover-envelope pre-check does).
        self.before_inject: Callable[[Fault], None] | None = None
        #: Called first, with the same power: the run's limits (destructive faults on
        #: shared backends, :mod:`pytest_drdrill.faults.guard`).
        self.guard: Callable[[Fault], None] | None = None

    def inject(self, fault: Fault) -> float:
        """Inject ``fault`` and record it.

        :returns: the monotonic injection stamp (taken just before injecting, so the
            measured RTO includes the injection itself).
        :raises FaultError: when injection fails; whatever part took effect is healed.
        :raises EnvelopeExceeded: when :attr:`before_inject` refuses it (nothing injected).
        """
        if self.guard is not None:
            self.guard(fault)
        self._check_target(fault)
        self._check_sentinel_links(fault)
        if self.before_inject is not None:
            self.before_inject(fault)
        at = timing.monotonic()
        index = self.record.fault_injected(fault.kind, fault.target, at)
        self._active.append((index, fault))
        try:
            fault.inject()
        except Exception as exc:
            self._heal_one(index, fault)
            raise FaultError(f"could not inject {fault.kind} on {fault.target}: {exc}") from exc
        if self.hook is not None:
            self.hook.pytest_drdrill_fault_injected(
                record=self.record, fault=self.record.faults[index]
            )
        return at

    def _check_target(self, fault: Fault) -> None:
        """Refuse a fault on a server this drill's topology did not start or its stack lists.

        :raises FaultError: naming the server and the topology's own.
        """
        node = getattr(fault, "node", None)
        if node is None or self._topology is None:
            return
        own = {
            **self._topology.nodes(),
            **getattr(self._topology, "dcs_nodes", {}),
            **{s.name: s for s in getattr(self._topology, "sentinels", ())},
        }
        if any(node is known for known in own.values()):
            return
        raise FaultError(
            f"{fault.kind} of {getattr(node, 'name', node)!r} refused before injection: it is "
            f"not a node of this drill's topology ({', '.join(sorted(own))}); faults reach "
            "only the servers the topology started or the stack file lists"
        )

    def _check_sentinel_links(self, fault: Fault) -> None:
        """Refuse a fault on a Redis replication link while Redis Sentinel runs.

        Sentinel moves every replica it knows from the proxy link it replicates through
        to the master's own address (``+fix-slave-config``, at its first ``INFO`` refresh
        of the replica, ≈10 s after start): the fault would cut nothing and the drill
        would wrongly pass.

        :raises FaultError: naming the link and the way to run such a drill.
        """
        if self._topology is None or not getattr(self._topology, "sentinels", None):
            return
        links = [getattr(fault, "link", None)]
        links += [getattr(part, "link", None) for part in getattr(fault, "parts", ())]
        redis_nodes = self._topology.redis_nodes
        for link in links:
            if link is not None and link.kind == "replication" and link.source in redis_nodes:
                raise FaultError(
                    f"{fault.kind} on {link.label} refused before injection: Redis Sentinel "
                    "runs in this drill and replicas no longer replicate through their proxy "
                    "links (Sentinel repoints them to the master's own address), so the fault "
                    "would cut nothing. Run Redis replication-link faults without Sentinel: "
                    "--drill-redis-failover=orchestrator and no redis_failover='sentinel' in "
                    "the marker"
                )

    def crash(self, node: ServiceNode) -> float:
        """Kill ``node`` and all its processes; returns the injection stamp."""
        return self.inject(Crash(node))

    def freeze(self, node: ServiceNode) -> float:
        """SIGSTOP ``node``; healed with SIGCONT; returns the injection stamp."""
        return self.inject(Freeze(node))

    def stop(self, node: ServiceNode) -> float:
        """Shut ``node`` down cleanly; returns the injection stamp."""
        return self.inject(Stop(node))

    def cut(self, link: Link) -> float:
        """Cut a proxied link; returns the injection stamp."""
        return self.inject(LinkCut(link))

    @property
    def topology(self) -> Topology:
        """The topology faults are injected into."""
        if self._topology is None:
            raise FaultError("this fault injector has no topology; pass topology=")
        return self._topology

    def partition(self, a: Sequence[str], b: Sequence[str], *, direction: str = "both") -> float:
        """Cut every path between node groups ``a`` and ``b`` (``clients`` is a node)."""
        return self.inject(Partition(self.topology, a, b, direction))

    def latency(
        self, link: Link, ms: float, *, jitter: float = 0, stream: str = "downstream"
    ) -> float:
        """Add ``ms`` ± ``jitter`` milliseconds to a path (Toxiproxy latency toxic)."""
        return self.inject(network.latency(link, ms, jitter=jitter, stream=stream))

    def bandwidth(self, link: Link, kb_per_second: float, *, stream: str = "downstream") -> float:
        """Limit a path's bandwidth (Toxiproxy bandwidth toxic)."""
        return self.inject(network.bandwidth(link, kb_per_second, stream=stream))

    def blackhole(self, link: Link, *, stream: str = "upstream") -> float:
        """Let nothing through a path while connections stay open (Toxiproxy timeout 0)."""
        return self.inject(network.blackhole(link, stream=stream))

    def reset_peer(self, link: Link, *, after_ms: float = 0) -> float:
        """Reset a path's connections with TCP RST (Toxiproxy reset_peer)."""
        return self.inject(network.reset_peer(link, after_ms=after_ms))

    def toxic(self, toxic: Toxic) -> float:
        """Inject any toxic built with :class:`~pytest_drdrill.faults.Toxic`."""
        return self.inject(toxic)

    def region_outage(self, region: str = "primary") -> float:
        """Cut every path of ``region`` and crash all its servers, as one fault."""
        return self.inject(RegionOutage(self.topology, region))

    def storage_loss(self, region: str = "primary") -> float:
        """Kill ``region``'s object store; its data is gone."""
        stores = [n for n in self.topology.s3_nodes.values() if n.region == region]
        if not stores:
            raise FaultError(f"no object store in region {region!r}")
        return self.inject(StorageLoss(stores[0]))

    def repository_loss(self, backups: Backups, region: str = "primary") -> float:
        """Take the backup tool's repository in ``region`` away (pgBackRest, Barman).

        .. versionadded:: 0.7
        """
        from pytest_drdrill.faults.data import RepositoryLoss

        return self.inject(RepositoryLoss(backups.repository(region), region))

    def drop_table(self, node: PostgresNode | None = None, table: str = LEDGER_TABLE) -> float:
        """Drop ``table`` on the primary (default: the drill's ledger), as an operator might."""
        from pytest_drdrill.faults.data import DropTable

        return self.inject(DropTable(node or self.topology.primary, table))

    def corrupt_datadir(self, node: PostgresNode | None = None, table: str = LEDGER_TABLE) -> float:
        """Overwrite ``table``'s file under the primary (default) and crash it.

        .. versionadded:: 0.4
        """
        from pytest_drdrill.faults.data import CorruptDataDirectory

        return self.inject(CorruptDataDirectory(node or self.topology.primary, table))

    def heal(self, fault_or_target: Fault | str | None = None) -> None:
        """Heal active faults: one (by object or target name) or, with no argument, all."""
        for index, fault in list(self._active):
            if fault_or_target is None or fault_or_target in (fault, fault.target):
                self._heal_one(index, fault)

    def _heal_one(self, index: int, fault: Fault) -> None:
        try:
            fault.heal()
        except Exception:  # teardown heals everything it can; one failure must not stop it
            logger.exception("healing %s on %s failed", fault.kind, fault.target)
        finally:
            self._active = [(i, f) for i, f in self._active if i != index]
            healed = self.record.fault_healed(index, timing.monotonic())
            if self.hook is not None:
                self.hook.pytest_drdrill_fault_healed(record=self.record, fault=healed)

    @property
    def active(self) -> list[Fault]:
        """Faults injected and not yet healed."""
        return [f for _, f in self._active]
