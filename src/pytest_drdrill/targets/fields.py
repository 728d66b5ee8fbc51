"""Checking single values of a targets file, each failure naming its key and the fix.

:class:`FieldReader` knows the shapes every section is built from (a mapping with known
keys, a table of named entries, a duration, a list of names, an amount of money, a
reference to an entry of another section) and raises
:class:`~pytest_drdrill.errors.InvalidTargets` with the file, the dotted key and a hint.
The loader builds the sections of the file on top of it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn, Protocol

from pytest_drdrill.durations import InvalidDuration, parse_duration
from pytest_drdrill.errors import InvalidTargets
from pytest_drdrill.targets.model import _T, _T_co
from pytest_drdrill.targets.schema import Spec

__all__ = ["Builder", "FieldReader", "describe"]


class FieldReader:
    """Checks the values of one targets file; each problem raises :class:`InvalidTargets`.

    :param path: the file, named in every error.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str, fix: str) -> NoReturn:
        """Raise the error for ``key``: what is wrong with it, and how to fix it."""
        raise InvalidTargets(f"invalid targets file {self.path}: {key}: {problem}\nHint: {fix}")

    def mapping(self, value: object, key: str, spec: Spec) -> dict[str, Any]:
        """Return ``value`` if it is a mapping with exactly the keys ``spec`` allows."""
        where = key or "top level"
        if not isinstance(value, dict):
            self.fail(
                where,
                f"{spec.what} must be a mapping of keys to values, but it is {describe(value)}",
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
        build: Builder[_T],
        *,
        allow_empty: bool = True,
    ) -> dict[str, _T]:
        """Return a table of named entries, each built by ``build`` from its own key."""
        if not isinstance(value, dict):
            self.fail(
                key,
                f"{key} must be a mapping from names to entries, but it is {describe(value)}",
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
        """Return a duration (``15_minutes``, ``1h30m``, ``900``) in seconds."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(
                key,
                f"expected a duration, got {describe(value)}",
                "write a duration such as 15_minutes, 1_hour, 1h30m or 900 (seconds)",
            )
        try:
            return parse_duration(value)
        except InvalidDuration as exc:
            self.fail(key, str(exc), "write a duration such as 15_minutes, 1_hour, 1h30m or 900")

    def text(self, value: object, key: str) -> str:
        """Return ``value`` if it is text that is not blank."""
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"expected non-empty text, got {describe(value)}", "write a word")
        return value

    def names(self, value: object, key: str) -> tuple[str, ...]:
        """Return a list of non-blank names as a tuple."""
        if not isinstance(value, list) or not all(
            isinstance(item, str) and item.strip() for item in value
        ):
            self.fail(
                key,
                f"expected a list of names, got {describe(value)}",
                "write a list such as [authentication, core_api]",
            )
        return tuple(value)

    def amount(self, value: object, key: str) -> float:
        """Return an amount of money: a finite number of 0 or more."""
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            self.fail(
                key,
                f"expected an amount of money of 0 or more, got {describe(value)}",
                "write a plain number without currency sign or thousands separators, e.g. 5000",
            )
        return float(value)

    def optional_text(self, entry: Mapping[str, Any], name: str, key: str) -> str:
        """Return the text under ``name`` in ``entry``, or ``""`` when it is absent."""
        return self.text(entry[name], f"{key}.{name}") if name in entry else ""

    def reference(
        self, entry: Mapping[str, Any], name: str, key: str, table: Mapping[str, _T], section: str
    ) -> _T:
        """Return the entry of another section that ``entry[name]`` names."""
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


class Builder(Protocol[_T_co]):
    """Builds one entry of a table from its value, its dotted key and its name."""

    def __call__(self, value: object, key: str, name: str, /) -> _T_co:
        """Build the entry, raising :class:`InvalidTargets` if it is wrong."""
        ...


def describe(value: object) -> str:
    """Say what a value is, for an error message (``a list``, ``the text 'x'``)."""
    if value is None:
        return "empty (null)"
    kind = {dict: "a mapping", list: "a list", bool: "a boolean", str: "the text"}.get(
        type(value), f"a {type(value).__name__}"
    )
    return f"{kind} {value!r}" if not isinstance(value, dict | list) else kind
