"""The Patroni region failover hook leaves drills without Patroni to the reference."""

from __future__ import annotations

from pytest_drdrill.recovery.patroni_region import PatroniRegionFailover


def test_the_hook_passes_on_a_topology_without_patroni() -> None:
    """On any other topology it returns None, so the next implementation (the reference) acts."""
    hook = PatroniRegionFailover()
    assert (
        hook.pytest_drdrill_region_failover(topology=object(), record=None, detection=None) is None
    )  # type: ignore[arg-type]
