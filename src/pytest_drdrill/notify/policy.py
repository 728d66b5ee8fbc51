"""When a drill tells the communication plan what, and with which severity.

The drill's record feeds :class:`IncidentFeed`: the first fault opens the incident, the
first failover decision is its detection. Once the drill is measured, :func:`settle`
announces the recovery the clients saw, waits for every delivery and keeps their
records in the result; a drill in which no client saw an outage and nothing was
detected had no incident, so nothing was due and no deadline applies.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Protocol

from pytest_drdrill.results import FaultRecord, Phase

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pytest_drdrill.results import DrillResult, RtoResult, Target
    from pytest_drdrill.targets import Targets

__all__ = ["DrillNotifier", "IncidentFeed", "incident_severity", "settle"]

_TIER_SEVERITY = (("tier_1", "critical"), ("tier_2", "high"), ("tier_3", "medium"))
"""Incident severity by tier-name prefix; a tier matching none is ``low``."""


class DrillNotifier(Protocol):
    """What a drill needs of the communication-plan notifier (:class:`~.notifier.Notifier`)."""

    def incident_started(self, at: float, *, affected_services: list[str], severity: str) -> None:
        """The first fault was injected at monotonic ``at``."""

    def detected(self, at: float, *, detail: str) -> None:
        """The orchestrator decided to fail over at ``at``."""

    def recovered(
        self, at: float, *, rto_seconds: float, root_cause: str, services: list[str]
    ) -> None:
        """The clients saw the service back at ``at``."""

    def close(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for every delivery."""

    def results(self) -> tuple[object, ...]:
        """One record per notification, sent or not."""
        ...


def incident_severity(target: Target | None, targets: Targets | None) -> str:
    """The incident severity the notifications carry: the tier's or function's criticality.

    .. versionadded:: 0.5
    """
    if target is None:
        return "high"
    if target.kind == "function" and targets is not None:
        function = targets.business_functions.get(target.name)
        if function is not None:
            return str(getattr(function.criticality, "value", function.criticality))
    for prefix, severity in _TIER_SEVERITY:
        if target.name.startswith(prefix):
            return severity
    return "low"


class IncidentFeed:
    """Tells the notifier of the incident's start and of the first failover decision.

    Subscribe it to the drill's record (``record.subscribe``).

    .. versionadded:: 0.5
    """

    def __init__(self, notifier: DrillNotifier, *, service: str, severity: str) -> None:
        self.notifier = notifier
        self.service = service
        self.severity = severity
        self.started = False
        self.detected = False

    def __call__(self, kind: str, item: object) -> None:
        """Pass the first fault and the first ``detection`` phase after it on."""
        if kind == "fault" and isinstance(item, FaultRecord) and not self.started:
            self.started = True
            self.notifier.incident_started(
                item.injected_at, affected_services=[self.service], severity=self.severity
            )
        elif kind == "phase" and isinstance(item, Phase) and item.name == "detection":
            if self.started and not self.detected:
                self.detected = True
                self.notifier.detected(item.ended, detail=item.detail)


def settle(
    notifier: DrillNotifier,
    result: DrillResult,
    *,
    service: str,
    seen: Mapping[str, RtoResult | None] | None = None,
) -> DrillResult:
    """Announce the measured recovery, wait for deliveries, keep their records in ``result``.

    :param service: the drill's own service; its recovery is the one announced.
    :param seen: each service's RTO as its client saw it; default the result's own.

    .. versionadded:: 0.5
    """
    if seen is None:
        seen = {s.service: s.rto for s in result.services}
        rto = result.rto
    else:
        rto = seen[service] if service in seen else seen["postgres"]
    if rto is not None and rto.recovered_at is not None and rto.seconds is not None:
        affected = [name for name, r in seen.items() if r is not None and r.effect_seen]
        notifier.recovered(
            rto.recovered_at,
            rto_seconds=rto.seconds,
            root_cause=_root_cause(result),
            services=affected or [service],
        )
    notifier.close(timeout=10.0)
    outage = any(r is not None and r.effect_seen for r in seen.values())
    detected = any(p.name == "detection" for p in result.phases)
    if not outage and not detected:
        # No client saw an outage and nothing was detected: there was no incident to
        # tell anyone about, so the plan's deadlines do not apply.
        return dataclasses.replace(
            result, notes=(*result.notes, "no incident seen: no notification was due")
        )
    return dataclasses.replace(result, notifications=tuple(notifier.results()))


def _root_cause(result: DrillResult) -> str:
    fault = result.fault
    return f"{fault.kind} of {fault.target} (drill)" if fault else "injected fault (drill)"
