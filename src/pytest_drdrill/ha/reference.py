"""The reference HA stack: the drill's own orchestrator and the reference failover hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from pytest_drdrill.faults._protocol import Fault
    from pytest_drdrill.recovery.envelope import FailoverEnvelope
    from pytest_drdrill.results import RoleSample, TimelineSwitch
    from pytest_drdrill.topology._protocol import Topology
    from pytest_drdrill.topology.backend import Backend


class ReferenceHA:
    """PostgreSQL failover by the drill's orchestrator through ``pytest_drdrill_failover``.

    The topology is the backend's own; a team's conftest hook replaces the reference
    steps, as it always could.

    .. versionadded:: 0.6
    """

    name = "reference"
    decides_failover = False

    def topology(self, backend: Backend, workdir: Path, *, sentinel: bool = False) -> Topology:
        """The backend's two-region topology."""
        return backend.topology(workdir, sentinel=sentinel)

    def versions(self) -> Mapping[str, str]:
        """Nothing beyond the plugin itself."""
        return {}

    def envelope(self, topology: Topology, fault: Fault) -> FailoverEnvelope | None:
        """No settings bound the reference: the tier's targets judge it."""
        return None

    def roles(self, topology: Topology) -> Sequence[RoleSample]:
        """The reference has no view of roles of its own beyond the topology."""
        return ()

    def settle(self, topology: Topology, *, timeout: float) -> str | None:
        """Nothing to wait for: the endpoint only leads to the member the stack chose."""
        return None

    def history(self, topology: Topology) -> Sequence[TimelineSwitch]:
        """Nothing: the drill's record holds the reference's own phases."""
        return ()
