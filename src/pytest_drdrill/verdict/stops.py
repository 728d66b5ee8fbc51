"""Drills stopped by something outside their measurement: the verdict says what.

- The fault proxy died mid-drill (:func:`with_proxy_death`): every path was cut, the outage
  the clients saw is the proxy's, not the system's, so the drill fails naming the proxy.
- A guardrail or the kill switch stopped it (:func:`with_abort`): its faults were healed at
  once, nothing is proven, the verdict is ``aborted`` whatever was measured.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from pytest_drdrill.results import Verdict

if TYPE_CHECKING:
    from pytest_drdrill.guardrails import Breach
    from pytest_drdrill.measure.proxy_watch import ProxyWatch
    from pytest_drdrill.results import DrillResult


def with_proxy_death(result: DrillResult, watch: ProxyWatch | None) -> DrillResult:
    """``result`` failed, naming the proxy, when ``watch`` saw it die; else unchanged.

    .. versionadded:: 0.7
    """
    if watch is None or watch.died_at is None:
        return result
    offset = watch.died_at - result.started_at
    reason = (
        f"the fault proxy at {watch.base_url} stopped answering {offset:.1f}s into the drill "
        f"({watch.error}): every path through it was cut, so what the clients saw after it is "
        "the proxy's outage, not the system's recovery; the drill's faults were healed. "
        "Find out why it died (its log is in the session's proxy/ directory) and run the "
        f"drill again. Before: {result.reason}"
    )
    return dataclasses.replace(result, verdict=Verdict.FAIL, reason=reason)


def with_abort(result: DrillResult, breach: Breach | None) -> DrillResult:
    """``result`` aborted, naming what stopped it, when ``breach`` happened; else unchanged.

    .. versionadded:: 0.7
    """
    if breach is None:
        return result
    reason = (
        f"aborted {breach.at - result.started_at:.1f}s into the drill: {breach.reason}; every "
        f"fault healed {breach.healed_seconds:.2f}s later. Nothing is proven by an aborted "
        f"drill. Before: {result.reason}"
    )
    return dataclasses.replace(result, verdict=Verdict.ABORTED, reason=reason)
