"""What a drill's verdict means for its test: pass, pass with a warning, fail, inconclusive.

A negative control's recovery is broken on purpose, so for it the rule turns over: red
is the evidence that the drill can tell, and any other verdict fails the test.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from pytest_drdrill.durations import format_duration
from pytest_drdrill.errors import DrillAborted, DrillInconclusive, TargetMissed, TargetWarning
from pytest_drdrill.results import Verdict

if TYPE_CHECKING:
    from pytest_drdrill.results import DrillResult

__all__ = ["enforce"]


def enforce(result: DrillResult) -> DrillResult:
    """Return ``result`` when its test passes; warn when it passed over target.

    Call it straight from the method the test called: the warning points two frames up.

    :raises TargetMissed: on a failing verdict, or a negative control that did not fail.
    :raises DrillInconclusive: when the fault never took effect.

    .. versionadded:: 0.5
    """
    summary = _summary(result)
    if result.verdict is Verdict.ABORTED:
        __tracebackhide__ = True
        raise DrillAborted(f"drill {result.scenario} ABORTED: {result.reason}\n{summary}")
    if result.negative_control:
        if result.verdict is Verdict.FAIL:
            return result
        __tracebackhide__ = True
        raise TargetMissed(
            f"negative control {result.scenario} did NOT go red (verdict "
            f"{result.verdict.value}: {result.reason}): its recovery is broken on purpose, "
            f"so a drill that cannot fail it cannot be trusted to fail a real broken "
            f"recovery either\n{summary}"
        )
    if result.verdict is Verdict.FAIL:
        __tracebackhide__ = True
        raise TargetMissed(f"drill {result.scenario} FAILED: {result.reason}\n{summary}")
    if result.verdict is Verdict.INCONCLUSIVE:
        __tracebackhide__ = True
        raise DrillInconclusive(f"drill {result.scenario} INCONCLUSIVE: {result.reason}\n{summary}")
    if result.verdict is Verdict.WARN:
        warnings.warn(TargetWarning(f"drill {result.scenario}: {result.reason}"), stacklevel=3)
    return result


def _summary(result: DrillResult) -> str:
    lines = []
    if result.rto is not None and result.rto.seconds is not None:
        lines.append(f"  RTO measured: {format_duration(result.rto.seconds)}")
    if result.rpo is not None:
        lines.append(
            f"  RPO measured: {result.rpo.lost_writes} acknowledged writes lost, "
            f"window {format_duration(result.rpo.window_seconds)}"
        )
    for service in result.services:
        rto = service.rto.seconds if service.rto is not None else None
        lost = service.rpo.lost_writes if service.rpo is not None else "?"
        if service.rto is None or not service.rto.effect_seen:
            shown = "no outage"
        else:
            shown = "never recovered" if rto is None else f"RTO {format_duration(rto)}"
        lines.append(f"  {service.service:<9} {service.verdict.value:<12} {shown}, {lost} lost")
    for function in result.functions:
        lines.append(f"  function {function.function}: {function.verdict.value}")
    for phase in result.phases[:16]:
        state = "ok" if phase.ok else "FAILED"
        lines.append(
            f"  phase {phase.name:<10} {phase.seconds * 1000:8.1f} ms {state} {phase.detail}"
        )
    return "\n".join(lines)
