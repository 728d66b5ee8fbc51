"""The core rule: how one measured RTO and RPO compare with one target.

Every other verdict (a service, a business function, a restore) is this rule applied to
what that drill measured, so every report, assertion and summary line says the same
thing about the same measurements.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill.durations import format_duration
from pytest_drdrill.results import Verdict

if TYPE_CHECKING:
    from pytest_drdrill.results import RpoResult, RtoResult, Target

__all__ = ["judge"]

_SHOWN_IDS = 5
"""How many lost write ids a failure message names before it abbreviates."""


def judge(
    target: Target,
    rto: RtoResult | None,
    rpo: RpoResult | None,
    *,
    observation_seconds: float,
    fault: str = "",
) -> tuple[Verdict, str]:
    """Decide a drill's verdict and say why in one line.

    The rules, in order:

    1. no RTO measurement, or the client saw no outage: ``INCONCLUSIVE``, because a
       fault that never took effect proves nothing;
    2. the service never recovered within the observation window: ``FAIL``;
    3. each of these is a ``FAIL`` reason: RTO over ``rto_max``; more lost
       acknowledged writes than ``max_lost_writes``; RPO window over ``rpo_max``;
    4. each of these is a ``WARN`` reason: RTO over ``rto_target``, RPO window over
       ``rpo_target`` (both within their maximum);
    5. otherwise ``PASS``, with a summary of what was measured.

    With any FAIL reason the verdict is ``FAIL``; else with any WARN reason it is
    ``WARN``. Reasons are joined with ``"; "``, failures first. A value equal to its
    target or maximum is within it. RPO is judged only when *rpo* is given and the
    target has the matching limit.

    .. versionadded:: 0.1

    :param target: what the drill is judged against, from
        :meth:`pytest_drdrill.targets.Targets.resolve`.
    :param rto: the recovery time measured from the client's history.
    :param rpo: the data loss measured after recovery; ``None`` when not measured.
    :param observation_seconds: how long the client watched for recovery after the fault.
    :param fault: a short description of the fault, e.g. ``crash of pg-primary``.
    :returns: the verdict and its reason.
    """
    if rto is None or not rto.effect_seen:
        return Verdict.INCONCLUSIVE, (
            f"the client saw no outage after {fault or 'the fault'}: the fault never took "
            "effect, so this drill proves nothing; check that the fault hits the node "
            "behind the service endpoint"
        )
    if rto.seconds is None:
        return Verdict.FAIL, (
            "service did not recover: no lasting acknowledged write within the "
            f"{format_duration(observation_seconds)} observation window after the fault "
            f"({target.name} target {format_duration(target.rto_target)}); raise "
            "--drill-observe / drill_observe if recovery is expected to take longer"
        )

    failures: list[str] = []
    warnings: list[str] = []
    _compare("RTO", rto.seconds, target.name, target.rto_target, target.rto_max, failures, warnings)
    if rpo is not None:
        cap = target.max_lost_writes
        if cap is not None and rpo.lost_writes > cap:
            ids = f" (ids {_ids(rpo.lost_ids)})" if rpo.lost_ids else ""
            failures.append(
                f"{_writes(rpo.lost_writes)} lost{ids}, more than max_lost_writes={cap}"
            )
        if target.rpo_max is not None:
            _compare(
                "RPO",
                rpo.window_seconds,
                target.name,
                target.rpo_target,
                target.rpo_max,
                failures,
                warnings,
            )
    if failures:
        return Verdict.FAIL, "; ".join(failures + warnings)
    if warnings:
        return Verdict.WARN, "; ".join(warnings)
    return Verdict.PASS, _summary(target, rto.seconds, rpo)


def _compare(
    label: str,
    measured: float,
    name: str,
    target: float | None,
    maximum: float,
    failures: list[str],
    warnings: list[str],
) -> None:
    value = f"{label} {format_duration(measured)}"
    if measured > maximum:
        if target is None:
            failures.append(f"{value} exceeds {name} maximum acceptable {format_duration(maximum)}")
        else:
            failures.append(
                f"{value} exceeds {name} target {format_duration(target)} "
                f"(maximum acceptable {format_duration(maximum)})"
            )
    elif target is not None and measured > target:
        warnings.append(
            f"{value} exceeds {name} target {format_duration(target)} "
            f"but is within the maximum acceptable {format_duration(maximum)}"
        )


def _summary(target: Target, rto_seconds: float, rpo: RpoResult | None) -> str:
    parts = [
        f"RTO {format_duration(rto_seconds)} within {target.name} target "
        f"{format_duration(target.rto_target)}"
    ]
    if rpo is None:
        parts.append("RPO not measured")
    elif rpo.lost_writes == 0:
        parts.append("0 acknowledged writes lost")
    else:
        window = f"RPO {format_duration(rpo.window_seconds)}"
        if target.rpo_target is not None:
            window += f" within target {format_duration(target.rpo_target)}"
        parts.append(f"{_writes(rpo.lost_writes)} lost, {window}")
    if rpo is not None and rpo.unacknowledged_present:
        parts.append(
            f"{rpo.unacknowledged_present} unacknowledged "
            f"write{'s' if rpo.unacknowledged_present != 1 else ''} present (not a loss)"
        )
    return "; ".join(parts)


def _writes(count: int) -> str:
    return f"{count} acknowledged write{'s' if count != 1 else ''}"


def _ids(ids: tuple[int, ...]) -> str:
    shown = ", ".join(str(i) for i in ids[:_SHOWN_IDS])
    rest = len(ids) - _SHOWN_IDS
    return f"{shown} and {rest} more" if rest > 0 else shown
