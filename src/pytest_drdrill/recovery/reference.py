"""The reference failover, registered as a plugin: one service, or the whole region.

Its hook implementations are ``trylast``: any conftest implementation that returns a
result replaces them. A PostgreSQL service failover is
:meth:`~pytest_drdrill.recovery.failover.PostgresFailover.fail_over_postgres`, Redis and
object storage are :mod:`~pytest_drdrill.recovery.services`', and a region failover is
:func:`~pytest_drdrill.recovery.region.fail_over_region`; all PostgreSQL promotions
follow :mod:`~pytest_drdrill.recovery.promotion`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_drdrill.recovery import services
from pytest_drdrill.recovery.failover import PostgresFailover
from pytest_drdrill.recovery.region import fail_over_region

if TYPE_CHECKING:
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.recovery.orchestrator import Detection
    from pytest_drdrill.topology._protocol import Topology

__all__ = ["ReferenceFailover"]


class ReferenceFailover(PostgresFailover):
    """The built-in failover and region failover, registered as a plugin.

    .. versionadded:: 0.1
    .. versionchanged:: 0.5 moved from ``recovery.failover``, which keeps its steps.
    """

    @pytest.hookimpl(trylast=True)
    def pytest_drdrill_failover(
        self, service: str, topology: Topology, record: DrillRecord, detection: Detection
    ) -> str | None:
        """Fail ``service`` over; return the name of the node now serving it."""
        if service == "redis":
            return services.fail_over_redis(topology, record)
        if service == "s3":
            return services.fail_over_storage(topology, record)
        if service != "postgres":
            return None
        return self.fail_over_postgres(topology, record)

    @pytest.hookimpl(trylast=True)
    def pytest_drdrill_region_failover(
        self, topology: Topology, record: DrillRecord, detection: Detection
    ) -> str | None:
        """Move every service to the DR region; return the region now serving."""
        return fail_over_region(self, topology, record, detection)
