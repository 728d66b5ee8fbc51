"""Reading and checking a targets file (YAML) into :class:`~pytest_drdrill.targets.model.Targets`.

Every mistake raises :class:`~pytest_drdrill.errors.InvalidTargets` naming the file, the key
(e.g. ``tiers.tier_1_critical.maximum_acceptable``) and the fix. This module builds the
sections and checks what refers to what across them (a function's tier, an rto within its
tier's maximum, cost rows that add up); the YAML itself is read by
:mod:`~pytest_drdrill.targets.yaml_reading`, single values are checked by
:mod:`~pytest_drdrill.targets.fields`, and the keys each mapping takes are listed in
:mod:`~pytest_drdrill.targets.schema`.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

from pytest_drdrill.durations import format_duration
from pytest_drdrill.targets.fields import FieldReader, describe
from pytest_drdrill.targets.model import (
    _CRITICALITIES,
    _NO_DEADLINE,
    SCHEMA_VERSION,
    BackupRetention,
    BusinessFunction,
    CommunicationStep,
    Criticality,
    DataCategory,
    Dependency,
    DowntimeCost,
    Targets,
    Tier,
)
from pytest_drdrill.targets.probes_reading import read_probes
from pytest_drdrill.targets.schema import (
    COMMUNICATION,
    COST_ROW,
    COSTS,
    DATA,
    DEPENDENCY,
    FUNCTION,
    RETENTION,
    STEP,
    TIER,
    TOP,
)
from pytest_drdrill.targets.yaml_reading import parse_yaml

__all__ = ["load_targets"]


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


class _Reader(FieldReader):
    """Builds each section of the file, checking what refers to what across sections."""

    def read(self) -> Targets:
        document = parse_yaml(self.path)
        top = self.mapping(document, "", TOP)
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
        retention = self.retention(top.get("backup_retention"))
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
            backup_retention=retention,
        )

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
        entry = self.mapping(value, key, TIER)
        target, maximum = self.bounded(entry, key)
        return Tier(
            name=name,
            services=self.names(entry.get("services", []), f"{key}.services"),
            target=target,
            maximum_acceptable=maximum,
            recovery_strategy=self.optional_text(entry, "recovery_strategy", key),
        )

    def category(self, value: object, key: str, name: str) -> DataCategory:
        entry = self.mapping(value, key, DATA)
        target, maximum = self.bounded(entry, key)
        return DataCategory(
            name=name,
            target=target,
            maximum_acceptable=maximum,
            backup_frequency=self.optional_text(entry, "backup_frequency", key),
            backup_method=self.optional_text(entry, "backup_method", key),
        )

    def function(
        self,
        value: object,
        key: str,
        name: str,
        tiers: Mapping[str, Tier],
        categories: Mapping[str, DataCategory],
    ) -> BusinessFunction:
        entry = self.mapping(value, key, FUNCTION)
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
            probes=read_probes(self, entry["probes"], f"{key}.probes") if "probes" in entry else (),
            probe_interval=self.probe_interval(entry, key),
        )

    def probe_interval(self, entry: Mapping[str, Any], key: str) -> float:
        if "probe_interval" not in entry:
            return 1.0
        interval = self.duration(entry["probe_interval"], f"{key}.probe_interval")
        if interval <= 0:
            self.fail(f"{key}.probe_interval", "the interval must be above 0", "write e.g. 1s")
        return interval

    def dependency(
        self, value: object, key: str, name: str, functions: Mapping[str, BusinessFunction]
    ) -> Dependency:
        entry = self.mapping(value, key, DEPENDENCY)
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
                f"expected a mapping, got {describe(value)}",
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

    def retention(self, value: object) -> BackupRetention | None:
        if value is None:
            return None
        entry = self.mapping(value, "backup_retention", RETENTION)
        days = {k: self.duration(entry[k], f"backup_retention.{k}") for k in RETENTION.keys}
        return BackupRetention(**days)

    def schedule(self, value: object, tiers: Mapping[str, Tier]) -> dict[str, str]:
        from pytest_drdrill.options import CADENCES

        if not isinstance(value, dict):
            self.fail(
                "drill_schedule",
                f"expected a mapping, got {describe(value)}",
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
        section = self.mapping(value, "downtime_costs", COSTS)
        currency = self.text(section.get("currency", "USD"), "downtime_costs.currency")
        rows = section["rows"]
        if not isinstance(rows, list):
            self.fail(
                "downtime_costs.rows",
                f"expected a list of rows, got {describe(rows)}",
                "start each row with '- ' as in fixtures/targets.yaml",
            )
        built: list[DowntimeCost] = []
        for index, raw in enumerate(rows):
            key = f"downtime_costs.rows[{index}]"
            row = self.mapping(raw, key, COST_ROW)
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
        section = self.mapping(value, "communication", COMMUNICATION)
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
        entry = self.mapping(value, key, STEP)
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
                f"expected true, false or who must approve, got {describe(approval)}",
                "write true, false or a level such as ceo_level",
            )
        return CommunicationStep(
            audience=name,
            recipients=self.names(entry.get("recipients", []), f"{key}.recipients"),
            methods=self.names(entry["methods"], f"{key}.methods"),
            within=within,
            approval_required=approval,
        )
