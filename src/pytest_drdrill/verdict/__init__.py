"""Every verdict rule of a drill, in one package; measure/ only measures.

:func:`judge` is the core rule (one RTO and RPO against one target). The others apply it
to what each kind of drill measured: a failover drill's services, business functions
and their combination (:mod:`.failover`), a fault that must not cause a failover, a
restore and a verification drill (:mod:`.backups`); two writable primaries at once fail
any of them (:mod:`.split_brain`). :mod:`.severity` orders verdicts for
combining them and for the reports that rank them; :mod:`.outcome` says what a verdict
means for the test.

.. versionchanged:: 0.5 a package: every judging rule moved here.
"""

from __future__ import annotations

from pytest_drdrill.verdict.backups import judge_checks, judge_restore
from pytest_drdrill.verdict.envelope import judge_envelope
from pytest_drdrill.verdict.failover import (
    judge_drill,
    judge_functions,
    judge_no_failover,
    judge_service,
    judge_tolerated,
    with_recovery_errors,
)
from pytest_drdrill.verdict.outcome import enforce
from pytest_drdrill.verdict.rule import judge
from pytest_drdrill.verdict.severity import SEVERITY, severity, worst
from pytest_drdrill.verdict.split_brain import judge_split_brain, with_split_brain

__all__ = [
    "SEVERITY",
    "enforce",
    "judge",
    "judge_checks",
    "judge_drill",
    "judge_envelope",
    "judge_functions",
    "judge_no_failover",
    "judge_restore",
    "judge_service",
    "judge_split_brain",
    "judge_tolerated",
    "severity",
    "with_recovery_errors",
    "with_split_brain",
    "worst",
]
