"""The facts a drill's notifications are filled in with.

Each placeholder of :mod:`pytest_drdrill.notify.templates` gets its value here, from the
incident as the drill saw it and from :class:`NotifySettings`, whose defaults say plainly
that no real incident commander, channel or status page stands behind a drill.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from pytest_drdrill.durations import format_duration

if TYPE_CHECKING:
    from pytest_drdrill.timing import Anchor


@dataclasses.dataclass(frozen=True)
class NotifySettings:
    """Who and where, for the notifications' placeholders.

    .. versionadded:: 0.3

    :param incident_commander: ``{incident_commander}``.
    :param communication_channel: ``{communication_channel}``.
    :param status_page_url: ``{status_page_url}``.
    :param report_url: ``{report_url}``.
    :param update_interval: seconds between promised updates; sets ``{next_update_time}``.
    :param actions_taken: ``{actions_taken}`` when the drill reports no detail of its own.
    """

    incident_commander: str = "drill: no real incident commander"
    communication_channel: str = "drill: no real incident channel"
    status_page_url: str = "drill: no real status page"
    report_url: str = "drill: no real post-incident report"
    update_interval: float = 1_800.0
    actions_taken: str = "automated failover"


@dataclasses.dataclass(frozen=True)
class Incident:
    """The incident a drill caused.

    .. versionadded:: 0.3

    :param incident_id: e.g. ``drill-20270115-0815-primary_crash``.
    :param started_at: :func:`pytest_drdrill.timing.monotonic` of the first fault.
    :param severity: e.g. ``critical``.
    :param affected_services: the services the fault hit.
    :param estimated_recovery: seconds after the start the services are expected back
        (the drill's RTO target), or ``None`` when unknown.
    """

    incident_id: str
    started_at: float
    severity: str
    affected_services: tuple[str, ...]
    estimated_recovery: float | None = None

    def fields(
        self,
        *,
        anchor: Anchor,
        settings: NotifySettings,
        now: float,
        current_status: str,
        actions_taken: str,
    ) -> dict[str, str]:
        """Values for every placeholder known once the incident is detected.

        :param anchor: turns monotonic stamps into wall-clock times.
        :param settings: who and where.
        :param now: the monotonic time of the message, for ``{next_update_time}``.
        :param current_status: ``{current_status}``.
        :param actions_taken: ``{actions_taken}``.
        :returns: one string per name of
            :data:`~pytest_drdrill.notify.templates.INCIDENT_FIELDS`.
        """
        services = ", ".join(self.affected_services) or "none named"
        if self.estimated_recovery is None:
            estimate = "not estimated (the drill has no RTO target)"
        else:
            at = anchor.isoformat(self.started_at + self.estimated_recovery)
            estimate = f"{at} (RTO target {format_duration(self.estimated_recovery)})"
        return {
            "incident_id": self.incident_id,
            "severity": self.severity,
            "start_time": anchor.isoformat(self.started_at),
            "affected_services": services,
            "affected_features": services,
            "issue_description": (
                f"{self.severity} disruption of {services}, caused on purpose by a "
                "disaster-recovery drill"
            ),
            "current_status": current_status,
            "estimated_recovery": estimate,
            "actions_taken": actions_taken,
            "incident_commander": settings.incident_commander,
            "communication_channel": settings.communication_channel,
            "status_page_url": settings.status_page_url,
            "report_url": settings.report_url,
            "next_update_time": anchor.isoformat(now + settings.update_interval),
        }


def recovery_fields(
    *, anchor: Anchor, at: float, rto_seconds: float, root_cause: str, services: tuple[str, ...]
) -> dict[str, str]:
    """Values for the placeholders known once recovery is measured.

    .. versionadded:: 0.3

    :param anchor: turns monotonic stamps into wall-clock times.
    :param at: the monotonic time the clients saw the services back.
    :param rto_seconds: the measured RTO.
    :param root_cause: what the drill injected.
    :param services: the services that were down.
    :returns: one string per name of
        :data:`~pytest_drdrill.notify.templates.RECOVERY_FIELDS`.
    """
    return {
        "resolution_time": anchor.isoformat(at),
        "root_cause": root_cause,
        "services_affected": ", ".join(services) or "none named",
        "total_duration": format_duration(rto_seconds),
    }
