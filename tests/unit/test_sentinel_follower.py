"""The Sentinel follower reports each move once and never moves back to a lost master."""

from __future__ import annotations

from types import SimpleNamespace

from pytest_drdrill.recovery.sentinel import SentinelFollower


def _follower(calls: list[tuple[str, str]]) -> SentinelFollower:
    group = [SimpleNamespace(name=f"sentinel-{i}") for i in (1, 2, 3)]
    follower = SentinelFollower(group, "m", lambda old, new: calls.append((old, new)))  # type: ignore[arg-type]
    follower.current = "127.0.0.1:1"
    return follower


def test_a_stale_sentinel_naming_the_old_master_moves_nothing() -> None:
    """After a switch, a thawed Sentinel still naming the old master is ignored."""
    calls: list[tuple[str, str]] = []
    follower = _follower(calls)
    follower._observe("127.0.0.1:2")
    follower._observe("127.0.0.1:2")
    follower._observe("127.0.0.1:1")
    assert calls == [("127.0.0.1:1", "127.0.0.1:2")]
    assert follower.current == "127.0.0.1:2"


def test_a_second_failover_to_another_node_is_followed() -> None:
    """A later move to a node that was never the master is reported."""
    calls: list[tuple[str, str]] = []
    follower = _follower(calls)
    follower._observe("127.0.0.1:2")
    follower._observe("127.0.0.1:3")
    assert calls == [("127.0.0.1:1", "127.0.0.1:2"), ("127.0.0.1:2", "127.0.0.1:3")]
