"""What the notifier records of each notification, and its JSON form for ``drill.json``."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_drdrill.notify.plan import NotificationVerdict
    from pytest_drdrill.notify.templates import TemplateName


@dataclasses.dataclass(frozen=True)
class NotificationRecord:
    """One notification of a drill: sent, failed, withheld or not rehearsed.

    .. versionadded:: 0.3

    :param template: the template, e.g. ``internal_alert``.
    :param audience: the audience of the communication matrix, e.g. ``immediate_team``.
    :param sink: the sink's spec string; empty when no sink was involved (a withheld or
        not-rehearsed notification).
    :param sent_at: :func:`pytest_drdrill.timing.monotonic` when the sink confirmed
        delivery; ``None`` when it was not delivered.
    :param seconds_after_incident: from the incident's start to the delivery, or ``None``.
    :param within_seconds: the deadline from the matrix, or ``None`` when there is none.
    :param delivered: whether the sink confirmed delivery.
    :param approval: who approved; ``withheld`` when refused; ``None`` when not required.
    :param verdict: ``pass``, ``fail`` or ``not_required``.
    :param detail: what happened, for the report.
    """

    template: TemplateName
    audience: str
    sink: str
    sent_at: float | None
    seconds_after_incident: float | None
    within_seconds: float | None
    delivered: bool
    approval: str | None
    verdict: NotificationVerdict
    detail: str


def to_dict(record: NotificationRecord, drill_started_at: float) -> dict[str, object]:
    """The record as ``drill.json`` writes it.

    .. versionadded:: 0.3

    :param record: a record from :meth:`pytest_drdrill.notify.Notifier.results`.
    :param drill_started_at: the drill's monotonic start, to turn ``sent_at`` into an offset.
    :returns: a JSON-ready mapping with exactly the keys of the report schema's
        ``notification``.
    """
    return {
        "template": record.template,
        "audience": record.audience,
        "sink": record.sink,
        "sent_offset_seconds": (
            None if record.sent_at is None else record.sent_at - drill_started_at
        ),
        "seconds_after_incident": record.seconds_after_incident,
        "within_seconds": record.within_seconds,
        "delivered": record.delivered,
        "approval": record.approval,
        "verdict": record.verdict,
        "detail": record.detail,
    }
