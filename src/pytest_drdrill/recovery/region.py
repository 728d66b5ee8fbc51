"""The reference region failover: every service moves to the DR region at once.

The seed's steps (stop primary writes, promote the DR database, start DR services,
update DNS, validate, roll back on failure), with each one a recorded phase and the
waits bounded. Before promoting the DR PostgreSQL standby it waits, up to a bound, for
the standby to replay what it received; what it could never receive (its replication
path was cut) is named in the report from the last lag sample, and the client's history
counts it exactly afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill.errors import FailoverFailed
from pytest_drdrill.recovery.services import redis_candidate, storage_candidate, validate

if TYPE_CHECKING:
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.recovery.failover import ReferenceFailover
    from pytest_drdrill.recovery.orchestrator import Detection
    from pytest_drdrill.topology._protocol import ServiceNode, Topology


def _last_lag(record: DrillRecord, node: str, before: float) -> str:
    samples = [s for s in record.lag_samples if s.node == node and s.at <= before]
    if not samples:
        return "no lag sample was taken"
    last = samples[-1]
    seconds = "unknown" if last.seconds is None else f"{last.seconds:.3f}s"
    amount = "" if last.bytes is None else f"{last.bytes} bytes, "
    return f"{amount}{seconds} behind at the last sample"


def fail_over_region(
    postgres: ReferenceFailover, topology: Topology, record: DrillRecord, detection: Detection
) -> str:
    """Move PostgreSQL, Redis and object storage to the DR region; returns the region.

    :raises FailoverFailed: when a step fails; endpoints are restored on failed validation.
    """
    serving = topology.primary.region
    old = {s: topology.endpoint(s).target for s in ("postgres", "redis", "s3")}
    with record.phase("fencing") as note:
        fenced = []
        for node in topology.nodes().values():
            if node.region == serving and not node.fenced:
                node.fence()
                fenced.append(node.name)
        note.detail = f"region {serving}: {fenced or 'nothing left'} stopped for good"
    with record.phase("selection") as note:
        dr_standbys = [n for n in topology.standbys() if n.region != serving]
        if not dr_standbys:
            raise FailoverFailed(f"no PostgreSQL standby outside region {serving} to promote")
        chosen = postgres.select(topology, among=dr_standbys)
        note.detail = (
            f"postgres: {chosen.node.name} receive {chosen.receive_lsn:X} replay "
            f"{chosen.replay_lsn:X}; {_last_lag(record, chosen.node.name, detection.decided_at)}"
        )
        note.detail += postgres.catch_up(chosen)
    with record.phase("promotion") as note:
        postgres.promote(chosen.node)
        redis_node = old["redis"]
        if redis_node.region == serving or redis_node.fenced:
            redis_node = redis_candidate(topology)
            from pytest_drdrill.recovery.redis import promote as promote_redis

            promote_redis(redis_node)  # type: ignore[arg-type]
            note.detail = (
                f"postgres: {chosen.node.name} promoted; redis: {redis_node.name} promoted"
            )
        else:
            # A service failover already moved Redis out of the lost region: keep it.
            note.detail = (
                f"postgres: {chosen.node.name} promoted; redis: {redis_node.name} already "
                f"serves from region {redis_node.region}"
            )
    with record.phase("storage-switch") as note:
        store = storage_candidate(topology)
        lag = topology.storage_replication_lag()
        topology.stop_storage_replication()
        note.detail = f"s3: replication stopped {lag:.3f}s behind; {store.name} takes over"
    new: dict[str, ServiceNode] = {"postgres": chosen.node, "redis": redis_node, "s3": store}
    with record.phase("repoint") as note:
        for service, node in new.items():
            topology.endpoint(service).repoint(node)
        note.detail = "; ".join(f"{s} -> {n.name}" for s, n in new.items())
    try:
        with record.phase("validation") as note:
            note.detail = "; ".join(validate(s, topology) for s in new)
    except Exception as exc:
        with record.phase("rollback") as note:
            for service, node in old.items():
                topology.endpoint(service).repoint(node)
            note.detail = "endpoints restored to the old region; services left down"
        raise FailoverFailed(f"region failover validation failed: {exc}", record.phases) from exc
    return chosen.node.region
