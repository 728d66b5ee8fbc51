"""``--drill-dry-run``: the plan of each selected drill, read before anything is injected.

A team pointing the drills at a shared environment reads first what would happen: for
each drill the run would execute, where it runs (backend, HA stack, backup tool), the
faults its code injects, in order, as written (``drdrill.faults.crash(...)``, read from
the test function's source, not run), the waits between them, and what it is judged
against. Nothing starts: no topology, no fault proxy, no fault; the run ends after
collection with exit status 0.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from typing import TYPE_CHECKING

from pytest_drdrill.durations import format_duration

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import pytest

    from pytest_drdrill.config import DrillConfig
    from pytest_drdrill.marker import DrillSpec

#: Calls on the drill that are part of its plan besides faults.
_STEPS = {"await_recovery", "declare_incident", "restore", "check", "running"}


@dataclasses.dataclass(frozen=True)
class Plan:
    """One drill's plan.

    :param nodeid: the test's id.
    :param spec: its validated marker.
    :param steps: faults and other drill steps in source order, as written.
    """

    nodeid: str
    spec: DrillSpec
    steps: tuple[str, ...]


def _resolved(node: ast.Call, params: Mapping[str, object]) -> ast.Call:
    """``getattr(drdrill.faults, fault)(x)`` with ``fault`` a parameter: the call it makes."""
    func = node.func
    if (
        isinstance(func, ast.Call)
        and isinstance(func.func, ast.Name)
        and func.func.id == "getattr"
        and len(func.args) == 2
        and isinstance(func.args[1], ast.Name)
        and isinstance(params.get(func.args[1].id), str)
    ):
        attribute = ast.Attribute(func.args[0], str(params[func.args[1].id]), ast.Load())
        return ast.Call(attribute, node.args, node.keywords)
    return node


def _steps(function: Callable[..., object], params: Mapping[str, object]) -> tuple[str, ...]:
    """The drill's faults and steps in source order, as the code writes them.

    :param params: the test's parameters, to name a fault chosen by one.
    """
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        return ("(source not available: the faults cannot be listed)",)
    found: list[tuple[int, int, str]] = []
    for found_node in ast.walk(ast.parse(source)):
        if not isinstance(found_node, ast.Call):
            continue
        node = _resolved(found_node, params)
        if not isinstance(node.func, ast.Attribute):
            continue
        text = ast.unparse(node)
        owner = ast.unparse(node.func.value)
        if owner.endswith(".faults") or owner == "faults":
            found.append((found_node.lineno, found_node.col_offset, f"fault: {text}"))
        elif node.func.attr in _STEPS or text.startswith(("timing.sleep(", "time.sleep(")):
            if node.func.attr == "sleep":
                found.append((found_node.lineno, found_node.col_offset, f"wait: {text}"))
            else:
                found.append((found_node.lineno, found_node.col_offset, f"step: {text}"))
    return tuple(text for _, _, text in sorted(found)) or ("(no fault in the drill's own code)",)


def plan_for(item: pytest.Item, spec: DrillSpec) -> Plan:
    """The plan of one collected drill."""
    function = getattr(item, "function", None)
    callspec = getattr(item, "callspec", None)
    params = dict(callspec.params) if callspec is not None else {}
    steps = _steps(function, params) if function is not None else ("(not a Python test function)",)
    return Plan(item.nodeid, spec, steps)


def _judged(spec: DrillSpec) -> str:
    target = spec.target
    if target is None:
        return "no target (no tier or function on the marker)"
    parts = [
        f"{target.kind} {target.name}: RTO target {format_duration(target.rto_target)}, "
        f"maximum {format_duration(target.rto_max)}"
    ]
    if target.rpo_target is not None and target.rpo_max is not None:
        parts.append(
            f"RPO target {format_duration(target.rpo_target)}, "
            f"maximum {format_duration(target.rpo_max)}"
        )
    if target.max_lost_writes is not None:
        parts.append(f"at most {target.max_lost_writes} lost acknowledged writes")
    if spec.negative_control:
        parts.append("negative control: recovery is broken on purpose, it must go red")
    return "; ".join(parts)


def render(plans: Sequence[Plan], drill_config: DrillConfig) -> list[str]:
    """The plan as terminal lines."""
    from pytest_drdrill.config import backend_name

    lines = [
        f"drdrill dry run: {len(plans)} drill(s) would run; nothing is started or injected",
        f"  backend {backend_name(drill_config)}, destructive faults "
        f"{'allowed' if drill_config.allow_destructive else 'refused on docker and stack'}",
    ]
    for plan in plans:
        spec = plan.spec
        failover = spec.postgres_failover or drill_config.postgres_failover
        lines += [
            "",
            f"{spec.scenario} ({spec.cadence}) {plan.nodeid}",
            f"  runs on: PostgreSQL failover {failover}, backup tool {drill_config.backup_tool}, "
            f"service measured {spec.service}",
            f"  judged against: {_judged(spec)}",
            f"  guardrails: {spec.guardrails.describe() if spec.guardrails else 'none'}"
            "; the kill switch (python -m pytest_drdrill heal) stops it",
            "  plan:",
            *(f"    {n}. {step}" for n, step in enumerate(plan.steps, 1)),
        ]
    return lines
