"""The region failover of a team running Patroni: its runbook for a lost primary region.

When the primary region goes, it takes the leader, the synchronous standby and two of
the three etcd members: the DR etcd member alone has no quorum, so Patroni on the DR
member can read and write nothing, and in ``synchronous_mode`` it would not promote an
asynchronous member anyway. Patroni never fails over across regions by itself; its
operators do, with etcd's and Patroni's own tools:

1. re-form the DCS in the DR region: the surviving etcd member restarts as a cluster of
   its own (``--force-new-cluster``, keys kept);
2. make the DR member promotable: ``PATCH /config`` with ``synchronous_mode: false``;
3. fail over to it: ``POST /failover`` with it as candidate. Patroni acts on the request
   once the old leader's key expires (its lease, renewed by etcd when the member
   re-formed, runs one ``ttl`` more), and answers when the new leader holds the key;
4. wait until ``/cluster`` shows it as the running leader.

Redis and object storage move first, with the reference steps: they need nothing of
etcd. With synchronous mode off, Patroni on the DR member would take the lock by itself
at the same moment (measured); the request names the candidate and, in Patroni 3.0.2,
skips ``maximum_lag_on_failover``, which a DR member far behind needs. HAProxy checks
every member, the DR one included, so PostgreSQL's endpoint needs no repointing. Each
step is a recorded phase; data loss is counted from the clients' histories as always.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from pytest_drdrill import timing
from pytest_drdrill.errors import FailoverFailed, TopologyError
from pytest_drdrill.recovery import services
from pytest_drdrill.topology.etcd import http_send
from pytest_drdrill.topology.patroni_topology import PatroniTopology

if TYPE_CHECKING:
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.recovery.orchestrator import Detection
    from pytest_drdrill.topology._protocol import Topology
    from pytest_drdrill.topology.patroni import PatroniMember

__all__ = ["PatroniRegionFailover", "fail_over_region"]

#: Seconds each REST step may retry while Patroni reconnects to the re-formed DCS.
REST_TIMEOUT = 30.0
#: Seconds the new leader may take once the failover was requested (Patroni's reply
#: comes after at most ``2 * max(10, loop_wait)`` s; the old key's ``ttl`` may exceed it).
LEADER_TIMEOUT = 90.0


class PatroniRegionFailover:
    """The region failover hook for drills whose PostgreSQL runs under Patroni.

    It acts only on a :class:`~pytest_drdrill.topology.patroni_topology.PatroniTopology`
    and leaves every other drill to the reference (or a team's) implementation: a drill
    names its HA stack itself (``postgres_failover=``), so the topology, not the run's
    option, says whether Patroni runs. It is ``trylast`` like the reference and
    registered before it: a team's own implementation still answers first.

    .. versionadded:: 0.6
    """

    @pytest.hookimpl(trylast=True)
    def pytest_drdrill_region_failover(
        self, topology: Topology, record: DrillRecord, detection: Detection
    ) -> str | None:
        """Move PostgreSQL (Patroni), Redis and object storage to the DR region."""
        if not isinstance(topology, PatroniTopology) or topology.patroni is None:
            return None
        return fail_over_region(topology, record)


def fail_over_region(topology: PatroniTopology, record: DrillRecord, region: str = "dr") -> str:
    """Run the runbook; return the region now serving.

    :raises FailoverFailed: when a step fails or PostgreSQL does not validate.
    """
    cluster = topology.patroni
    assert cluster is not None
    serving = topology.primary.region
    with record.phase("fencing") as note:
        fenced = [n.name for n in topology.nodes().values() if n.region == serving]
        for node in topology.nodes().values():
            if node.region == serving:
                node.fence()
        note.detail = f"region {serving}: {fenced} stopped for good"
    # Redis and object storage need nothing of the DCS: they move first, in milliseconds,
    # rather than after PostgreSQL's wait for the old leader key.
    if topology.redis_endpoint.target.region == serving:
        services.fail_over_redis(topology, record)
    if topology.s3_endpoint.target.region == serving:
        services.fail_over_storage(topology, record)
    with record.phase("dcs-reform") as note:
        started = timing.monotonic()
        try:
            survivor = cluster.reform_dcs(region)
        except TopologyError as exc:
            raise FailoverFailed(f"etcd could not be re-formed in region {region}: {exc}") from exc
        note.detail = (
            f"etcd: {survivor.name} restarted with --force-new-cluster in "
            f"{timing.monotonic() - started:.2f}s; members now {survivor.member_names()}"
        )
    reformed = timing.monotonic()
    candidate = _dr_member(topology, region)
    with record.phase("sync-mode-off") as note:
        status, body = _rest(candidate, "PATCH", "/config", {"synchronous_mode": False})
        note.detail = (
            f"patroni: PATCH /config synchronous_mode=false on {candidate.name}: HTTP {status}, "
            f"synchronous_mode now {json.loads(body).get('synchronous_mode')}"
        )
    with record.phase("failover-request") as note:
        # Patroni answers 503 "status unknown" when the old key outlives its 20 s of
        # polling: the request stands in the DCS all the same, and step 4 waits for it.
        status, body = _rest(
            candidate, "POST", "/failover", {"candidate": candidate.name}, accept=(200, 503)
        )
        if status == 503 and "unknown" not in body:
            raise FailoverFailed(f"Patroni refused the failover to {candidate.name}: {body}")
        note.detail = f"patroni: POST /failover candidate={candidate.name}: HTTP {status} {body}"
    with record.phase("promotion") as note:
        try:
            leader = cluster.wait_leader(timeout=LEADER_TIMEOUT)
        except TopologyError as exc:
            raise FailoverFailed(str(exc), record.phases) from exc
        if leader != candidate.name:
            raise FailoverFailed(f"Patroni made {leader} leader, not {candidate.name}")
        note.detail = (
            f"patroni: /cluster shows {leader} as the running leader "
            f"{timing.monotonic() - reformed:.2f}s after etcd re-formed (the old leader "
            f"key's lease, renewed by the re-forming, runs out first)"
        )
    with record.phase("validation") as note:
        note.detail = services.validate("postgres", topology)
    return region


def _dr_member(topology: PatroniTopology, region: str) -> PatroniMember:
    cluster = topology.patroni
    assert cluster is not None
    members = [m for m in cluster.members.values() if m.region == region and not m.fenced]
    if not members:
        raise FailoverFailed(f"no Patroni member in region {region} to fail over to")
    return members[0]


def _rest(
    member: PatroniMember,
    method: str,
    path: str,
    body: object,
    *,
    accept: tuple[int, ...] = (200,),
) -> tuple[int, str]:
    """Call ``member``'s REST API as an operator would, through its proxied address.

    Retried while it does not answer or answers 503 (Patroni has no DCS yet), unless
    503 is in ``accept``; the last answer of :data:`REST_TIMEOUT` s of tries fails the
    step, naming it.
    """
    url = f"http://{member.rest_connect_address}{path}"
    deadline = timing.monotonic() + REST_TIMEOUT
    last = "no answer"
    while timing.monotonic() < deadline:
        try:
            status, text = http_send(url, body, method=method, timeout=REST_TIMEOUT)
        except OSError as exc:
            last = str(exc)
        else:
            if status in accept:
                return status, text.strip()
            last = f"HTTP {status} {text.strip()}"
            if status != 503:
                break
        timing.sleep(0.2)
    raise FailoverFailed(f"{method} {path} on {member.name} failed: {last}")
