"""The drill targets as typed, frozen tables, and how a drill's target is resolved.

Read from a targets file by :func:`pytest_drdrill.targets.load_targets`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pytest_drdrill.errors import DrillError
from pytest_drdrill.results import Target

SCHEMA_VERSION = 1
"""The only ``schema_version`` this release reads."""

Criticality = Literal["critical", "high", "medium", "low"]
_CRITICALITIES: tuple[Criticality, ...] = ("critical", "high", "medium", "low")

_NO_DEADLINE = "as_appropriate"

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)


class UnknownTarget(DrillError, LookupError):
    """A tier, business function or data category is not defined in the targets file.

    .. versionadded:: 0.1
    """


class TargetSelectionError(DrillError, ValueError):
    """:meth:`Targets.resolve` was called with a combination of arguments it cannot serve.

    .. versionadded:: 0.1
    """


@dataclasses.dataclass(frozen=True)
class Tier:
    """An RTO tier: how fast a group of services must be back.

    .. versionadded:: 0.1

    :param name: e.g. ``tier_1_critical``.
    :param services: the services the tier covers.
    :param target: seconds; a drill whose RTO is over it warns.
    :param maximum_acceptable: seconds; a drill whose RTO is over it fails.
    :param recovery_strategy: free text, e.g. ``hot_standby_immediate_failover``.
    """

    name: str
    services: tuple[str, ...]
    target: float
    maximum_acceptable: float
    recovery_strategy: str


@dataclasses.dataclass(frozen=True)
class DataCategory:
    """An RPO data category: how much recent data may be lost.

    .. versionadded:: 0.1

    :param name: e.g. ``critical_user_data``.
    :param target: seconds of acknowledged writes that may be lost before a drill warns.
    :param maximum_acceptable: seconds; over it a drill fails.
    :param backup_frequency: free text, e.g. ``continuous_replication``.
    :param backup_method: free text, e.g. ``synchronous_replication``.
    """

    name: str
    target: float
    maximum_acceptable: float
    backup_frequency: str
    backup_method: str


@dataclasses.dataclass(frozen=True)
class BackupRetention:
    """How long backups must be kept (requirements 4.1): what a backup tool is checked against.

    .. versionadded:: 0.7

    :param full_local: seconds a full backup stays in the primary region's repository.
    :param full_offsite: seconds it stays in the other region's repository.
    :param incremental: seconds incremental backups are kept.
    :param pitr: seconds back a point-in-time restore must reach.
    """

    full_local: float
    full_offsite: float
    incremental: float
    pitr: float


ProbeKind = Literal["http", "sql", "command"]


@dataclasses.dataclass(frozen=True)
class FunctionProbe:
    """One request a business function's client sends to the team's own system in a drill.

    .. versionadded:: 0.7

    :param name: a label for reports, e.g. ``login``.
    :param kind: ``http``, ``sql`` or ``command``.
    :param settings: the checked settings of that kind (``url``, ``method``, ``status``,
        ``body``, ``headers``; ``dsn_env``, ``query``, ``expect``; ``argv``).
    :param timeout: seconds one request may take before it counts as failed.
    """

    name: str
    kind: ProbeKind
    settings: Mapping[str, Any]
    timeout: float

    def describe(self) -> str:
        """What the probe sends, for reports (no secret: the DSN is named by its variable)."""
        if self.kind == "http":
            return f"http {self.settings.get('method', 'GET')} {self.settings['url']}"
        if self.kind == "sql":
            return f"sql on ${self.settings['dsn_env']}: {self.settings['query']}"
        return "command " + " ".join(self.settings["argv"])


@dataclasses.dataclass(frozen=True)
class BusinessFunction:
    """A business function with its own RTO and RPO, placed in a tier and a data category.

    .. versionadded:: 0.1

    :param name: e.g. ``user_authentication``.
    :param criticality: ``critical``, ``high``, ``medium`` or ``low``.
    :param tier: the :class:`Tier` whose ``maximum_acceptable`` caps its RTO.
    :param data_category: the :class:`DataCategory` whose ``maximum_acceptable`` caps its RPO.
    :param rto: seconds; the function's own RTO target.
    :param rpo: seconds; the function's own RPO target.
    :param impact: what users lose while it is down.
    """

    name: str
    criticality: Criticality
    tier: str
    data_category: str
    rto: float
    rpo: float
    impact: str
    #: Requests to the team's own system that measure the function end to end (0.7).
    probes: tuple[FunctionProbe, ...] = ()
    #: Seconds between two rounds of :attr:`probes` (0.7).
    probe_interval: float = 1.0


@dataclasses.dataclass(frozen=True)
class Dependency:
    """A business process and the services it cannot run without.

    .. versionadded:: 0.1

    :param name: e.g. ``video_upload_workflow``.
    :param function: the :class:`BusinessFunction` the process belongs to.
    :param depends_on: the services it needs.
    :param impact_without: what happens when one of them is down.
    """

    name: str
    function: str
    depends_on: tuple[str, ...]
    impact_without: str


@dataclasses.dataclass(frozen=True)
class DowntimeCost:
    """One row of the downtime cost table, in the file's currency.

    .. versionadded:: 0.1

    :param duration: seconds of downtime.
    :param revenue_loss: revenue lost over that downtime.
    :param productivity_loss: staff time lost.
    :param recovery_cost: cost of recovering.
    :param total: the sum of the three.
    """

    duration: float
    revenue_loss: float
    productivity_loss: float
    recovery_cost: float
    total: float


@dataclasses.dataclass(frozen=True)
class CommunicationStep:
    """Who is told about an incident, how, and how soon.

    .. versionadded:: 0.1

    :param audience: e.g. ``immediate_team`` or ``customers``.
    :param recipients: roles to notify; empty for audiences such as customers.
    :param methods: channels, e.g. ``slack_alert``, ``status_page``.
    :param within: seconds after the incident starts; ``None`` for ``as_appropriate``.
    :param approval_required: ``False``, ``True``, or who must approve, e.g. ``ceo_level``
        (a non-empty string, so it is truthy like ``True``).
    :param scope: ``internal`` or ``external``: the sub-section of ``communication`` it is in.
    """

    audience: str
    recipients: tuple[str, ...]
    methods: tuple[str, ...]
    within: float | None
    approval_required: bool | str
    scope: Literal["internal", "external"] = "internal"


@dataclasses.dataclass(frozen=True)
class Targets:
    """Everything a targets file defines, checked for consistency.

    The tables are read-only mappings keyed by name, in the file's order.

    .. versionadded:: 0.1

    :param tiers: RTO tiers by name.
    :param data_categories: RPO data categories by name.
    :param business_functions: business functions by name.
    :param business_dependencies: business processes by name.
    :param downtime_costs: cost rows, shortest downtime first.
    :param communication: communication steps by audience.
    :param mtd: maximum tolerable downtime, seconds (US 7.4.2: 20 minutes).
    :param source: the file these were read from.
    :param cost_currency: the currency of :attr:`downtime_costs`.
    :param service_map: dependency name (from ``depends_on``) to the drill-topology
        services that stand for it.
    :param drill_schedule: tier to the cadence its drill must pass at, for
        ``--drill-enforce-cadence`` (e.g. ``{"tier_1_critical": "monthly"}``).
    :param backup_retention: how long backups must be kept, or ``None`` when the file
        sets no retention (new in 0.7).
    """

    tiers: Mapping[str, Tier] = dataclasses.field(hash=False)
    data_categories: Mapping[str, DataCategory] = dataclasses.field(hash=False)
    business_functions: Mapping[str, BusinessFunction] = dataclasses.field(hash=False)
    business_dependencies: Mapping[str, Dependency] = dataclasses.field(hash=False)
    downtime_costs: tuple[DowntimeCost, ...]
    communication: Mapping[str, CommunicationStep] = dataclasses.field(hash=False)
    mtd: float
    source: Path
    cost_currency: str = "USD"
    service_map: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict, hash=False)
    drill_schedule: Mapping[str, str] = dataclasses.field(default_factory=dict, hash=False)
    backup_retention: BackupRetention | None = None

    def function_services(self, function: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The drill-topology services a business function depends on.

        Its business processes' ``depends_on`` entries are mapped through
        ``service_map``; entries with no mapping are outside the drill topology.

        .. versionadded:: 0.2

        :param function: a key of ``business_functions``.
        :returns: the topology services (in :data:`SERVICES` order) and the
            dependencies not exercised.
        """
        from pytest_drdrill.topology._protocol import SERVICES

        found: set[str] = set()
        missing: list[str] = []
        for dependency in self.business_dependencies.values():
            if dependency.function != function:
                continue
            for name in dependency.depends_on:
                mapped = self.service_map.get(name)
                if mapped:
                    found.update(mapped)
                elif name not in missing:
                    missing.append(name)
        return tuple(s for s in SERVICES if s in found), tuple(missing)

    def categories_in(self, service: str) -> tuple[str, ...]:
        """The data categories a topology service holds, strictest RPO first.

        A category is held by ``service`` when a business function of that category
        depends, through its business processes and ``service_map``, on ``service``.

        .. versionadded:: 0.7

        :param service: a topology service (``postgres``, ``redis``, ``s3``).
        """
        held = {
            function.data_category
            for name, function in self.business_functions.items()
            if service in self.function_services(name)[0]
        }
        found = [self.data_categories[c] for c in held if c in self.data_categories]
        return tuple(c.name for c in sorted(found, key=lambda c: (c.target, c.name)))

    def resolve(
        self,
        *,
        tier: str | None = None,
        function: str | None = None,
        data: str | None = None,
        max_lost_writes: int | None = None,
    ) -> Target:
        """Build the :class:`~pytest_drdrill.results.Target` a drill is judged against.

        With *function*, the RTO target is the function's ``rto`` and the RTO maximum
        its tier's ``maximum_acceptable``; the RPO target is its ``rpo`` and the RPO
        maximum its data category's ``maximum_acceptable``. With *tier*, RTO target and
        maximum come from the tier, and RPO from the data category *data* when given
        (otherwise RPO is not judged).

        .. versionadded:: 0.1

        :param tier: a key of ``tiers``, e.g. ``tier_1_critical``.
        :param function: a key of ``business_functions``, e.g. ``user_authentication``.
        :param data: a key of ``data_categories``; only together with *tier*.
        :param max_lost_writes: a hard cap on lost acknowledged writes, or ``None``.
        :returns: the resolved target.
        :raises TargetSelectionError: unless exactly one of *tier* and *function* is
            given, when *data* comes with *function*, or when *max_lost_writes* is
            not a non-negative integer.
        :raises UnknownTarget: when a name is not defined in the file.
        """
        if isinstance(max_lost_writes, bool) or (
            max_lost_writes is not None and max_lost_writes < 0
        ):
            raise TargetSelectionError(
                f"max_lost_writes={max_lost_writes!r} is not a count of writes; "
                "pass a whole number of 0 or more (0 for synchronous replication), "
                "or None to not cap lost writes"
            )
        if function is not None:
            if tier is not None:
                raise TargetSelectionError(
                    f"both tier={tier!r} and function={function!r} were given; a drill is "
                    "judged against one of them: pass only function= (it implies its tier) "
                    "or only tier="
                )
            if data is not None:
                raise TargetSelectionError(
                    f"data={data!r} was given with function={function!r}; a business "
                    f"function's data category is set in {self.source} under "
                    f"business_functions.{function}.data_category: drop data= or use tier="
                )
            func = _lookup(self.business_functions, function, "business function", self.source)
            func_tier = self.tiers[func.tier]
            category = self.data_categories[func.data_category]
            return Target(
                kind="function",
                name=func.name,
                rto_target=func.rto,
                rto_max=func_tier.maximum_acceptable,
                rpo_target=func.rpo,
                rpo_max=category.maximum_acceptable,
                max_lost_writes=max_lost_writes,
            )
        if tier is None:
            raise TargetSelectionError(
                "neither tier= nor function= was given; name the tier "
                f"({', '.join(self.tiers)}) or the business function "
                f"({', '.join(self.business_functions) or 'none defined'}) "
                f"from {self.source} that the drill is judged against"
            )
        found = _lookup(self.tiers, tier, "tier", self.source)
        rpo_target: float | None = None
        rpo_max: float | None = None
        if data is not None:
            category = _lookup(self.data_categories, data, "data category", self.source)
            rpo_target, rpo_max = category.target, category.maximum_acceptable
        return Target(
            kind="tier",
            name=found.name,
            rto_target=found.target,
            rto_max=found.maximum_acceptable,
            rpo_target=rpo_target,
            rpo_max=rpo_max,
            max_lost_writes=max_lost_writes,
        )

    def downtime_cost(self, seconds: float) -> float:
        """Estimate what a downtime of *seconds* costs, from the ``downtime_costs`` table.

        The table's totals are joined by straight lines, starting from a cost of 0 at
        0 seconds: with the default table, 30 minutes cost half of the 1-hour row
        (4,000) and 2 hours cost a third of the way from the 1-hour row to the
        4-hour row (15,667). Past the longest row the cost grows at that row's own
        average rate, its total divided by its duration: with the default table, two
        weeks cost twice the 1-week total.

        .. versionadded:: 0.1

        :param seconds: the downtime, e.g. a measured RTO.
        :returns: the estimated total cost, in :attr:`cost_currency`.
        :raises ValueError: when *seconds* is negative or not finite.
        :raises UnknownTarget: when the file has no ``downtime_costs`` rows.
        """
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(
                f"cannot estimate the cost of {seconds!r} seconds of downtime: "
                "pass a finite number of 0 or more"
            )
        if not self.downtime_costs:
            raise UnknownTarget(
                f"{self.source} has no downtime_costs rows to estimate a cost from; add "
                "rows such as '- {duration: 1_hour, revenue_loss: 5000, productivity_loss: "
                "2000, recovery_cost: 1000, total: 8000}' under downtime_costs.rows"
            )
        start, start_cost = 0.0, 0.0
        for row in self.downtime_costs:
            if seconds <= row.duration:
                share = (seconds - start) / (row.duration - start)
                return start_cost + share * (row.total - start_cost)
            start, start_cost = row.duration, row.total
        last = self.downtime_costs[-1]
        return seconds * last.total / last.duration


def _lookup(table: Mapping[str, _T], name: str, what: str, source: Path) -> _T:
    try:
        return table[name]
    except KeyError:
        pass
    section = {
        "tier": "tiers",
        "business function": "business_functions",
        "data category": "data_categories",
    }[what]
    valid = ", ".join(table) if table else "none"
    close = difflib.get_close_matches(name, list(table), n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownTarget(
        f"unknown {what} {name!r}: {source} defines these under {section}: {valid}{guess}. "
        f"Use one of them, or add {name!r} under {section} in {source} "
        "(another targets file can be chosen with --drill-targets / drill_targets)"
    )
