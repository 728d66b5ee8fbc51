"""Exceptions and warnings raised by pytest-drdrill.

Every error a user can meet says what happened, what was checked, and how to
fix it, naming the CLI flag, the ini key or the fixture argument to change.
"""

from __future__ import annotations


class DrillError(Exception):
    """Root of every error pytest-drdrill raises."""


class InvalidTargets(DrillError, ValueError):
    """The targets file (``--drill-targets`` / ``drill_targets``) is malformed or inconsistent."""


class TopologyError(DrillError, RuntimeError):
    """A topology node could not be built, started or reached."""


class ExecutableMissing(TopologyError, FileNotFoundError):
    """A server binary the local backend needs is not installed."""


class PatroniSettingsError(TopologyError, ValueError):
    """A team's Patroni settings (``--drill-patroni-config``) hold a value Patroni would refuse.

    The message names the file, the key path and the fix.
    """


class RepmgrSettingsError(TopologyError, ValueError):
    """A team's repmgr settings (``--drill-repmgr-config``) hold a value that breaks a drill.

    The message names the file, the key and the fix.
    """


class AutofailoverSettingsError(TopologyError, ValueError):
    """A team's pg_auto_failover settings (``--drill-pg-auto-failover-config``) break a drill.

    The message names the file, the key and the fix.
    """


class FaultError(DrillError, RuntimeError):
    """A fault could not be injected or healed."""


class FailoverFailed(DrillError, RuntimeError):
    """The failover code did not leave a writable primary behind the service endpoint.

    :param message: what failed.
    :param phases: the phases recorded up to the failure, so reports can show them.
    """

    def __init__(self, message: str, phases: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.phases = phases


class ProxyError(DrillError, RuntimeError):
    """The fault proxy's HTTP API refused a request or could not be reached."""


class TargetMissed(DrillError, AssertionError):
    """A measured RTO or RPO exceeds the maximum acceptable value of its target."""


class EnvelopeExceeded(TargetMissed):
    """The HA stack's own settings cannot fail over within the tier's maximum RTO.

    Raised before the fault is injected; the message names the settings to change.

    .. versionadded:: 0.6
    """


class DrillInconclusive(DrillError, AssertionError):
    """The fault never took effect: the client saw no outage, so nothing was proven."""


class DrillAborted(DrillError, AssertionError):
    """A guardrail or the kill switch stopped the drill: its faults were healed at once.

    .. versionadded:: 0.7
    """


class DrillWarning(UserWarning):
    """Base of the warnings pytest-drdrill emits."""


class TargetWarning(DrillWarning):
    """A measured value is over its target but within the maximum acceptable value."""
