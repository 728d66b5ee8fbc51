"""The notifier: renders the plan's messages at a drill's events and delivers them.

The drill calls the event methods from whatever thread sees the event (the fault
injector, the orchestrator, the test). They only render and queue; a single worker
thread asks for approvals and talks to the sinks, so a slow webhook or a slow approver
never delays failover. Each delivery is timed from the incident's start and judged
against the audience's deadline; :meth:`Notifier.close` waits for the queue and records
whatever it could not deliver as failed.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.durations import format_duration
from pytest_drdrill.notify.approval import auto_approve
from pytest_drdrill.notify.incident import Incident, NotifySettings, recovery_fields
from pytest_drdrill.notify.plan import judge, not_rehearsed_reason, timing_detail
from pytest_drdrill.notify.records import NotificationRecord
from pytest_drdrill.notify.sinks import Message
from pytest_drdrill.notify.templates import TEMPLATE_NAMES, TemplateError, load_templates

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pytest_drdrill.notify.approval import Approver
    from pytest_drdrill.notify.plan import CommunicationPlan, NotificationVerdict
    from pytest_drdrill.notify.sinks import Sink
    from pytest_drdrill.notify.templates import Template, TemplateName
    from pytest_drdrill.targets import CommunicationStep

logger = logging.getLogger(__name__)

_WITHHELD = "withheld"


@dataclasses.dataclass(frozen=True)
class _Job:
    """One template for one audience, to be delivered to every sink."""

    key: int
    template: TemplateName
    step: CommunicationStep
    message: Message | None
    error: str | None
    within: float | None
    needs_approval: bool


class Notifier:
    """Rehearses the communication plan during one drill.

    .. versionadded:: 0.3

    :param plan: who gets which template; from
        :meth:`~pytest_drdrill.notify.CommunicationPlan.from_targets`.
    :param sinks: where every message goes; at least one.
    :param incident_id: names the incident in every message.
    :param approver: decides approval for audiences that require it;
        :func:`~pytest_drdrill.notify.auto_approve` by default.
    :param templates: from :func:`~pytest_drdrill.notify.load_templates`; the package's
        defaults when ``None``.
    :param settings: commander, channel and URLs for the messages; drill defaults when
        ``None``.
    :param estimated_recovery: the drill's RTO target in seconds, for
        ``{estimated_recovery}``; ``None`` when it has none.
    :raises ValueError: when *sinks* is empty.
    """

    def __init__(
        self,
        plan: CommunicationPlan,
        sinks: Sequence[Sink],
        *,
        incident_id: str,
        approver: Approver = auto_approve,
        templates: Mapping[TemplateName, Template] | None = None,
        settings: NotifySettings | None = None,
        estimated_recovery: float | None = None,
    ) -> None:
        if not sinks:
            raise ValueError(
                "a Notifier needs at least one sink to deliver to; name one with "
                "--drill-notify / drill_notify (stdout, file:PATH or a webhook URL)"
            )
        self.plan = plan
        self.sinks = tuple(sinks)
        self.incident_id = incident_id
        self.approver = approver
        self.templates = load_templates() if templates is None else templates
        self.settings = settings or NotifySettings()
        self.estimated_recovery = estimated_recovery
        self._anchor = timing.anchor()
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._incident: Incident | None = None
        self._detected = False
        self._recovered = False
        self._closed = False
        self._keys = 0
        # Sinks still owed a record, per queued job; close() records them as failed.
        self._owed: dict[int, tuple[_Job, list[str]]] = {}
        self._notified: list[CommunicationStep] = []
        self._approvals: dict[str, str | None] = {}
        self._actions_taken = self.settings.actions_taken
        self._records: list[NotificationRecord] = []

    # --- events (any thread) ----------------------------------------------------------------

    def incident_started(
        self, at: float, *, affected_services: Sequence[str], severity: str
    ) -> None:
        """The first fault was injected; every deadline counts from here.

        Later calls are ignored: the incident starts once.

        :param at: :func:`pytest_drdrill.timing.monotonic` of the first fault.
        :param affected_services: the services the fault hit.
        :param severity: e.g. ``critical``.
        """
        with self._lock:
            if not self._usable("incident_started") or self._incident is not None:
                return
            self._incident = Incident(
                incident_id=self.incident_id,
                started_at=at,
                severity=severity,
                affected_services=tuple(affected_services),
                estimated_recovery=self.estimated_recovery,
            )
            for step in self.plan.not_rehearsed:
                reason = not_rehearsed_reason(step)
                self._records.append(
                    _unsent("customer_notification", step, "not_required", reason, step.within)
                )

    def detected(self, at: float, detail: str = "") -> None:
        """The drill decided the service failed: queue the alerts and customer notifications.

        Returns at once; delivery happens on the notifier's thread. Later calls are ignored.

        :param at: :func:`pytest_drdrill.timing.monotonic` of the decision.
        :param detail: what was decided, e.g. ``automated failover to pg-sync``; it fills
            ``{actions_taken}``.
        """
        with self._lock:
            if not self._usable("detected") or self._detected:
                return
            incident = self._incident
            if incident is None:
                logger.warning(
                    "drill notifier %s: detected() before incident_started(); no alert sent, "
                    "as no deadline can be measured",
                    self.incident_id,
                )
                return
            self._detected = True
            self._actions_taken = detail or self.settings.actions_taken
            fields = incident.fields(
                anchor=self._anchor,
                settings=self.settings,
                now=at,
                current_status="Investigating: failure detected, recovery in progress",
                actions_taken=self._actions_taken,
            )
            for step in self.plan.alerts:
                self._enqueue("internal_alert", step, fields, step.within, needs_approval=False)
            for step in self.plan.customer:
                self._enqueue(
                    "customer_notification",
                    step,
                    fields,
                    step.within,
                    needs_approval=bool(step.approval_required),
                )

    def recovered(
        self, at: float, *, rto_seconds: float, root_cause: str, services: Sequence[str]
    ) -> None:
        """Recovery was measured: queue the recovery announcement to every notified audience.

        Returns at once. Later calls are ignored.

        :param at: :func:`pytest_drdrill.timing.monotonic` when the clients saw the
            services back.
        :param rto_seconds: the measured RTO.
        :param root_cause: what the drill injected.
        :param services: the services that were down.
        """
        with self._lock:
            if not self._usable("recovered") or self._recovered:
                return
            incident = self._incident
            if incident is None:
                logger.warning(
                    "drill notifier %s: recovered() before incident_started(); nothing to announce",
                    self.incident_id,
                )
                return
            self._recovered = True
            fields = incident.fields(
                anchor=self._anchor,
                settings=self.settings,
                now=at,
                current_status="Resolved: services restored",
                actions_taken=self._actions_taken,
            )
            fields.update(
                recovery_fields(
                    anchor=self._anchor,
                    at=at,
                    rto_seconds=rto_seconds,
                    root_cause=root_cause,
                    services=tuple(services),
                )
            )
            for step in list(self._notified):
                self._enqueue("recovery_announcement", step, fields, None, needs_approval=False)

    # --- end --------------------------------------------------------------------------------

    def close(self, timeout: float) -> None:
        """Wait for every queued delivery, then stop the worker.

        Whatever is not delivered when *timeout* runs out is recorded as failed, and so is
        every notification the drill never triggered (no detection reported). Events
        after this are ignored.

        :param timeout: seconds to wait for the queue to drain.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            worker = self._worker
        if worker is not None:
            self._queue.put(None)
            worker.join(timeout)
        with self._lock:
            why = (
                f"not delivered: still queued or being delivered when close(timeout="
                f"{format_duration(timeout)}) gave up"
            )
            for job, _sinks in list(self._owed.values()):
                self._fail_owed_locked(job, why)
            if self._incident is not None and not self._detected:
                why = "not sent: the drill never reported detecting the failure"
                unsent: tuple[tuple[TemplateName, tuple[CommunicationStep, ...]], ...] = (
                    ("internal_alert", self.plan.alerts),
                    ("customer_notification", self.plan.customer),
                )
                for template, steps in unsent:
                    for step in steps:
                        self._records.append(_unsent(template, step, "fail", why, step.within))

    def results(self) -> tuple[NotificationRecord, ...]:
        """Every notification so far, sent or not, by template and then by audience.

        :returns: the records; complete once :meth:`close` has returned.
        """
        audiences = [
            s.audience for s in (*self.plan.alerts, *self.plan.customer, *self.plan.not_rehearsed)
        ]

        def order(record: NotificationRecord) -> tuple[int, int]:
            where = audiences.index(record.audience) if record.audience in audiences else 0
            return TEMPLATE_NAMES.index(record.template), where

        with self._lock:
            return tuple(sorted(self._records, key=order))

    # --- internals (lock held where noted) --------------------------------------------------

    def _usable(self, event: str) -> bool:
        if self._closed:
            logger.warning(
                "drill notifier %s: %s() after close() is ignored", self.incident_id, event
            )
        return not self._closed

    def _enqueue(
        self,
        template: TemplateName,
        step: CommunicationStep,
        fields: Mapping[str, str],
        within: float | None,
        *,
        needs_approval: bool,
    ) -> None:
        """Render and queue one message; the lock is held."""
        message: Message | None = None
        error: str | None = None
        try:
            rendered = self.templates[template].render(fields)
        except TemplateError as exc:
            error = str(exc)
        else:
            message = Message(
                template=template,
                audience=step.audience,
                subject=rendered.subject,
                body=rendered.body,
                incident_id=self.incident_id,
            )
        self._keys += 1
        job = _Job(self._keys, template, step, message, error, within, needs_approval)
        self._owed[job.key] = (job, [sink.spec for sink in self.sinks])
        if template != "recovery_announcement":
            self._notified.append(step)
        if self._worker is None:
            self._worker = threading.Thread(
                target=self._run, name=f"drdrill-notify-{self.incident_id}", daemon=True
            )
            self._worker.start()
        self._queue.put(job)

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                self._deliver(job)
            except Exception as exc:
                # The worker must outlive any one job, or every later message would be lost.
                logger.exception("drill notifier %s: delivery crashed", self.incident_id)
                self._fail_owed(job, f"not delivered: the notifier failed: {exc!r}")

    def _deliver(self, job: _Job) -> None:
        audience = job.step.audience
        approval: str | None = None
        if job.needs_approval:
            if not self._owes(job):
                return
            try:
                approval = self.approver(job.step)
            except Exception as exc:
                # A broken approver is the drill's finding, not a reason to stop the worker.
                self._settle(job, "fail", f"not sent: the approver raised {exc!r}", _WITHHELD)
                return
            with self._lock:
                self._approvals[audience] = approval
            if approval is None:
                within = format_duration(job.within) if job.within is not None else "none"
                self._settle(
                    job,
                    "fail",
                    f"no approval within the deadline ({within}): {_name(self.approver)} "
                    f"withheld the {job.template} for {audience}",
                    _WITHHELD,
                )
                return
        elif job.step.approval_required:
            with self._lock:
                approval = self._approvals.get(audience)
            if approval is None:
                self._settle(
                    job,
                    "not_required",
                    f"not sent: {audience} never got the customer_notification "
                    "(approval withheld), so there is no recovery to announce to them",
                    _WITHHELD,
                )
                return
        if job.message is None:
            self._settle(job, "fail", f"not rendered: {job.error}", approval)
            return
        for sink in self.sinks:
            # After close() gave up, nothing more may leave: it is already recorded as failed.
            if not self._owes(job, sink.spec):
                return
            try:
                confirmation = sink.deliver(job.message)
            except Exception as exc:
                # Each sink's failure is that sink's record; the other sinks still deliver.
                self._record(job, sink.spec, _failed(job, sink.spec, str(exc), approval))
                continue
            sent_at = timing.monotonic()
            incident = self._incident
            assert incident is not None  # jobs are queued only after the incident started
            after = sent_at - incident.started_at
            self._record(
                job,
                sink.spec,
                NotificationRecord(
                    template=job.template,
                    audience=audience,
                    sink=sink.spec,
                    sent_at=sent_at,
                    seconds_after_incident=after,
                    within_seconds=job.within,
                    delivered=True,
                    approval=approval,
                    verdict=judge(after, job.within),
                    detail=f"{confirmation}; {timing_detail(after, job.within)}",
                ),
            )

    def _owes(self, job: _Job, spec: str | None = None) -> bool:
        with self._lock:
            owed = self._owed.get(job.key)
            return owed is not None and (spec is None or spec in owed[1])

    def _record(self, job: _Job, spec: str, record: NotificationRecord) -> None:
        with self._lock:
            owed = self._owed.get(job.key)
            # close() gave up on this job and already recorded it as failed.
            if owed is None or spec not in owed[1]:
                return
            owed[1].remove(spec)
            if not owed[1]:
                del self._owed[job.key]
            self._records.append(record)

    def _settle(
        self, job: _Job, verdict: NotificationVerdict, detail: str, approval: str | None
    ) -> None:
        """Record a job that reached no sink, as one row without a sink."""
        with self._lock:
            if self._owed.pop(job.key, None) is None:
                return
            self._records.append(
                _unsent(job.template, job.step, verdict, detail, job.within, approval)
            )

    def _fail_owed(self, job: _Job, detail: str) -> None:
        """Record every sink a job still owes as failed; the lock is not held."""
        with self._lock:
            self._fail_owed_locked(job, detail)

    def _fail_owed_locked(self, job: _Job, detail: str) -> None:
        entry = self._owed.pop(job.key, None)
        if entry is None:
            return
        approval = self._approvals.get(job.step.audience) if job.step.approval_required else None
        for spec in entry[1]:
            self._records.append(_failed(job, spec, detail, approval))


def _name(approver: object) -> str:
    return getattr(approver, "__name__", None) or repr(approver)


def _unsent(
    template: TemplateName,
    step: CommunicationStep,
    verdict: NotificationVerdict,
    detail: str,
    within: float | None,
    approval: str | None = None,
) -> NotificationRecord:
    return NotificationRecord(
        template=template,
        audience=step.audience,
        sink="",
        sent_at=None,
        seconds_after_incident=None,
        within_seconds=within,
        delivered=False,
        approval=approval,
        verdict=verdict,
        detail=detail,
    )


def _failed(job: _Job, spec: str, detail: str, approval: str | None) -> NotificationRecord:
    return NotificationRecord(
        template=job.template,
        audience=job.step.audience,
        sink=spec,
        sent_at=None,
        seconds_after_incident=None,
        within_seconds=job.within,
        delivered=False,
        approval=approval,
        verdict="fail",
        detail=detail,
    )
