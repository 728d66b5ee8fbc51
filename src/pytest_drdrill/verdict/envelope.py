"""The HA stack's failover envelope beside the measured RTO.

A failover outside the envelope its settings allow is not the failover the settings
describe (Patroni's users report both: far slower, patroni#1663, and far faster than
``ttl``, #2868). The tier's targets still decide pass or fail; a measured RTO outside
the envelope turns a pass into a warning and says so in the reason, so the report shows
"Patroni took 31.2 s; its settings allow at most 25.0 s" beside the figure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill.recovery.envelope import compare
from pytest_drdrill.results import Verdict

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_drdrill.recovery.envelope import FailoverEnvelope


def judge_envelope(
    judged: Verdict,
    reason: str,
    env: FailoverEnvelope,
    measured_seconds: float,
    *,
    note: Callable[[str], None],
) -> tuple[Verdict, str]:
    """The verdict and reason with the envelope comparison folded in.

    :param note: receives the comparison in words, inside or outside the envelope.
    """
    flag = compare(env, measured_seconds)
    if flag is None:
        bound = (
            "no bound"
            if env.worst_case_seconds is None
            else (f"at most {env.worst_case_seconds:.1f} s")
        )
        note(f"measured RTO {measured_seconds:.1f} s within the failover envelope ({bound})")
        return judged, reason
    note(f"outside the failover envelope: {flag}")
    if judged is Verdict.PASS:
        return Verdict.WARN, f"{reason}; but {flag}"
    return judged, f"{reason}; also {flag}"
