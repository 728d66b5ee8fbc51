"""The drill targets: recovery tiers, data categories and business functions.

A targets file (``fixtures/targets.yaml`` by default, another with
``--drill-targets`` / ``drill_targets``) holds the business-continuity tables a
drill is judged against: RTO tiers, RPO data categories, the business functions
that map onto them, their dependencies, what downtime costs, who is told when,
and the maximum tolerable downtime. :func:`load_targets` reads and checks it;
:meth:`Targets.resolve` turns a tier or function name into the
:class:`~pytest_drdrill.results.Target` that :func:`pytest_drdrill.verdict.judge`
compares measurements with.

Every mistake in the file raises :class:`~pytest_drdrill.errors.InvalidTargets`
naming the file, the key (``tiers.tier_1_critical.maximum_acceptable``) and the fix.
"""

from __future__ import annotations

from pathlib import Path

from pytest_drdrill.targets.loader import load_targets
from pytest_drdrill.targets.model import (
    SCHEMA_VERSION,
    BusinessFunction,
    CommunicationStep,
    Criticality,
    DataCategory,
    Dependency,
    DowntimeCost,
    Targets,
    TargetSelectionError,
    Tier,
    UnknownTarget,
)

#: The requirements' tables shipped with the package: the targets of a run whose project
#: has no targets file. This copy is the source of truth; the repository's
#: ``fixtures/targets.yaml`` is the same bytes (a unit test compares them), kept there as
#: the example a team copies and edits.
PACKAGED_TARGETS = Path(__file__).with_name("requirements.yaml")

__all__ = [
    "PACKAGED_TARGETS",
    "SCHEMA_VERSION",
    "BusinessFunction",
    "CommunicationStep",
    "Criticality",
    "DataCategory",
    "Dependency",
    "DowntimeCost",
    "TargetSelectionError",
    "Targets",
    "Tier",
    "UnknownTarget",
    "load_targets",
]
