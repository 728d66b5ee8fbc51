"""Which template a drill sends to which audience of the communication matrix, and the verdicts.

The matrix is the ``communication`` section of the targets file
(:attr:`pytest_drdrill.targets.Targets.communication`):

* ``internal_alert`` goes to every internal audience when the failure is detected;
* ``customer_notification`` goes to every external audience that has a deadline, once
  its approval (when required) is granted;
* an external audience without a deadline (``as_appropriate``, e.g. ``public``) is not
  sent anything by a drill and is reported as not rehearsed;
* ``recovery_announcement`` goes, once recovery is measured, to every audience that was
  notified; it has no deadline.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Literal

from pytest_drdrill.durations import format_duration

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pytest_drdrill.targets import CommunicationStep, Targets

NotificationVerdict = Literal["pass", "fail", "not_required"]


@dataclasses.dataclass(frozen=True)
class CommunicationPlan:
    """The communication matrix sorted by what a drill does with each audience.

    .. versionadded:: 0.3

    :param alerts: internal audiences; they get ``internal_alert``.
    :param customer: external audiences with a deadline; they get
        ``customer_notification`` once approved.
    :param not_rehearsed: external audiences without a deadline; a drill sends them nothing.
    """

    alerts: tuple[CommunicationStep, ...]
    customer: tuple[CommunicationStep, ...]
    not_rehearsed: tuple[CommunicationStep, ...]

    @classmethod
    def from_steps(cls, steps: Iterable[CommunicationStep]) -> CommunicationPlan:
        """Sort communication steps into a plan, keeping their order.

        :param steps: the matrix's steps.
        :returns: the plan.
        """
        alerts: list[CommunicationStep] = []
        customer: list[CommunicationStep] = []
        skipped: list[CommunicationStep] = []
        for step in steps:
            if step.scope == "internal":
                alerts.append(step)
            elif step.within is None:
                skipped.append(step)
            else:
                customer.append(step)
        return cls(alerts=tuple(alerts), customer=tuple(customer), not_rehearsed=tuple(skipped))

    @classmethod
    def from_targets(cls, targets: Targets) -> CommunicationPlan:
        """The plan for a targets file's ``communication`` section.

        :param targets: loaded with :func:`pytest_drdrill.targets.load_targets`.
        :returns: the plan.
        """
        return cls.from_steps(targets.communication.values())


def approval_text(step: CommunicationStep) -> str:
    """How the matrix states a step's approval, for reports.

    .. versionadded:: 0.3

    :param step: a communication step.
    :returns: ``not required``, ``required`` or who must approve, e.g. ``ceo_level``.
    """
    if isinstance(step.approval_required, str):
        return step.approval_required
    return "required" if step.approval_required else "not required"


def not_rehearsed_reason(step: CommunicationStep) -> str:
    """Why a drill sends an audience nothing.

    .. versionadded:: 0.3

    :param step: an audience of :attr:`CommunicationPlan.not_rehearsed`.
    :returns: e.g. ``not rehearsed: as_appropriate, approval ceo_level``.
    """
    return f"not rehearsed: as_appropriate, approval {approval_text(step)}"


def judge(seconds_after_incident: float, within: float | None) -> NotificationVerdict:
    """Judge a delivered notification against its deadline.

    .. versionadded:: 0.3

    :param seconds_after_incident: from the incident's start to the delivery.
    :param within: the deadline in seconds; ``None`` when there is none.
    :returns: ``pass`` when on time (a delivery exactly at the deadline is on time),
        ``fail`` when late, ``not_required`` without a deadline.
    """
    if within is None:
        return "not_required"
    return "pass" if seconds_after_incident <= within else "fail"


def timing_detail(seconds_after_incident: float, within: float | None) -> str:
    """Say how a delivery's time compares with its deadline.

    .. versionadded:: 0.3

    :param seconds_after_incident: from the incident's start to the delivery.
    :param within: the deadline in seconds, or ``None``.
    :returns: e.g. ``1.20s after the incident, within 5m00s``.
    """
    after = f"{format_duration(seconds_after_incident)} after the incident"
    if within is None:
        return f"{after}, no deadline"
    if seconds_after_incident <= within:
        return f"{after}, within {format_duration(within)}"
    return f"{after}, over the {format_duration(within)} deadline"
