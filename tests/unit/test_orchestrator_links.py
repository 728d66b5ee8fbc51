"""The monitor's cross-region checks on a topology that names no object-replication path."""

from __future__ import annotations

from types import SimpleNamespace

from pytest_drdrill.recovery.orchestrator import MonitorSettings, Orchestrator


def _node(name: str, region: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, region=region, fenced=False)


def test_a_stack_without_a_storage_link_is_watched_on_its_other_links() -> None:
    """A team's stack file may name no s3 replication path: the monitor must not crash."""
    primary, dr = _node("pg-primary", "primary"), _node("pg-dr", "dr")
    link = SimpleNamespace(source="pg-dr", target=primary, label="pg-dr -> pg-primary")
    topology = SimpleNamespace(
        nodes=lambda: {"pg-primary": primary, "pg-dr": dr},
        replication_links={"pg-dr": link},
        redis_links={},
    )
    monitor = Orchestrator(topology, None, MonitorSettings(), failover=lambda d: None)  # type: ignore[arg-type]
    assert monitor._cross_region_links() == [("postgres", link)]
