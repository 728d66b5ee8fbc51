"""Checks shared by the HA stacks' settings files (repmgr, pg_auto_failover).

Each stack's module names its keys and the rules between them; the value checks and the
error's shape (``FILE: KEY: what is wrong, and the fix``) are the same everywhere, so a
team reading one stack's message can read the other's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_drdrill.errors import TopologyError


class Where:
    """The file being checked, to build errors that name it and the key.

    :param source: the file's path as the team gave it.
    :param error: the error class to raise, one per stack.
    """

    def __init__(self, source: str, error: type[TopologyError]) -> None:
        self.source = source
        self._error = error

    def error(self, key: str, fix: str) -> TopologyError:
        """``FILE: KEY: fix`` as the stack's error."""
        at = f" {key}:" if key else ""
        return self._error(f"{self.source}:{at} {fix}")


def read_file(path: str | Path, error: type[TopologyError], *, stack: str, option: str) -> str:
    """The settings file's text.

    :raises error: when it cannot be read or is not UTF-8, naming the file and ``option``.
    """
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise error(
            f"{path}: cannot read the {stack} settings file ({err.strerror}). "
            f"Check the path given to {option}."
        ) from err
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 text: {err}") from err


def kind(value: object) -> str:
    """``int 3``: the value's type and repr, for messages."""
    return f"{type(value).__name__} {value!r}"


def is_int(value: object) -> bool:
    """A whole number; YAML's true/false are bools, and bool is an int to Python."""
    return isinstance(value, int) and not isinstance(value, bool)


def whole(
    least: int, unit: str = "", most: int | None = None
) -> Callable[[object, str, Where], None]:
    """A whole number ``>= least`` (and ``<= most``); ``unit`` is e.g. ``" of seconds"``."""

    def check(value: object, key: str, where: Where) -> None:
        number = value if is_int(value) else None
        if number is None or number < least or (most is not None and number > most):  # type: ignore[operator]
            span = f">= {least}" if most is None else f"from {least} to {most}"
            raise where.error(key, f"{kind(value)} is not allowed: use a whole number{unit} {span}")

    return check


def boolean(value: object, key: str, where: Where) -> None:
    """``true`` or ``false``."""
    if not isinstance(value, bool):
        raise where.error(key, f"{kind(value)} is not allowed: use true or false")


def one_of(*choices: str) -> Callable[[object, str, Where], None]:
    """One of ``choices``."""

    def check(value: object, key: str, where: Where) -> None:
        if value not in choices:
            raise where.error(key, f"{kind(value)} is not allowed: use {' or '.join(choices)}")

    return check


def text(value: object, key: str, where: Where) -> None:
    """A string."""
    if not isinstance(value, str):
        raise where.error(key, f"{kind(value)} is not allowed: use a string")
