"""Destructive faults on shared infrastructure: refused unless the run says it may.

On the local backend every server is the drill's own, made for it and thrown away. On the
Docker backend (a daemon others may use) and against a running stack, a fault that kills
a server or destroys data is refused before it is injected unless the run was started
with ``--drill-allow-destructive`` (ini ``drill_allow_destructive``); the stack file's
``allowed_faults`` still applies on top of it. Network faults, freezes and clean stops
are always allowed: they heal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill.errors import FaultError

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_drdrill.faults._protocol import Fault

#: Fault kinds that kill servers or destroy data.
DESTRUCTIVE = frozenset(
    {
        "crash", "container-kill", "postgres-crash", "storage-loss", "region-outage",
        "corrupt-datadir", "drop-table", "repository-loss",
    }
)  # fmt: skip
#: Backends whose servers may not be the drill's alone.
SHARED_BACKENDS = frozenset({"docker", "stack"})


class DestructiveFaultRefused(FaultError):
    """A destructive fault on a shared backend without ``--drill-allow-destructive``.

    .. versionadded:: 0.7
    """


def destructive_gate(backend: str, *, allowed: bool) -> Callable[[Fault], None] | None:
    """The check a fault injector runs before each fault, or ``None`` when all may run."""
    if allowed or backend not in SHARED_BACKENDS:
        return None

    def refuse(fault: Fault) -> None:
        if fault.kind in DESTRUCTIVE:
            raise DestructiveFaultRefused(
                f"{fault.kind} of {fault.target} refused before injection: on "
                f"--drill-backend={backend} destructive faults ({', '.join(sorted(DESTRUCTIVE))}) "
                f"need --drill-allow-destructive (ini drill_allow_destructive = true), given "
                f"once the owners of what it runs on agree"
            )

    return refuse
