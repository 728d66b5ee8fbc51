"""With Redis Sentinel running, faults on Redis replication links are refused, not faked."""

from __future__ import annotations

import pytest

from pytest_drdrill.errors import FaultError
from pytest_drdrill.faults import FaultInjector
from pytest_drdrill.record import DrillRecord


class _Link:
    def __init__(self, source: str, kind: str) -> None:
        self.source = source
        self.kind = kind
        self.label = f"{source} -> redis-primary ({kind})"


class _Fault:
    kind = "link-cut"
    target = "a link"

    def __init__(self, link: _Link) -> None:
        self.link = link
        self.injected = False

    def inject(self) -> None:
        self.injected = True

    def heal(self) -> None:
        self.injected = False


class _Partition(_Fault):
    kind = "partition"

    def __init__(self, *links: _Link) -> None:
        super().__init__(links[0])
        del self.link
        self.parts = [_Fault(link) for link in links]


class _Topology:
    def __init__(self, *, sentinels: int) -> None:
        self.redis_nodes = {"redis-primary": object(), "redis-dr": object()}
        self.sentinels = [object()] * sentinels

    def nodes(self) -> dict[str, object]:
        return dict(self.redis_nodes)


def _inject(fault: _Fault, *, sentinels: int) -> None:
    record = DrillRecord("t", scenario="s", cadence="monthly", target=None, backend="local")
    FaultInjector(record, topology=_Topology(sentinels=sentinels)).inject(fault)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(_Fault(_Link("redis-dr", "replication")), id="cut"),
        pytest.param(
            _Partition(_Link("pg-dr", "replication"), _Link("redis-dr", "replication")),
            id="partition",
        ),
    ],
)
def test_redis_replication_faults_are_refused_while_sentinel_runs(fault: _Fault) -> None:
    """The error says why (Sentinel repoints replicas) and how to run such a drill."""
    with pytest.raises(FaultError, match=r"refused before injection: Redis Sentinel runs") as info:
        _inject(fault, sentinels=3)
    assert "--drill-redis-failover=orchestrator" in str(info.value)
    assert not fault.injected


@pytest.mark.parametrize(
    ("link", "sentinels"),
    [
        pytest.param(_Link("redis-dr", "replication"), 0, id="no-sentinel"),
        pytest.param(_Link("pg-dr", "replication"), 3, id="postgres-link"),
        pytest.param(_Link("clients", "path"), 3, id="client-path"),
    ],
)
def test_other_link_faults_run(link: _Link, sentinels: int) -> None:
    """Without Sentinel, or on any other link, the fault is injected."""
    fault = _Fault(link)
    _inject(fault, sentinels=sentinels)
    assert fault.injected
