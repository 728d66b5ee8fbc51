"""The order of verdicts from best to worst, for combining them and for ranking in reports.

``INCONCLUSIVE`` ranks above ``WARN``: a drill that proved nothing is worse news than one
that recovered a little late, and only a failure is worse than not knowing. ``ABORTED``
(a guardrail or the kill switch stopped it) ranks just below a failure: it proved nothing,
and something went wrong enough to stop it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill.results import Verdict

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["SEVERITY", "severity", "worst"]

SEVERITY: tuple[Verdict, ...] = (
    Verdict.PASS, Verdict.WARN, Verdict.INCONCLUSIVE, Verdict.ABORTED, Verdict.FAIL,
)  # fmt: skip
"""Verdicts from best to worst."""


def severity(verdict: Verdict | str) -> int:
    """The rank of a verdict, or of its value as written in ``drill.json``; 0 when unknown."""
    if isinstance(verdict, Verdict):
        return SEVERITY.index(verdict)
    for rank, known in enumerate(SEVERITY):
        if known.value == verdict:
            return rank
    return 0


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The most severe of ``verdicts`` (at least one)."""
    return max(verdicts, key=SEVERITY.index)
