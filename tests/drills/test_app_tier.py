"""The application tier started for real: replicas, HAProxy per region, dnsmasq front door.

The function clients send each business function's requests through DNS and the load
balancer; losing the primary region's application tier and repointing the front door to
the DR region shows in every function's own history as an outage and a recovery.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_drdrill import timing
from pytest_drdrill.measure import app_functions
from pytest_drdrill.measure.app_functions import FrontDoor, FrontDoorSession
from pytest_drdrill.measure.history import History, Outcome
from pytest_drdrill.topology.app_tier import AppTier, settings_for
from pytest_drdrill.topology.local import LocalBackend, LocalTopology


@pytest.fixture
def tier(topology: tuple[LocalBackend, LocalTopology], tmp_path: Path) -> Iterator[AppTier]:
    t0 = timing.monotonic()
    started = AppTier(tmp_path / "app", settings_for(topology[1])).start()
    print(f"application tier started in {timing.monotonic() - t0:.3f}s")
    try:
        yield started
    finally:
        started.close()
    assert not any(server.is_running() for server in started.servers())


def _wait(condition, timeout: float, what: str) -> None:
    deadline = timing.monotonic() + timeout
    while not condition():
        assert timing.monotonic() < deadline, f"{what} within {timeout}s"
        timing.sleep(0.05)


def _oks_since(history: History, t: float) -> int:
    return sum(1 for op in history.writes() if op.outcome is Outcome.OK and op.invoked >= t)


def test_front_door_resolves_through_dnsmasq_to_the_serving_balancer(tier: AppTier):
    """The name resolves to the primary region's balancer, which answers from a replica."""
    door = FrontDoor(*tier.front_door)
    session = FrontDoorSession(door)
    assert session.address() == tier.balancers["primary"].host
    status, reply = session.call("GET", "/health")
    assert (status, reply) == (200, {"region": "primary"})
    assert "dr" not in tier.balancers, "DR replicas start only in the region failover"


def test_clients_keep_the_old_answer_until_its_ttl_runs_out(tier: AppTier):
    """A repointed name reaches a caching client only after the TTL, as with real DNS."""
    session = FrontDoorSession(FrontDoor(*tier.front_door))
    old = session.address()
    asked = timing.monotonic()
    tier.dns.repoint("127.0.10.2")
    assert tier.dns.query() == "127.0.10.2", "the server answers the new address at once"
    if timing.monotonic() - asked < tier.dns.ttl - 0.2:
        assert session.address() == old, "the cached answer lives for its TTL"
    timing.sleep(tier.dns.ttl + 0.1)
    assert session.address() == "127.0.10.2"


def test_balancer_health_check_takes_a_dead_replica_out(tier: AppTier):
    """One crashed replica of two: after the checks notice, every request still succeeds."""
    session = FrontDoorSession(FrontDoor(*tier.front_door))
    tier.replicas["primary"][0].crash()
    timing.sleep(1.5)  # two checks at 500 ms mark it down
    statuses = [session.call("GET", "/health")[0] for _ in range(20)]
    assert statuses == [200] * 20


def test_function_clients_measure_the_app_tier_failover(tier: AppTier):
    """Each function's RTO comes from its own requests through DNS and the balancer."""
    door = FrontDoor(*tier.front_door)
    histories: dict[str, History] = {}
    clients = app_functions.start_clients(door, lambda name: histories.setdefault(name, History()))
    try:
        for client in clients:
            _wait(lambda c=client: _oks_since(c.history, 0.0) >= 5, 20, f"{client.function} ok")
        fault_at = timing.monotonic()
        lost = tier.lose_region("primary")
        assert len(lost) == 3
        timing.sleep(0.5)
        detail = tier.fail_over("dr")
        assert "app-dr-1" in detail
        repointed = timing.monotonic()
        for client in clients:
            _wait(
                lambda c=client: _oks_since(c.history, repointed) >= 3,
                20,
                f"{client.function} back",
            )
    finally:
        app_functions.stop_clients(clients)
    assert FrontDoorSession(door).call("GET", "/health")[1] == {"region": "dr"}
    for client in clients:
        rto = app_functions.function_rto(client, fault_at)
        assert rto.effect_seen, f"{client.function} saw no outage"
        assert rto.seconds is not None and 0.5 <= rto.seconds < 10, (client.function, rto)
        loss = app_functions.function_loss(client, fault_at)
        print(f"{client.function}: RTO {rto.seconds:.3f}s, loss {loss}")
        if loss is not None:
            # The stores were untouched: every acknowledged upload and annotation survives.
            assert loss.lost_writes == 0, (client.function, loss)
    assert set(histories) == {f"function:{name}" for name in app_functions.FUNCTIONS}
