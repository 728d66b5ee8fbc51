"""The reference region failover: every service moves to the DR region at once.

The requirements' steps (stop primary writes, promote the DR database, start DR services,
update DNS, validate, roll back on failure), with each one a recorded phase and the
waits bounded. Before promoting the DR PostgreSQL standby it waits, up to a bound, for
the standby to replay what it received; what it could never receive (its replication
path was cut) is named in the report from the last lag sample, and the client's history
counts it exactly afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill.errors import FailoverFailed
from pytest_drdrill.recovery.promotion import Promotion
from pytest_drdrill.recovery.services import redis_candidate, storage_candidate, validate
from pytest_drdrill.topology._protocol import SentinelWatched

if TYPE_CHECKING:
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.recovery.orchestrator import Detection
    from pytest_drdrill.recovery.promotion import PromotionSteps, StandbyState
    from pytest_drdrill.topology._protocol import PostgresNode, ServiceNode, Topology

__all__ = ["fail_over_region"]

_SERVICES = ("postgres", "redis", "s3")


def _last_lag(record: DrillRecord, node: str, before: float) -> str:
    samples = [s for s in record.lag_samples if s.node == node and s.at <= before]
    if not samples:
        return "no lag sample was taken"
    last = samples[-1]
    seconds = "unknown" if last.seconds is None else f"{last.seconds:.3f}s"
    amount = "" if last.bytes is None else f"{last.bytes} bytes, "
    return f"{amount}{seconds} behind at the last sample"


def fail_over_region(
    postgres: PromotionSteps, topology: Topology, record: DrillRecord, detection: Detection
) -> str:
    """Move PostgreSQL, Redis and object storage to the DR region; returns the region.

    :param postgres: chooses and promotes the DR PostgreSQL standby (the reference failover).
    :raises FailoverFailed: when a step fails; endpoints are restored on failed validation.
    """
    return _RegionPromotion(postgres, topology, record, detection).run().node.region


class _RegionPromotion(Promotion):
    """Every service of the serving region moves to the DR region at once."""

    def __init__(
        self,
        steps: PromotionSteps,
        topology: Topology,
        record: DrillRecord,
        detection: Detection,
    ) -> None:
        super().__init__(steps, topology, record)
        self.detection = detection
        self.serving = topology.primary.region
        self.old = {s: topology.endpoint(s).target for s in _SERVICES}
        self.redis_node = self.old["redis"]
        self.store: ServiceNode | None = None

    def fence(self) -> str:
        fenced = []
        for node in self.topology.nodes().values():
            if node.region == self.serving and not node.fenced:
                node.fence()
                fenced.append(node.name)
        # The lost region's Redis Sentinels go with it: one that survived a partition
        # would otherwise, once the old master answered again, turn the promoted DR node
        # back into its replica (Sentinel's +convert-to-slave).
        if isinstance(self.topology, SentinelWatched):
            for sentinel in self.topology.sentinels:
                if sentinel.region == self.serving and not sentinel.fenced:
                    sentinel.fence()
                    fenced.append(sentinel.name)
        return f"region {self.serving}: {fenced or 'nothing left'} stopped for good"

    def candidates(self) -> list[PostgresNode]:
        dr_standbys = [n for n in self.topology.standbys() if n.region != self.serving]
        if not dr_standbys:
            raise FailoverFailed(f"no PostgreSQL standby outside region {self.serving} to promote")
        return dr_standbys

    def selected(self, chosen: StandbyState) -> str:
        lag = _last_lag(self.record, chosen.node.name, self.detection.decided_at)
        return (
            f"postgres: {chosen.node.name} receive {chosen.receive_lsn:X} replay "
            f"{chosen.replay_lsn:X}; {lag}"
        )

    def promoted(self, chosen: StandbyState) -> str:
        redis_node = self.redis_node
        if redis_node.region == self.serving or redis_node.fenced:
            redis_node = self.redis_node = redis_candidate(self.topology)
            from pytest_drdrill.recovery.redis import promote as promote_redis

            promote_redis(redis_node)  # type: ignore[arg-type]
            return f"postgres: {chosen.node.name} promoted; redis: {redis_node.name} promoted"
        # A service failover already moved Redis out of the lost region: keep it.
        return (
            f"postgres: {chosen.node.name} promoted; redis: {redis_node.name} already "
            f"serves from region {redis_node.region}"
        )

    def before_repoint(self) -> None:
        with self.record.phase("storage-switch") as note:
            self.store = storage_candidate(self.topology)
            lag = self.topology.storage_replication_lag()
            self.topology.stop_storage_replication()
            note.detail = f"s3: replication stopped {lag:.3f}s behind; {self.store.name} takes over"

    def _new(self, chosen: StandbyState) -> dict[str, ServiceNode]:
        assert self.store is not None
        return {"postgres": chosen.node, "redis": self.redis_node, "s3": self.store}

    def repoint(self, chosen: StandbyState) -> str:
        new = self._new(chosen)
        for service, node in new.items():
            self.topology.endpoint(service).repoint(node)
        return "; ".join(f"{s} -> {n.name}" for s, n in new.items())

    def validate(self) -> str:
        return "; ".join(validate(s, self.topology) for s in _SERVICES)

    def roll_back(self) -> str:
        for service, node in self.old.items():
            self.topology.endpoint(service).repoint(node)
        return "endpoints restored to the old region; services left down"

    def failure(self, chosen: StandbyState, exc: Exception) -> str:
        return f"region failover validation failed: {exc}"
