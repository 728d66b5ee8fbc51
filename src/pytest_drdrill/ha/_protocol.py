"""What an HA stack under test provides to a drill: one protocol, one module per stack.

A provider builds the PostgreSQL part of the drill's topology its own way (the
reference topology, or a Patroni cluster behind HAProxy), tells the drill whether it or
the drill's orchestrator decides PostgreSQL failovers, what to observe while the drill
runs, and the failover envelope its settings allow for a fault. Measurement never asks
it anything: RTO and RPO come from the clients' histories on every provider.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from pytest_drdrill.faults._protocol import Fault
    from pytest_drdrill.recovery.envelope import FailoverEnvelope
    from pytest_drdrill.results import RoleSample, TimelineSwitch
    from pytest_drdrill.topology._protocol import Topology
    from pytest_drdrill.topology.backend import Backend


@runtime_checkable
class PostgresHA(Protocol):
    """One HA stack that runs PostgreSQL failover in a drill.

    .. versionadded:: 0.6
    """

    #: The ``--drill-postgres-failover`` value that selects it.
    name: str
    #: Whether the stack decides PostgreSQL failovers itself: the drill's orchestrator
    #: then leaves PostgreSQL alone and only measures.
    decides_failover: bool

    def topology(self, backend: Backend, workdir: Path, *, sentinel: bool = False) -> Topology:
        """Build one drill's topology on ``backend`` with this stack running PostgreSQL.

        :raises TopologyError: when the backend cannot run the stack (naming the flags).
        """
        ...

    def versions(self) -> Mapping[str, str]:
        """Versions of the stack's own programs, for the run header and ``drill.json``."""
        ...

    def envelope(self, topology: Topology, fault: Fault) -> FailoverEnvelope | None:
        """The failover time the stack's live settings allow for ``fault``.

        ``None`` when the fault does not concern the stack's failover or the stack has
        no documented bound.
        """
        ...

    def roles(self, topology: Topology) -> Sequence[RoleSample]:
        """Each member's role as the stack reports it now; empty when there is nothing to ask."""
        ...

    def history(self, topology: Topology) -> Sequence[TimelineSwitch]:
        """The timeline switches the stack recorded; read once, at the drill's end."""
        ...

    def settle(self, topology: Topology, *, timeout: float) -> str | None:
        """After the faults are healed, wait until the stack took back what it replaced.

        At most ``timeout`` s, so the drill's final read sees the cluster as its clients
        will from now on; returns what was waited for, in words.

        ``None`` when the stack has nothing to wait for (its endpoint already hides a
        member that came back stale).
        """
        ...
