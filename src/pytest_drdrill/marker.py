"""The ``drdrill`` marker: what a drill declares, checked once at collection.

A bad marker is a usage error naming the test and the fix, raised at collection even
when the cadence skips the drill, so a typo in a quarterly drill is caught by the daily
run. Tier and function names are checked only when the targets file was read (a run
with ``--drill``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pytest

from pytest_drdrill.options import (
    BACKUP_TOOLS,
    CADENCES,
    POSTGRES_FAILOVERS,
    REDIS_FAILOVERS,
    includes,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pytest_drdrill.config import DrillConfig
    from pytest_drdrill.guardrails import Guardrails
    from pytest_drdrill.results import Target
    from pytest_drdrill.targets import Targets

MARKER = "drdrill"

MARKER_HELP = (
    f"{MARKER}(cadence='monthly', tier=None, function=None, data=None, scenario=None, "
    "max_lost_writes=None, negative_control=False, observe=None, service='postgres', "
    "postgres_failover=None, patroni=None, backup_tool=None, guardrails=None, "
    "redis_failover=None): "
    "a disaster-recovery "
    "drill, run by --drill=CADENCE and judged against a tier or business function of "
    "the targets file"
)

MARKER_KEYS = frozenset(
    {
        "cadence",
        "tier",
        "function",
        "data",
        "scenario",
        "max_lost_writes",
        "negative_control",
        "guardrails",
        "observe",
        "service",
        "postgres_failover",
        "patroni",
        "backup_tool",
        "redis_failover",
    }
)


@dataclasses.dataclass(frozen=True)
class DrillSpec:
    """A drill declared by ``@pytest.mark.drdrill(...)``, validated at collection.

    :param cadence: daily, weekly, monthly or quarterly.
    :param scenario: what the drill exercises, e.g. ``primary-crash``.
    :param target: the tier or function it is judged against, resolved.
    :param negative_control: recovery is deliberately broken; the drill must fail.
    :param observe: seconds to wait for recovery, overriding ``--drill-observe``.
    :param service: the service the drill is about (``postgres``, ``redis``, ``s3``); its
        RTO and RPO are the drill's headline figures and ``max_lost_writes`` applies to it.
    """

    cadence: str
    scenario: str
    target: Target | None
    negative_control: bool
    observe: float | None
    service: str = "postgres"
    #: The HA stack this drill runs under whatever ``--drill-postgres-failover`` says.
    postgres_failover: str | None = None
    #: The HA stacks this drill can run under; under any other it is skipped.
    postgres_failovers: tuple[str, ...] = POSTGRES_FAILOVERS
    #: Patroni settings of this drill, over the run's ``--drill-patroni-config``.
    patroni: dict[str, Any] | None = None
    #: The backup tools this drill runs with; under any other it is skipped.
    backup_tools: tuple[str, ...] = BACKUP_TOOLS
    #: When the drill is stopped and healed (marker key ``guardrails=``; new in 0.7).
    guardrails: Guardrails | None = None
    #: Who decides this drill's Redis failovers whatever ``--drill-redis-failover`` says
    #: (marker key ``redis_failover=``; new in 0.8).
    redis_failover: str | None = None


def _failover(where: str, value: object) -> tuple[str | None, tuple[str, ...]]:
    """``postgres_failover=``: one stack forces it; a tuple lists the stacks it runs under."""
    names = (value,) if isinstance(value, str) else value
    if (
        not isinstance(names, (tuple, list))
        or not names
        or not all(n in POSTGRES_FAILOVERS for n in names)
    ):
        raise pytest.UsageError(
            f"{where}: postgres_failover={value!r}; give one of {', '.join(POSTGRES_FAILOVERS)}"
            f" (the drill always runs under it), or a tuple of them (the drill runs only "
            f"when --drill-postgres-failover names one of them)"
        )
    return (value if isinstance(value, str) else None), tuple(names)


def _tools(where: str, value: object) -> tuple[str, ...]:
    """``backup_tool=``: the tool, or a tuple of the tools, the drill runs with."""
    names = (value,) if isinstance(value, str) else value
    if (
        not isinstance(names, (tuple, list))
        or not names
        or not all(n in BACKUP_TOOLS for n in names)
    ):
        raise pytest.UsageError(
            f"{where}: backup_tool={value!r}; give one of {', '.join(BACKUP_TOOLS)} or a tuple "
            f"of them (the drill runs only when --drill-backup-tool names one of them)"
        )
    return tuple(names)


def spec_for(
    item: pytest.Item,
    targets: Targets | None,
    default_guardrails: Mapping[str, object] | None = None,
) -> DrillSpec:
    """The validated drill of a marked item.

    :param targets: the run's targets, to resolve the tier or function; ``None`` when
        no drill runs (names are then left unchecked).
    :param default_guardrails: the run's ``--drill-guardrails``, for a marker that sets none.
    :raises pytest.UsageError: naming the item and what to write instead.
    """
    marker = item.get_closest_marker(MARKER)
    assert marker is not None
    where = f"@pytest.mark.{MARKER} on {item.nodeid}"
    if marker.args:
        raise pytest.UsageError(
            f"{where}: pass keyword arguments only, e.g. cadence='monthly', tier='tier_1_critical'"
        )
    unknown = set(marker.kwargs) - MARKER_KEYS
    if unknown:
        raise pytest.UsageError(
            f"{where}: unknown argument(s) {sorted(unknown)}; valid: {sorted(MARKER_KEYS)}"
        )
    kw: dict[str, Any] = dict(marker.kwargs)
    cadence = str(kw.get("cadence", "monthly")).lower()
    if cadence not in CADENCES:
        raise pytest.UsageError(
            f"{where}: cadence={cadence!r}; valid cadences: {', '.join(CADENCES)}"
        )
    for key in ("negative_control",):
        if not isinstance(kw.get(key, False), bool):
            raise pytest.UsageError(f"{where}: {key}={kw[key]!r}; give True or False")
    max_lost = kw.get("max_lost_writes")
    if max_lost is not None and (
        isinstance(max_lost, bool) or not isinstance(max_lost, int) or max_lost < 0
    ):
        raise pytest.UsageError(
            f"{where}: max_lost_writes={max_lost!r}; give a whole number of writes, 0 or more "
            f"(0 for synchronous replication), or leave it out"
        )
    observe = None
    if kw.get("observe") is not None:
        from pytest_drdrill.durations import parse_duration

        try:
            observe = parse_duration(kw["observe"])
        except ValueError as exc:
            raise pytest.UsageError(f"{where}: observe: {exc}") from None
        if observe <= 0:
            raise pytest.UsageError(f"{where}: observe={kw['observe']!r} must be above zero")
    from pytest_drdrill.topology._protocol import SERVICES

    service = kw.get("service", "postgres")
    if service not in SERVICES:
        raise pytest.UsageError(
            f"{where}: service={service!r}; valid services: {', '.join(SERVICES)}"
        )
    forced: str | None = None
    allowed: tuple[str, ...] = POSTGRES_FAILOVERS
    if kw.get("postgres_failover") is not None:
        forced, allowed = _failover(where, kw["postgres_failover"])
    tools = BACKUP_TOOLS if kw.get("backup_tool") is None else _tools(where, kw["backup_tool"])
    redis_failover = kw.get("redis_failover")
    if redis_failover is not None and redis_failover not in REDIS_FAILOVERS:
        raise pytest.UsageError(
            f"{where}: redis_failover={redis_failover!r}; give one of "
            f"{', '.join(REDIS_FAILOVERS)} (the drill always runs with it), or leave it out "
            f"(--drill-redis-failover decides)"
        )
    patroni = kw.get("patroni")
    if patroni is not None:
        from pytest_drdrill.errors import PatroniSettingsError
        from pytest_drdrill.topology.patroni_settings import check_settings

        try:
            check_settings(patroni, source=f"{where}: patroni=")
        except PatroniSettingsError as exc:
            raise pytest.UsageError(str(exc)) from None
    target = None
    if targets is not None:
        from pytest_drdrill.targets import TargetSelectionError, UnknownTarget

        if (kw.get("tier") is None) == (kw.get("function") is None):
            raise pytest.UsageError(
                f"{where}: name exactly one of tier= (e.g. 'tier_1_critical') or function= "
                f"(e.g. 'user_authentication') from {targets.source}"
            )
        try:
            target = targets.resolve(
                tier=kw.get("tier"),
                function=kw.get("function"),
                data=kw.get("data"),
                max_lost_writes=kw.get("max_lost_writes"),
            )
        except (UnknownTarget, TargetSelectionError) as exc:
            raise pytest.UsageError(f"{where}: {exc}") from None
    from pytest_drdrill.guardrails import parse as parse_guardrails

    try:
        guardrails = parse_guardrails(
            where,
            kw["guardrails"] if "guardrails" in kw else default_guardrails,
            target,
            None if targets is None else tuple(targets.business_functions),
        )
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    return DrillSpec(
        cadence=cadence,
        scenario=str(kw.get("scenario") or item.name),
        target=target,
        negative_control=kw.get("negative_control", False),
        observe=observe,
        service=service,
        postgres_failover=forced,
        postgres_failovers=allowed,
        patroni=dict(patroni) if patroni is not None else None,
        backup_tools=tools,
        guardrails=guardrails,
        redis_failover=redis_failover,
    )


def skip_reason(spec: DrillSpec, drill_config: DrillConfig) -> str | None:
    """Why this run skips the drill, or ``None`` when it runs.

    A drill runs when ``--drill`` selects its cadence or a less frequent one; negative
    controls also need ``--drill-skip-negative-controls`` to be off.
    """
    selected = drill_config.cadence
    if selected is None:
        return (
            f"{spec.cadence} disaster-recovery drill: run with --drill={spec.cadence} "
            f"(or a less frequent cadence) to execute it"
        )
    if not includes(selected, spec.cadence):
        return (
            f"{spec.cadence} drill not selected by --drill={selected}; run with "
            f"--drill={spec.cadence} to include it"
        )
    if spec.postgres_failover is None and drill_config.postgres_failover not in (
        spec.postgres_failovers
    ):
        names = " or ".join(f"--drill-postgres-failover={n}" for n in spec.postgres_failovers)
        return (
            f"drill of {', '.join(spec.postgres_failovers)} failover, not run under "
            f"--drill-postgres-failover={drill_config.postgres_failover}: run with {names}"
        )
    if drill_config.backup_tool not in spec.backup_tools:
        names = " or ".join(f"--drill-backup-tool={n}" for n in spec.backup_tools)
        return (
            f"drill of {', '.join(spec.backup_tools)} backups, not run under "
            f"--drill-backup-tool={drill_config.backup_tool}: run with {names}"
        )
    if spec.redis_failover == "sentinel" and drill_config.backend != "local":
        return (
            f"drill of Redis Sentinel's failover, which only the local backend runs "
            f"(not --drill-backend={drill_config.backend}): run with --drill-backend=local"
        )
    if spec.negative_control and not drill_config.negative_controls:
        return (
            "negative control (recovery deliberately broken; it must go red) skipped by "
            "--drill-skip-negative-controls / ini drill_skip_negative_controls"
        )
    return None


def redis_failover(spec: DrillSpec, drill_config: DrillConfig) -> str:
    """Who decides the drill's Redis failovers: its marker's choice, else the run's."""
    return spec.redis_failover or drill_config.redis_failover
