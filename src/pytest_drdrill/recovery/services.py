"""Reference failover steps for Redis and object storage, and validation of every service.

Validation always goes through the service endpoint, the path clients use: a token is
written and read back. The same functions serve single-service failover and the region
failover, on every backend.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.errors import FailoverFailed
from pytest_drdrill.ledger import VALIDATION_TABLE
from pytest_drdrill.topology._protocol import BACKUP_REGION, SentinelWatched

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.recovery.sentinel import SentinelFollower
    from pytest_drdrill.topology._protocol import ServiceNode, Topology
    from pytest_drdrill.topology.links import Link

VALIDATE_TIMEOUT = 5.0


def _retry(what: str, attempt: Callable[[], str], timeout: float = VALIDATE_TIMEOUT) -> str:
    """Call ``attempt()`` until it returns a detail string; raise after ``timeout``."""
    deadline = timing.monotonic() + timeout
    last = ""
    while timing.monotonic() < deadline:
        try:
            return attempt()
        except Exception as exc:  # any failure is retried until the deadline
            last = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        timing.sleep(0.01)
    raise FailoverFailed(f"{what} validation through its endpoint failed for {timeout}s: {last}")


def validate_postgres(endpoint: Link, *, timeout: float = VALIDATE_TIMEOUT) -> str:
    """Write a token through the PostgreSQL endpoint and read it back."""
    token = uuid.uuid4().hex

    def attempt() -> str:
        with psycopg.connect(
            endpoint.dsn(app="drdrill-validate"), autocommit=True, connect_timeout=2
        ) as conn:
            conn.execute(f"INSERT INTO {VALIDATION_TABLE} (token) VALUES (%s)", (token,))
            row = conn.execute(
                f"SELECT token FROM {VALIDATION_TABLE} WHERE token = %s", (token,)
            ).fetchone()
        if not row or row[0] != token:
            raise RuntimeError("token not read back")
        return f"postgres: token {token[:8]} written and read back through the endpoint"

    return _retry("postgres", attempt, timeout)


def validate_redis(endpoint: Link) -> str:
    """SET a token through the Redis endpoint and GET it back."""
    import redis

    token = uuid.uuid4().hex

    def attempt() -> str:
        client = redis.Redis.from_url(endpoint.url(), socket_timeout=2, socket_connect_timeout=2)
        try:
            client.set(f"drdrill:validate:{token}", token)
            if client.get(f"drdrill:validate:{token}") != token.encode():
                raise RuntimeError("token not read back")
        finally:
            client.close()
        return f"redis: token {token[:8]} set and read back through the endpoint"

    return _retry("redis", attempt)


def validate_storage(endpoint: Link, bucket: str) -> str:
    """Put an object through the storage endpoint and get it back."""
    from pytest_drdrill.clients.s3 import s3_client

    token = uuid.uuid4().hex

    def attempt() -> str:
        client = s3_client(endpoint.endpoint_url, timeout=2.0)
        key = f"drdrill-validate/{token}"
        client.put_object(Bucket=bucket, Key=key, Body=token.encode())
        if client.get_object(Bucket=bucket, Key=key)["Body"].read() != token.encode():
            raise RuntimeError("object not read back")
        return f"s3: object {token[:8]} put and read back through the endpoint"

    return _retry("s3", attempt)


def validate(service: str, topology: Topology) -> str:
    """Validate ``service`` through its endpoint; returns what was checked."""
    endpoint = topology.endpoint(service)
    if service == "postgres":
        return validate_postgres(endpoint)
    if service == "redis":
        return validate_redis(endpoint)
    return validate_storage(endpoint, topology.bucket)


def redis_candidate(topology: Topology) -> ServiceNode:
    """The Redis replica to promote: any unfenced node other than the primary."""
    current = topology.redis_endpoint.target
    for node in topology.redis_nodes.values():
        if node is not current and not node.fenced:
            return node
    raise FailoverFailed("no Redis replica left to promote")


def storage_candidate(topology: Topology) -> ServiceNode:
    """The object store to switch to: the unfenced one the endpoint does not use.

    The backup region's store is never one: it holds backup copies, not the clients' data.
    """
    current = topology.s3_endpoint.target
    for node in topology.s3_nodes.values():
        if node is not current and not node.fenced and node.region != BACKUP_REGION:
            return node
    raise FailoverFailed("no object store left to switch to")


def fail_over_redis(topology: Topology, record: DrillRecord) -> str:
    """Fence the Redis primary, promote the replica, repoint, validate; roll back on failure."""
    from pytest_drdrill.recovery.redis import promote

    old = topology.redis_endpoint.target
    with record.phase("fencing") as note:
        old.fence()
        note.detail = f"redis: {old.name} killed and barred from restarting"
    chosen = redis_candidate(topology)
    with record.phase("promotion") as note:
        promote(chosen)  # type: ignore[arg-type]
        note.detail = f"redis: {chosen.name} promoted (REPLICAOF NO ONE)"
    return _repoint_and_validate("redis", topology, record, old, chosen)


def fail_over_storage(topology: Topology, record: DrillRecord) -> str:
    """Fence the primary store, stop replication, switch the endpoint, validate."""
    old = topology.s3_endpoint.target
    with record.phase("fencing") as note:
        old.fence()
        note.detail = f"s3: {old.name} killed"
    chosen = storage_candidate(topology)
    with record.phase("storage-switch") as note:
        lag = topology.storage_replication_lag()
        topology.stop_storage_replication()
        note.detail = f"s3: replication stopped {lag:.3f}s behind; {chosen.name} takes over"
    return _repoint_and_validate("s3", topology, record, old, chosen)


def _repoint_and_validate(
    service: str, topology: Topology, record: DrillRecord, old: ServiceNode, new: ServiceNode
) -> str:
    endpoint = topology.endpoint(service)
    with record.phase("repoint") as note:
        endpoint.repoint(new)
        note.detail = f"{service}: endpoint -> {new.name}"
    try:
        with record.phase("validation") as note:
            note.detail = validate(service, topology)
    except Exception as exc:
        with record.phase("rollback") as note:
            endpoint.repoint(old)
            note.detail = f"{service}: endpoint restored to {old.name}; service left down"
        raise FailoverFailed(
            f"{service} validation failed after switching to {new.name}: {exc}", record.phases
        ) from exc
    return new.name


def follow_sentinel(topology: Topology, record: DrillRecord) -> SentinelFollower:
    """Let Redis Sentinel decide Redis failovers; repoint the Redis endpoint when it does.

    Sentinel promotes the replica itself; like a Sentinel-aware client library, the
    drill then sends clients to the new master by repointing the endpoint, and records
    that as a phase. The Redis outage is measured from the client's history as always.

    :raises TopologyError: when the topology was built without a Sentinel.
    """
    from pytest_drdrill.errors import TopologyError
    from pytest_drdrill.recovery.sentinel import SentinelFollower

    sentinels = topology.sentinels if isinstance(topology, SentinelWatched) else []
    if not sentinels:
        raise TopologyError(
            "--drill-redis-failover=sentinel needs a topology with a Redis Sentinel; the "
            "backend did not start one"
        )

    def on_switch(old: str, new: str) -> None:
        nodes = {n.address: n for n in topology.redis_nodes.values()}
        node = nodes.get(new)
        with record.phase("repoint") as note:
            if node is None:
                raise FailoverFailed(f"Sentinel chose {new}, which is no Redis node of the drill")
            topology.redis_endpoint.repoint(node)
            note.detail = (
                f"redis: Sentinel moved the master {old} -> {new}; endpoint -> {node.name}"
            )

    return SentinelFollower(sentinels, sentinels[0].master_name, on_switch)
