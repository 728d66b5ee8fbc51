"""pytest-drdrill: disaster-recovery drills as pytest tests.

Real topologies, real faults, real failover code; RTO and RPO measured from a client's
own history and judged against tier targets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_drdrill.errors import (
    DrillError,
    DrillInconclusive,
    DrillWarning,
    ExecutableMissing,
    FailoverFailed,
    FaultError,
    InvalidTargets,
    ProxyError,
    TargetMissed,
    TargetWarning,
    TopologyError,
)
from pytest_drdrill.results import (
    DrillResult,
    FaultRecord,
    Phase,
    RpoResult,
    RtoResult,
    RunInfo,
    Target,
    Verdict,
)

if TYPE_CHECKING:
    from pytest_drdrill.drill import Drill
    from pytest_drdrill.record import DrillRecord

__all__ = [
    "Drill",
    "DrillError",
    "DrillInconclusive",
    "DrillRecord",
    "DrillResult",
    "DrillWarning",
    "ExecutableMissing",
    "FailoverFailed",
    "FaultError",
    "FaultRecord",
    "InvalidTargets",
    "Phase",
    "ProxyError",
    "RpoResult",
    "RtoResult",
    "RunInfo",
    "Target",
    "TargetMissed",
    "TargetWarning",
    "TopologyError",
    "Verdict",
    "__version__",
    "discover",
]


def discover(discover_system: bool = True) -> dict[str, Any]:  # noqa: FBT001, FBT002
    """Chaos Toolkit's entry point for ``chaos discover pytest-drdrill``.

    chaoslib looks for a function named ``discover`` in the package itself; the work is
    done, importing chaoslib only then, by :mod:`pytest_drdrill.chaostoolkit.discovery`.

    .. versionadded:: 0.4
    """
    from pytest_drdrill.chaostoolkit.discovery import discover as discover_activities

    return discover_activities(discover_system=discover_system)


def __getattr__(name: str) -> Any:
    # Lazy: the version comes from the installed metadata, and Drill/DrillRecord pull in
    # psycopg, which a plain pytest run without --drill never needs.
    if name == "__version__":
        from importlib.metadata import version

        return version("pytest-drdrill")
    if name == "Drill":
        from pytest_drdrill.drill import Drill

        return Drill
    if name == "DrillRecord":
        from pytest_drdrill.record import DrillRecord

        return DrillRecord
    raise AttributeError(f"module 'pytest_drdrill' has no attribute {name!r}")
