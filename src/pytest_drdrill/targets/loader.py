"""Reading and checking a targets file (YAML) into :class:`~pytest_drdrill.targets.model.Targets`.

Every mistake raises :class:`~pytest_drdrill.errors.InvalidTargets` naming the file, the key
(e.g. ``tiers.tier_1_critical.maximum_acceptable``) and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NoReturn, Protocol, cast

import yaml

from pytest_drdrill.durations import InvalidDuration, format_duration, parse_duration
from pytest_drdrill.errors import InvalidTargets
from pytest_drdrill.targets.model import (
    _CRITICALITIES,
    _NO_DEADLINE,
    _T,
    SCHEMA_VERSION,
    BusinessFunction,
    CommunicationStep,
    Criticality,
    DataCategory,
    Dependency,
    DowntimeCost,
    Targets,
    Tier,
    _T_co,
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
        "service_map": "{database: [postgres], storage_service: [s3]}",
        "drill_schedule": "{tier_1_critical: monthly}",
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
        service_map = self.service_map(top.get("service_map", {}), dependencies)
        schedule = self.schedule(top.get("drill_schedule", {}), tiers)
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
            service_map=types.MappingProxyType(service_map),
            drill_schedule=types.MappingProxyType(schedule),
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

    def service_map(
        self, value: object, dependencies: Mapping[str, Dependency]
    ) -> dict[str, tuple[str, ...]]:
        from pytest_drdrill.topology._protocol import SERVICES

        if not isinstance(value, dict):
            self.fail(
                "service_map",
                f"expected a mapping, got {_describe(value)}",
                "write 'service_map: {database: [postgres], storage_service: [s3]}'",
            )
        named = {s for d in dependencies.values() for s in d.depends_on}
        built: dict[str, tuple[str, ...]] = {}
        for name, services in value.items():
            key = f"service_map.{name}"
            if name not in named:
                self.fail(
                    key,
                    f"{name!r} is not named in any business_dependencies depends_on list",
                    f"map only services listed there ({', '.join(sorted(named)) or 'none'}), "
                    "or add it to a business process's depends_on",
                )
            listed = self.names(services, key)
            unknown = [s for s in listed if s not in SERVICES]
            if unknown:
                self.fail(
                    key,
                    f"{unknown} are not services of the drill topology",
                    f"use some of {', '.join(SERVICES)}",
                )
            built[str(name)] = listed
        return built

    def schedule(self, value: object, tiers: Mapping[str, Tier]) -> dict[str, str]:
        from pytest_drdrill.config import CADENCES

        if not isinstance(value, dict):
            self.fail(
                "drill_schedule",
                f"expected a mapping, got {_describe(value)}",
                "write 'drill_schedule: {tier_1_critical: monthly}'",
            )
        built: dict[str, str] = {}
        for name, cadence in value.items():
            key = f"drill_schedule.{name}"
            if name not in tiers:
                self.fail(
                    key,
                    f"{name!r} is not a tier of this file",
                    f"use one of {', '.join(tiers)}",
                )
            if cadence not in CADENCES:
                self.fail(
                    key,
                    f"{cadence!r} is not a cadence",
                    f"use one of {', '.join(CADENCES)}",
                )
            built[str(name)] = str(cadence)
        return built

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
