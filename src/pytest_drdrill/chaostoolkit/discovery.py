"""``chaos discover pytest-drdrill``: the activities this extension offers, and the system.

.. versionadded:: 0.4
"""

from __future__ import annotations

import importlib
import typing
from typing import Any

ACTIONS = "pytest_drdrill.chaostoolkit.actions"
PROBES = "pytest_drdrill.chaostoolkit.probes"


def discover(discover_system: bool = True) -> dict[str, Any]:  # noqa: FBT001, FBT002
    """List pytest-drdrill's actions and probes, with typed arguments and docstrings.

    The signature is chaoslib's: it calls ``discover(discover_system=...)``.

    :param discover_system: also describe the local system the drills would use
        (PostgreSQL and Redis binaries found, or why not).
    :returns: a Chaos Toolkit discovery document.
    """
    from chaoslib.discovery import initialize_discovery_result
    from chaoslib.discovery.discover import discover_actions, discover_probes

    from pytest_drdrill._version import __version__

    discovery: dict[str, Any] = initialize_discovery_result(
        "pytest-drdrill", __version__, "drdrill"
    )
    activities = [*discover_actions(ACTIONS), *discover_probes(PROBES)]
    discovery["activities"] = [_typed(activity) for activity in activities]
    if discover_system:
        discovery["system"] = _system()
    return discovery


def _typed(activity: dict[str, Any]) -> dict[str, Any]:
    """Fill in the types chaoslib could not read.

    This package postpones annotation evaluation (``from __future__ import annotations``),
    so ``inspect.signature``, which chaoslib reads, sees strings and names every type
    ``object``; ``typing.get_type_hints`` evaluates them.
    """
    from chaoslib.discovery.discover import portable_type_name

    func = getattr(importlib.import_module(activity["mod"]), activity["name"])
    hints = typing.get_type_hints(func)
    for argument in activity["arguments"]:
        if argument["name"] in hints:
            argument["type"] = _portable(hints[argument["name"]], portable_type_name)
    if "return" in hints:
        activity["return_type"] = _portable(hints["return"], portable_type_name)
    return activity


def _portable(hint: Any, portable_type_name: Any) -> str:
    """Return chaoslib's portable name; for ``X | None``, X's name (the argument is optional)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if type(None) in typing.get_args(hint) and len(args) == 1:
        hint = args[0]
    origin = typing.get_origin(hint)
    name: str = portable_type_name(origin if origin in (list, dict) else hint)
    return name


def _system() -> dict[str, Any]:
    from pytest_drdrill.topology.postgres import PostgresInstall
    from pytest_drdrill.topology.redis import RedisInstall

    system: dict[str, Any] = {"backend": "local"}
    for name, install in (("postgresql", PostgresInstall), ("redis", RedisInstall)):
        try:
            system[name] = {"version": install.discover(None).version}
        except Exception as exc:  # report what is missing instead of failing discovery
            system[name] = {"error": str(exc)}
    return system
