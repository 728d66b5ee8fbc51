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

import dataclasses
import difflib
import math
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NoReturn, Protocol, TypeVar, cast

import yaml

from pytest_drdrill.durations import InvalidDuration, format_duration, parse_duration
from pytest_drdrill.errors import DrillError, InvalidTargets
from pytest_drdrill.results import Target

__all__ = [
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


def load_targets(path: Path) -> Targets:
    """Read and check a targets file.

    Besides YAML syntax, the file is checked for: a mapping at the top level;
    ``schema_version: 1``; every required section and key; no unknown keys (a typo
    such as ``maximun_acceptable`` is refused with the closest valid key); durations
    that parse and are not negative; targets no larger than their
    ``maximum_acceptable``; business functions naming defined tiers and data
    categories, with an ``rto`` within the tier's maximum and an ``rpo`` within the
    data category's maximum; dependencies naming defined functions; and cost rows
    whose ``total`` is the sum of their parts, listed from the shortest downtime.

    .. versionadded:: 0.1

    :param path: the YAML file.
    :returns: its contents.
    :raises InvalidTargets: on any of the problems above, or when the file cannot be
        read; the message names the file, the key and how to fix it.
    """
    return _Reader(path).read()


@dataclasses.dataclass(frozen=True)
class _Spec:
    """The keys one mapping of the file takes, each with an example value for hints."""

    what: str
    required: Mapping[str, str]
    optional: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return [*self.required, *self.optional]


_TOP = _Spec(
    "the top level",
    required={
        "schema_version": "1",
        "mtd": "20_minutes",
        "tiers": "{tier_1_critical: {target: 15_minutes, maximum_acceptable: 30_minutes}}",
    },
    optional={
        "data_categories": "{critical_user_data: {target: 5_minutes, "
        "maximum_acceptable: 15_minutes}}",
        "business_functions": "{user_authentication: {criticality: critical, ...}}",
        "business_dependencies": "{video_upload_workflow: {function: video_upload, ...}}",
        "downtime_costs": "{currency: USD, rows: [...]}",
        "communication": "{internal: {...}, external: {...}}",
    },
)
_TIER = _Spec(
    "a tier",
    required={"target": "15_minutes", "maximum_acceptable": "30_minutes"},
    optional={
        "services": "[authentication, core_api]",
        "recovery_strategy": "hot_standby_immediate_failover",
    },
)
_DATA = _Spec(
    "a data category",
    required={"target": "5_minutes", "maximum_acceptable": "15_minutes"},
    optional={
        "backup_frequency": "continuous_replication",
        "backup_method": "synchronous_replication",
    },
)
_FUNCTION = _Spec(
    "a business function",
    required={
        "criticality": "critical",
        "tier": "tier_1_critical",
        "data_category": "critical_user_data",
        "rto": "15_minutes",
        "rpo": "5_minutes",
    },
    optional={"impact": "Complete service unavailable"},
)
_DEPENDENCY = _Spec(
    "a business dependency",
    required={"function": "video_upload", "depends_on": "[storage_service, database]"},
    optional={"impact_without": "No new content can be uploaded"},
)
_COSTS = _Spec(
    "downtime_costs",
    required={"rows": "[{duration: 1_hour, revenue_loss: 5000, ...}]"},
    optional={"currency": "USD"},
)
_COST_ROW = _Spec(
    "a downtime cost row",
    required={
        "duration": "1_hour",
        "revenue_loss": "5000",
        "productivity_loss": "2000",
        "recovery_cost": "1000",
        "total": "8000",
    },
)
_COMMUNICATION = _Spec(
    "communication",
    required={},
    optional={
        "internal": "{immediate_team: {...}}",
        "external": "{customers: {...}}",
    },
)
_STEP = _Spec(
    "a communication step",
    required={"methods": "[slack_alert, email]", "within": "5_minutes"},
    optional={"recipients": "[on_call_engineer, team_lead]", "approval_required": "true"},
)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping.

    Plain PyYAML keeps the last of two equal keys without a word, so a second
    ``tier_1_critical:`` block pasted further down would silently replace the first.
    """


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[object, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:
            continue  # an unhashable key; construct_mapping reports it below
        if first is not None:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"found the key {key!r} a second time (first on line {first.start_mark.line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,
)


class _Reader:
    """Walks the parsed file, turning each problem into an :class:`InvalidTargets`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str, fix: str) -> NoReturn:
        raise InvalidTargets(f"invalid targets file {self.path}: {key}: {problem}\nHint: {fix}")

    def read(self) -> Targets:
        document = self.parse()
        top = self.mapping(document, "", _TOP)
        version = top["schema_version"]
        if type(version) is not int or version != SCHEMA_VERSION:
            self.fail(
                "schema_version",
                f"schema_version is {version!r}, but this release of pytest-drdrill reads "
                f"only schema_version {SCHEMA_VERSION}",
                f"write 'schema_version: {SCHEMA_VERSION}' and make the file's tables match "
                "fixtures/targets.yaml shipped with pytest-drdrill",
            )
        mtd = self.duration(top["mtd"], "mtd")
        tiers = self.table(top["tiers"], "tiers", self.tier, allow_empty=False)
        categories = self.table(top.get("data_categories", {}), "data_categories", self.category)
        functions = self.table(
            top.get("business_functions", {}),
            "business_functions",
            lambda value, key, name: self.function(value, key, name, tiers, categories),
        )
        dependencies = self.table(
            top.get("business_dependencies", {}),
            "business_dependencies",
            lambda value, key, name: self.dependency(value, key, name, functions),
        )
        currency, costs = self.costs(top.get("downtime_costs"))
        communication = self.communication(top.get("communication", {}))
        return Targets(
            tiers=types.MappingProxyType(tiers),
            data_categories=types.MappingProxyType(categories),
            business_functions=types.MappingProxyType(functions),
            business_dependencies=types.MappingProxyType(dependencies),
            downtime_costs=costs,
            communication=types.MappingProxyType(communication),
            mtd=mtd,
            source=self.path,
            cost_currency=currency,
        )

    def parse(self) -> object:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidTargets(
                f"cannot read the targets file {self.path}: {exc}\n"
                "Hint: pass an existing UTF-8 YAML file with --drill-targets or the "
                "drill_targets ini key, or leave both unset to use the default targets"
            ) from exc
        try:
            return yaml.load(text, Loader=_UniqueKeyLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = (
                f"line {mark.line + 1}, column {mark.column + 1}"
                if mark is not None
                else "(position unknown)"
            )
            problem = getattr(exc, "problem", None) or str(exc)
            context = getattr(exc, "context", None)
            context_mark = getattr(exc, "context_mark", None)
            if context and context_mark is not None:
                # PyYAML often finds the problem a line after its cause (an unclosed
                # bracket is noticed at the next key), so point at both.
                problem += (
                    f" ({context} started at line {context_mark.line + 1}, "
                    f"column {context_mark.column + 1})"
                )
            raise InvalidTargets(
                f"invalid targets file {self.path}: YAML error at {where}: {problem}\n"
                "Hint: fix the YAML near that line (indent with spaces, quote text that "
                "contains ': ' or starts with a special character, give each key once)"
            ) from exc

    def mapping(self, value: object, key: str, spec: _Spec) -> dict[str, Any]:
        where = key or "top level"
        if not isinstance(value, dict):
            self.fail(
                where,
                f"{spec.what} must be a mapping of keys to values, but it is {_describe(value)}",
                f"write it as 'key: value' lines; {spec.what} takes: {', '.join(spec.keys)}",
            )
        prefix = f"{key}." if key else ""
        for name in value:
            if not isinstance(name, str):
                self.fail(
                    f"{prefix}{name!r}",
                    f"the key {name!r} is not text",
                    f"{spec.what} takes: {', '.join(spec.keys)}",
                )
            if name not in spec.keys:
                close = difflib.get_close_matches(name, spec.keys, n=1)
                guess = f"did you mean {close[0]!r}?" if close else "remove or rename it."
                self.fail(
                    f"{prefix}{name}",
                    f"unknown key {name!r} in {spec.what}",
                    f"{guess} Allowed in {spec.what}: {', '.join(spec.keys)}",
                )
        for name, example in spec.required.items():
            if name not in value:
                self.fail(
                    f"{prefix}{name}",
                    f"the required key {name!r} is missing from {spec.what}",
                    f"add '{name}: {example}'" + (f" under {key}" if key else ""),
                )
        return value

    def table(
        self,
        value: object,
        key: str,
        build: _Builder[_T],
        *,
        allow_empty: bool = True,
    ) -> dict[str, _T]:
        if not isinstance(value, dict):
            self.fail(
                key,
                f"{key} must be a mapping from names to entries, but it is {_describe(value)}",
                f"write one 'name:' line per entry under {key}, each followed by its "
                "indented keys, as in fixtures/targets.yaml",
            )
        if not value and not allow_empty:
            self.fail(
                key,
                f"{key} is empty",
                f"define at least one entry under {key}, e.g. 'tier_1_critical: "
                "{target: 15_minutes, maximum_acceptable: 30_minutes}'",
            )
        built: dict[str, _T] = {}
        for name, entry in value.items():
            if not isinstance(name, str):
                self.fail(
                    f"{key}.{name!r}",
                    f"the name {name!r} is not text",
                    "quote it or use a name such as tier_1_critical",
                )
            built[name] = build(entry, f"{key}.{name}", name)
        return built

    def duration(self, value: object, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(
                key,
                f"expected a duration, got {_describe(value)}",
                "write a duration such as 15_minutes, 1_hour, 1h30m or 900 (seconds)",
            )
        try:
            return parse_duration(value)
        except InvalidDuration as exc:
            self.fail(key, str(exc), "write a duration such as 15_minutes, 1_hour, 1h30m or 900")

    def text(self, value: object, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"expected non-empty text, got {_describe(value)}", "write a word")
        return value

    def names(self, value: object, key: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(
            isinstance(item, str) and item.strip() for item in value
        ):
            self.fail(
                key,
                f"expected a list of names, got {_describe(value)}",
                "write a list such as [authentication, core_api]",
            )
        return tuple(value)

    def amount(self, value: object, key: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            self.fail(
                key,
                f"expected an amount of money of 0 or more, got {_describe(value)}",
                "write a plain number without currency sign or thousands separators, e.g. 5000",
            )
        return float(value)

    def bounded(self, entry: Mapping[str, Any], key: str) -> tuple[float, float]:
        target = self.duration(entry["target"], f"{key}.target")
        maximum = self.duration(entry["maximum_acceptable"], f"{key}.maximum_acceptable")
        if target > maximum:
            self.fail(
                f"{key}.target",
                f"target {format_duration(target)} is above maximum_acceptable "
                f"{format_duration(maximum)}",
                "lower target or raise maximum_acceptable: the target is where a drill "
                "starts to warn, the maximum where it fails",
            )
        return target, maximum

    def tier(self, value: object, key: str, name: str) -> Tier:
        entry = self.mapping(value, key, _TIER)
        target, maximum = self.bounded(entry, key)
        return Tier(
            name=name,
            services=self.names(entry.get("services", []), f"{key}.services"),
            target=target,
            maximum_acceptable=maximum,
            recovery_strategy=self.optional_text(entry, "recovery_strategy", key),
        )

    def category(self, value: object, key: str, name: str) -> DataCategory:
        entry = self.mapping(value, key, _DATA)
        target, maximum = self.bounded(entry, key)
        return DataCategory(
            name=name,
            target=target,
            maximum_acceptable=maximum,
            backup_frequency=self.optional_text(entry, "backup_frequency", key),
            backup_method=self.optional_text(entry, "backup_method", key),
        )

    def optional_text(self, entry: Mapping[str, Any], name: str, key: str) -> str:
        return self.text(entry[name], f"{key}.{name}") if name in entry else ""

    def reference(
        self, entry: Mapping[str, Any], name: str, key: str, table: Mapping[str, _T], section: str
    ) -> _T:
        wanted = self.text(entry[name], f"{key}.{name}")
        if wanted in table:
            return table[wanted]
        close = difflib.get_close_matches(wanted, list(table), n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        self.fail(
            f"{key}.{name}",
            f"{wanted!r} is not defined under {section}",
            f"{guess}use one of: {', '.join(table) or 'none (the section is empty)'}, "
            f"or add {wanted!r} under {section}",
        )

    def function(
        self,
        value: object,
        key: str,
        name: str,
        tiers: Mapping[str, Tier],
        categories: Mapping[str, DataCategory],
    ) -> BusinessFunction:
        entry = self.mapping(value, key, _FUNCTION)
        criticality = entry["criticality"]
        if criticality not in _CRITICALITIES:
            self.fail(
                f"{key}.criticality",
                f"unknown criticality {criticality!r}",
                f"use one of: {', '.join(_CRITICALITIES)}",
            )
        tier = self.reference(entry, "tier", key, tiers, "tiers")
        category = self.reference(entry, "data_category", key, categories, "data_categories")
        rto = self.duration(entry["rto"], f"{key}.rto")
        rpo = self.duration(entry["rpo"], f"{key}.rpo")
        if rto > tier.maximum_acceptable:
            self.fail(
                f"{key}.rto",
                f"rto {format_duration(rto)} exceeds maximum_acceptable "
                f"{format_duration(tier.maximum_acceptable)} of its tier {tier.name}",
                f"lower the rto, raise tiers.{tier.name}.maximum_acceptable, "
                "or move the function to a slower tier",
            )
        if rpo > category.maximum_acceptable:
            self.fail(
                f"{key}.rpo",
                f"rpo {format_duration(rpo)} exceeds maximum_acceptable "
                f"{format_duration(category.maximum_acceptable)} of its data category "
                f"{category.name}",
                f"lower the rpo, raise data_categories.{category.name}.maximum_acceptable, "
                "or pick a data category that tolerates more loss",
            )
        return BusinessFunction(
            name=name,
            criticality=cast(Criticality, criticality),
            tier=tier.name,
            data_category=category.name,
            rto=rto,
            rpo=rpo,
            impact=self.optional_text(entry, "impact", key),
        )

    def dependency(
        self, value: object, key: str, name: str, functions: Mapping[str, BusinessFunction]
    ) -> Dependency:
        entry = self.mapping(value, key, _DEPENDENCY)
        function = self.reference(entry, "function", key, functions, "business_functions")
        return Dependency(
            name=name,
            function=function.name,
            depends_on=self.names(entry["depends_on"], f"{key}.depends_on"),
            impact_without=self.optional_text(entry, "impact_without", key),
        )

    def costs(self, value: object) -> tuple[str, tuple[DowntimeCost, ...]]:
        if value is None:
            return "USD", ()
        section = self.mapping(value, "downtime_costs", _COSTS)
        currency = self.text(section.get("currency", "USD"), "downtime_costs.currency")
        rows = section["rows"]
        if not isinstance(rows, list):
            self.fail(
                "downtime_costs.rows",
                f"expected a list of rows, got {_describe(rows)}",
                "start each row with '- ' as in fixtures/targets.yaml",
            )
        built: list[DowntimeCost] = []
        for index, raw in enumerate(rows):
            key = f"downtime_costs.rows[{index}]"
            row = self.mapping(raw, key, _COST_ROW)
            duration = self.duration(row["duration"], f"{key}.duration")
            previous = built[-1].duration if built else 0.0
            if duration <= previous:
                self.fail(
                    f"{key}.duration",
                    f"duration {format_duration(duration)} is not longer than "
                    + (f"the previous row's {format_duration(previous)}" if built else "zero"),
                    "list the rows from the shortest downtime to the longest, each longer "
                    "than zero and than the row before (zero downtime costs nothing)",
                )
            revenue = self.amount(row["revenue_loss"], f"{key}.revenue_loss")
            productivity = self.amount(row["productivity_loss"], f"{key}.productivity_loss")
            recovery = self.amount(row["recovery_cost"], f"{key}.recovery_cost")
            total = self.amount(row["total"], f"{key}.total")
            parts = revenue + productivity + recovery
            if not math.isclose(total, parts, rel_tol=1e-9, abs_tol=0.005):
                self.fail(
                    f"{key}.total",
                    f"total {total:g} is not revenue_loss + productivity_loss + "
                    f"recovery_cost = {revenue:g} + {productivity:g} + {recovery:g} = {parts:g}",
                    "correct the total or the part that is wrong",
                )
            built.append(DowntimeCost(duration, revenue, productivity, recovery, total))
        return currency, tuple(built)

    def communication(self, value: object) -> dict[str, CommunicationStep]:
        section = self.mapping(value, "communication", _COMMUNICATION)
        steps: dict[str, CommunicationStep] = {}
        scopes: tuple[Literal["internal", "external"], ...] = ("internal", "external")
        for scope in scopes:
            key = f"communication.{scope}"
            for audience, step in self.table(section.get(scope, {}), key, self.step).items():
                if audience in steps:
                    self.fail(
                        f"{key}.{audience}",
                        f"the audience {audience!r} is also listed under communication."
                        f"{steps[audience].scope}",
                        "keep each audience in one of internal and external",
                    )
                steps[audience] = dataclasses.replace(step, scope=scope)
        return steps

    def step(self, value: object, key: str, name: str) -> CommunicationStep:
        entry = self.mapping(value, key, _STEP)
        within_raw = entry["within"]
        within = (
            None
            if within_raw is None or within_raw == _NO_DEADLINE
            else self.duration(within_raw, f"{key}.within")
        )
        approval = entry.get("approval_required", False)
        if not isinstance(approval, bool) and not (isinstance(approval, str) and approval.strip()):
            self.fail(
                f"{key}.approval_required",
                f"expected true, false or who must approve, got {_describe(approval)}",
                "write true, false or a level such as ceo_level",
            )
        return CommunicationStep(
            audience=name,
            recipients=self.names(entry.get("recipients", []), f"{key}.recipients"),
            methods=self.names(entry["methods"], f"{key}.methods"),
            within=within,
            approval_required=approval,
        )


class _Builder(Protocol[_T_co]):
    def __call__(self, value: object, key: str, name: str, /) -> _T_co: ...


def _describe(value: object) -> str:
    if value is None:
        return "empty (null)"
    kind = {dict: "a mapping", list: "a list", bool: "a boolean", str: "the text"}.get(
        type(value), f"a {type(value).__name__}"
    )
    return f"{kind} {value!r}" if not isinstance(value, dict | list) else kind
