"""Rehearse the communication plan during a drill.

When a drill detects the failure it renders the ``internal_alert`` for every internal
audience of the communication matrix and the ``customer_notification`` for every
external audience with a deadline (once approved), and delivers them to the configured
sinks; once recovery is measured it sends the ``recovery_announcement`` to everyone it
notified. Each delivery is timed from the first fault and judged against the
audience's deadline in the targets file's ``communication`` section.

Typical use::

    plan = CommunicationPlan.from_targets(load_targets(Path("fixtures/targets.yaml")))
    notifier = Notifier(plan, [parse_sink("stdout")], incident_id="drill-42")
    notifier.incident_started(t0, affected_services=["postgres"], severity="critical")
    notifier.detected(t1, detail="automated failover to pg-sync")
    notifier.recovered(t2, rto_seconds=t2 - t0, root_cause="crash of pg-primary",
                       services=["postgres"])
    notifier.close(timeout=10.0)
    records = notifier.results()
"""

from __future__ import annotations

from pytest_drdrill.notify.approval import Approver, auto_approve, never_approve
from pytest_drdrill.notify.incident import Incident, NotifySettings
from pytest_drdrill.notify.notifier import Notifier
from pytest_drdrill.notify.plan import (
    CommunicationPlan,
    NotificationVerdict,
    judge,
    not_rehearsed_reason,
)
from pytest_drdrill.notify.records import NotificationRecord, to_dict
from pytest_drdrill.notify.sinks import (
    DeliveryError,
    FileSink,
    Message,
    Sink,
    SinkSpecError,
    StdoutSink,
    WebhookSink,
    parse_sink,
)
from pytest_drdrill.notify.templates import (
    DRILL_MARKER,
    TEMPLATE_NAMES,
    Rendered,
    Template,
    TemplateError,
    TemplateName,
    default_template_dir,
    load_templates,
)

__all__ = [
    "DRILL_MARKER",
    "TEMPLATE_NAMES",
    "Approver",
    "CommunicationPlan",
    "DeliveryError",
    "FileSink",
    "Incident",
    "Message",
    "NotificationRecord",
    "NotificationVerdict",
    "Notifier",
    "NotifySettings",
    "Rendered",
    "Sink",
    "SinkSpecError",
    "StdoutSink",
    "Template",
    "TemplateError",
    "TemplateName",
    "WebhookSink",
    "auto_approve",
    "default_template_dir",
    "judge",
    "load_templates",
    "never_approve",
    "not_rehearsed_reason",
    "parse_sink",
    "to_dict",
]
