"""What the running topology is made of, read from the servers themselves.

The MTD justification lists the infrastructure that is in place; it must say what was
actually running during the drills, not what the project meant to build. So replication
modes come from ``pg_stat_replication`` and ``INFO replication``, and object versioning
from the stores, each read in the steady state before any fault.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import psycopg

from pytest_drdrill.topology._protocol import BACKUP_REGION, ObjectReplicated

if TYPE_CHECKING:
    from pytest_drdrill.topology._protocol import Topology

logger = logging.getLogger(__name__)


def describe(topology: Topology) -> dict[str, Any]:
    """Read the topology's live shape: nodes, replication, storage, endpoints.

    Never raises: a fact that cannot be read is recorded as ``None`` with the error in
    ``problems``, so a report says "unknown" rather than guessing.

    .. versionadded:: 0.3

    :returns: ``{"backend", "nodes": [{name, service, region, role}], "replication":
        [{service, source, target, mode, state}], "object_versioning": {store: status},
        "storage_replication": bool, "endpoints": {service: node}, "problems": [str]}``.
    """
    problems: list[str] = []
    nodes = []
    primaries = {
        "postgres": topology.primary.name,
        "redis": topology.redis_endpoint.target.name,
        "s3": topology.s3_endpoint.target.name,
    }
    for service, group in (
        ("postgres", topology.pg_nodes),
        ("redis", topology.redis_nodes),
        ("s3", topology.s3_nodes),
    ):
        for name, node in group.items():
            role = "primary" if name == primaries[service] else "replica"
            if node.region == BACKUP_REGION:
                role = "backup copies"
            nodes.append({"name": name, "service": service, "region": node.region, "role": role})
    replication = _postgres_replication(topology, problems) + _redis_replication(topology, problems)
    return {
        "backend": topology.backend,
        "nodes": nodes,
        "replication": replication,
        "object_versioning": _versioning(topology, problems),
        "storage_replication": _storage_replicated(topology, problems),
        "endpoints": primaries,
        "problems": problems,
    }


def _postgres_replication(topology: Topology, problems: list[str]) -> list[dict[str, Any]]:
    primary = topology.primary
    try:
        with psycopg.connect(primary.dsn(app="drdrill-describe"), connect_timeout=5) as conn:
            rows = conn.execute(
                "SELECT application_name, state, sync_state FROM pg_stat_replication"
            ).fetchall()
    except psycopg.Error as exc:
        problems.append(f"pg_stat_replication on {primary.name}: {exc}")
        return []
    return [
        {
            "service": "postgres",
            "source": primary.name,
            "target": str(app),
            "mode": "synchronous" if sync_state in ("sync", "quorum") else "asynchronous",
            "state": str(state),
        }
        for app, state, sync_state in rows
    ]


def _redis_replication(topology: Topology, problems: list[str]) -> list[dict[str, Any]]:
    import redis

    rows = []
    source = topology.redis_endpoint.target.name
    for name, node in topology.redis_nodes.items():
        if name == source:
            continue
        try:
            client = redis.Redis.from_url(node.url(), socket_timeout=5)
            try:
                info = client.info("replication")
            finally:
                client.close()
        except redis.RedisError as exc:
            problems.append(f"INFO replication on {name}: {exc}")
            continue
        rows.append(
            {
                "service": "redis",
                "source": source,
                "target": name,
                "mode": "asynchronous",
                "state": str(info.get("master_link_status", "unknown")),
            }
        )
    return rows


def _versioning(topology: Topology, problems: list[str]) -> dict[str, str | None]:
    from pytest_drdrill.clients.s3 import s3_client

    status: dict[str, str | None] = {}
    for name, node in topology.s3_nodes.items():
        if node.region == BACKUP_REGION:
            continue  # it keeps backup copies, not the clients' versioned bucket
        try:
            answer = s3_client(node.endpoint_url).get_bucket_versioning(Bucket=topology.bucket)
        except Exception as exc:  # botocore's errors have no common public base worth naming
            problems.append(f"bucket versioning on {name}: {exc}")
            status[name] = None
            continue
        status[name] = str(answer.get("Status", "Disabled"))
    return status


def _storage_replicated(topology: Topology, problems: list[str]) -> bool:
    # Object replication is the backend's own process (moto does not replicate); a
    # backend without one reports no replication rather than a lag of zero.
    replicator = topology.replicator if isinstance(topology, ObjectReplicated) else None
    running = replicator is not None and bool(replicator.is_running)
    if not running:
        problems.append("cross-region object replication is not running")
    return running
