"""Chaos Toolkit probes: what the drill's clients see, for steady-state hypotheses.

Use them with tolerances, e.g.::

    {"type": "probe", "name": "writes-acknowledged", "tolerance": true,
     "provider": {"type": "python", "module": "pytest_drdrill.chaostoolkit.probes",
                  "func": "writes_acknowledged", "arguments": {"count": 5}}}

Every probe looks through the service endpoints that clients use, or at the measuring
clients' own history, never at what recovery code reports about itself.

.. versionadded:: 0.4
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.chaostoolkit._context import running_drill
from pytest_drdrill.measure.history import Outcome

if TYPE_CHECKING:
    from pytest_drdrill.measure.workload import Workload

__all__ = [
    "lost_writes",
    "measured_rto_seconds",
    "replication_lag_bytes",
    "service_available",
    "serving_node",
    "writes_acknowledged",
]


def writes_acknowledged(service: str = "postgres", count: int = 5, timeout: float = 10.0) -> bool:
    """Whether the service's measuring client gets ``count`` new writes acknowledged.

    :param service: ``postgres``, ``redis`` or ``s3``.
    :param count: acknowledged writes needed, counted from the call.
    :param timeout: seconds to wait for them.
    :returns: whether they were acknowledged in time.
    """
    return _workload(service).wait_for_acks(count, timeout=timeout)


def service_available(service: str = "postgres", timeout: float = 1.0) -> bool:
    """Whether the service answers through its endpoint as a primary, within ``timeout``.

    The reference orchestrator's own check: PostgreSQL not in recovery, Redis a master,
    the object store's bucket readable.

    :param service: ``postgres``, ``redis`` or ``s3``.
    :param timeout: seconds for the whole check.
    """
    from pytest_drdrill.recovery.orchestrator import check_service

    topology = running_drill().topology
    link = topology.endpoint(service)
    return asyncio.run(check_service(service, link, topology.bucket, timeout)).ok


def serving_node(service: str = "postgres") -> str:
    """The node the service's endpoint points at now, e.g. ``pg-sync`` after a failover.

    :param service: ``postgres``, ``redis`` or ``s3``.
    """
    return running_drill().topology.serving(service).name


def replication_lag_bytes(replica: str = "pg-sync", timeout: float = 2.0) -> int:
    """How many bytes a replica is behind the primary serving its service.

    :param replica: a PostgreSQL standby (``pg-sync``, ``pg-dr``) or Redis replica
        (``redis-dr``).
    :param timeout: seconds to read both nodes.
    :raises ValueError: when ``replica`` is not a replica of the topology.
    :raises RuntimeError: when the replica's position cannot be read.
    """
    from pytest_drdrill.recovery.lag import postgres_lag, redis_lag

    topology = running_drill().topology
    if replica in topology.pg_nodes:
        sample = asyncio.run(postgres_lag(topology.primary, topology.pg_nodes[replica], timeout))
    elif replica in topology.redis_nodes:
        primary = topology.redis_endpoint.target
        sample = asyncio.run(redis_lag(primary, topology.redis_nodes[replica], timeout))  # type: ignore[arg-type]
    else:
        replicas = sorted({*topology.pg_nodes, *topology.redis_nodes})
        raise ValueError(f"no replica named {replica!r}; replicas: {', '.join(replicas)}")
    if sample.bytes is None:
        raise RuntimeError(f"the replication position of {replica} could not be read")
    return sample.bytes


def measured_rto_seconds(service: str = "postgres") -> float | None:
    """The RTO of the last fault, as measured so far from the service's client history.

    The rule the drill is judged by: from the fault's injection to the first acknowledged
    write after which the service stayed up.

    :param service: ``postgres``, ``redis`` or ``s3``.
    :returns: seconds; ``0.0`` when the client saw no outage; ``None`` when no fault was
        injected yet or the service has not recovered.
    """
    from pytest_drdrill.measure.analysis import measure_rto

    drill = running_drill()
    if not drill.record.faults:
        return None
    rto = measure_rto(_workload(service).history, drill.record.faults[-1].injected_at)
    if not rto.effect_seen:
        return 0.0
    return rto.seconds


def lost_writes(service: str = "postgres", timeout: float = 10.0) -> int:
    """How many acknowledged writes are missing when the ledger is read through the endpoint.

    Only writes acknowledged before the read began count, since the client keeps writing
    while the probe reads. The drill's own RPO is measured the same way after it ends.

    :param service: ``postgres``, ``redis`` or ``s3``.
    :param timeout: seconds to read the ledger.
    """
    workload = _workload(service)
    read_started = timing.monotonic()
    present = workload.read_ids(timeout=timeout)
    acknowledged = {
        op.id
        for op in workload.history.writes()
        if op.outcome is Outcome.OK and op.completed < read_started
    }
    return len(acknowledged - present)


def _workload(service: str) -> Workload:
    workloads = running_drill().workloads
    if service not in workloads:
        raise ValueError(f"service={service!r}; services: {', '.join(sorted(workloads))}")
    return workloads[service]
