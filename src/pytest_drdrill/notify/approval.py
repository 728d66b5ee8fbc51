"""Who approves external notifications during a drill.

An approver is called with the :class:`~pytest_drdrill.targets.CommunicationStep` of an
audience whose notification needs approval (``approval_required`` in the matrix). It
returns a note saying who approved, recorded in the drill report, or ``None`` to
withhold the notification. It runs on the notifier's delivery thread and may block,
e.g. to ask a person: the time it takes counts against the audience's deadline, as a
real approval would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from pytest_drdrill.targets import CommunicationStep

Approver: TypeAlias = Callable[[CommunicationStep], str | None]
"""Decides an audience's approval: who approved, or ``None`` to withhold."""

AUTO_APPROVED = "auto-approved by the drill"


def auto_approve(step: CommunicationStep) -> str:
    """Grant every approval at once.

    .. versionadded:: 0.3

    :param step: the audience asking for approval.
    :returns: ``auto-approved by the drill``.
    """
    return AUTO_APPROVED


def never_approve(step: CommunicationStep) -> str | None:
    """Withhold every approval, to rehearse a notification that is never cleared.

    .. versionadded:: 0.3

    :param step: the audience asking for approval.
    :returns: ``None``.
    """
    return None
