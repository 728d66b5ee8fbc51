"""The application tier inside a drill: lost with its region, restarted by the region failover.

:class:`AppTierInDrill` starts the sample application's tier on the drill's topology,
runs one client per business function through the front door into the drill record's
``function:<name>`` histories, and registers itself as a plugin of two hooks:

- ``pytest_drdrill_fault_injected``: a region outage of the serving region takes that
  region's load balancer and replicas down with its stores;
- ``pytest_drdrill_region_failover`` (a wrapper around whichever implementation moves
  the stores): once the stores serve from the DR region, the DR replicas and load
  balancer start and the front door's DNS name is repointed to them, as its own
  recorded phase (``dr-application``).

The drill's business-function table then measures each function from its own requests
(:attr:`~pytest_drdrill.drill.Drill.probed_functions`).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import pytest

from pytest_drdrill import timing
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.measure import app_functions
from pytest_drdrill.measure.app_functions import FrontDoor
from pytest_drdrill.stash import config_key
from pytest_drdrill.topology.app_tier import AppTier, settings_for

if TYPE_CHECKING:
    from collections.abc import Generator, Mapping
    from pathlib import Path

    from pytest_drdrill.drill import Drill
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.recovery.orchestrator import Detection
    from pytest_drdrill.results import FaultRecord, RpoResult, RtoResult
    from pytest_drdrill.topology._protocol import Topology

#: The region the application fails over to.
DR_REGION = "dr"


class AppTierInDrill:
    """The application tier and its function clients, for one drill.

    :param drill: the drill (its topology, record and business-function table).
    :param config: pytest's config, whose plugin manager calls this object's hooks.
    :param workdir: directory for the tier's configurations and logs.
    :param replicas: replicas per region (default ``--drill-sizes``' ``app_primary`` and
        ``app_dr``).
    :param reporting: DSN reporting reads go to; default the PostgreSQL endpoint.

    .. versionadded:: 0.8
    """

    def __init__(
        self,
        drill: Drill,
        config: pytest.Config,
        workdir: Path,
        *,
        replicas: Mapping[str, int] | None = None,
        reporting: str | None = None,
    ) -> None:
        self.drill = drill
        self.config = config
        if replicas is None:
            drill_config = config.stash.get(config_key, None)
            replicas = drill_config.sizes.app_replicas() if drill_config is not None else None
        self.tier = AppTier(
            workdir, settings_for(drill.topology, reporting=reporting), replicas=replicas
        )
        self.clients: list[app_functions.AppFunctionClient] = []
        self.failed_over_at: float | None = None

    @property
    def door(self) -> FrontDoor:
        """Where clients reach the application."""
        return FrontDoor(*self.tier.front_door)

    def __enter__(self) -> AppTierInDrill:
        try:
            self.tier.start()
        except BaseException:
            # __exit__ does not run when __enter__ raises: what did start must not linger.
            self.tier.close()
            raise
        self.config.pluginmanager.register(self, f"drdrill-app-tier-{id(self)}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_clients()
        self.config.pluginmanager.unregister(self)
        self.tier.close()

    def start_clients(self, *, interval: float = 0.1) -> None:
        """Start one client per business function; the drill's table measures them."""
        self.clients = app_functions.start_clients(
            self.door, self.drill.record.history_of, interval=interval
        )
        for client in self.clients:
            self.drill.probed_functions[client.function] = client.history
            if client.action in app_functions.WRITES:
                self.drill.function_losses[client.function] = functools.partial(
                    app_functions.function_loss, client
                )

    def stop_clients(self) -> None:
        """Stop the clients (idempotent)."""
        app_functions.stop_clients(self.clients)

    def await_functions(self, *, since: float, acks: int = 3, timeout: float = 30.0) -> None:
        """Wait until every function has ``acks`` requests acknowledged after ``since``.

        :raises TopologyError: naming the functions that did not.
        """
        deadline = timing.monotonic() + timeout
        while True:
            behind = [c.function for c in self.clients if _acks_since(c, since) < acks]
            if not behind:
                return
            if timing.monotonic() > deadline:
                raise TopologyError(
                    f"business functions {behind} had fewer than {acks} acknowledged requests "
                    f"through {self.door.name} within {timeout:g}s"
                )
            timing.sleep(0.05)

    def measure(self, fault_at: float) -> dict[str, tuple[RtoResult, RpoResult | None]]:
        """Each function's RTO from its own requests and, for writes, its data loss."""
        return {
            c.function: (
                app_functions.function_rto(c, fault_at),
                app_functions.function_loss(c, fault_at),
            )
            for c in self.clients
        }

    # --- hooks ----------------------------------------------------------------------------

    def pytest_drdrill_fault_injected(self, record: DrillRecord, fault: FaultRecord) -> None:
        """A region outage of the serving region takes its application tier down too."""
        serving = self.tier.serving
        if fault.kind == "region-outage" and fault.target.startswith(f"region {serving} "):
            lost = self.tier.lose_region(serving)
            record.note(f"region {serving} outage: application tier {lost} crashed")

    @pytest.hookimpl(wrapper=True)
    def pytest_drdrill_region_failover(
        self, topology: Topology, record: DrillRecord, detection: Detection
    ) -> Generator[None, object | None, object | None]:
        """After the stores moved, start the DR application and repoint the front door."""
        result = yield
        with record.phase("dr-application") as note:
            note.detail = self.tier.fail_over(DR_REGION)
        self.failed_over_at = timing.monotonic()
        return result


def _acks_since(client: app_functions.AppFunctionClient, since: float) -> int:
    return sum(1 for op in client.history.acknowledged() if op.invoked >= since)
