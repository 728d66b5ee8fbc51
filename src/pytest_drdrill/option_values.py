"""Reading one option's value (command line, then ini key, then default) and checking it.

Each reader raises :class:`pytest.UsageError` naming where the bad value came from and how
to set it (the flag and the ini key), for :func:`pytest_drdrill.config.get_config`.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_drdrill.durations import parse_duration
from pytest_drdrill.topology.sizes import Sizes

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_drdrill.options import Option


def lookup(config: pytest.Config, opt: Option) -> tuple[object, str]:
    """Return the value and where it came from (for error messages)."""
    value = config.getoption(opt.name)
    if value is not None:
        return value, opt.flag
    ini = config.getini(opt.name)
    if ini not in (None, "", []):
        return ini, f"ini key {opt.name}"
    return opt.default, f"default of {opt.flag}"


def where(opt: Option) -> str:
    """How to set the option: its flag and its ini key."""
    return f"{opt.flag} / ini {opt.name}"


def choice(config: pytest.Config, opt: Option, choices: tuple[str, ...]) -> str | None:
    """One of ``choices``, lower-cased, or ``None`` when the option is unset."""
    value, source = lookup(config, opt)
    if value is None:
        return None
    text = str(value).strip().lower()
    if text not in choices:
        raise pytest.UsageError(
            f"{source}: invalid value {value!r}; valid values are {', '.join(choices)} "
            f"(set with {where(opt)})"
        )
    return text


def duration(config: pytest.Config, opt: Option, *, minimum: float) -> float:
    """A duration in seconds (``90s``, ``2m``, ``2_minutes``), at least ``minimum``."""
    value, source = lookup(config, opt)
    try:
        seconds = parse_duration(str(value))
    except ValueError as exc:
        raise pytest.UsageError(f"{source}: {exc} (set with {where(opt)})") from None
    if seconds < minimum:
        raise pytest.UsageError(
            f"{source}: {value!r} is below the minimum of {minimum}s (set with {where(opt)})"
        )
    return seconds


def path(config: pytest.Config, opt: Option, default: Callable[[], Path]) -> tuple[Path, bool]:
    """An absolute path, and whether it was given (an ini path is relative to the ini file)."""
    cli = config.getoption(opt.name)
    if cli is not None:
        return Path(cli).expanduser().absolute(), True
    ini = config.getini(opt.name)
    if ini not in (None, "", []):
        base = config.inipath.parent if config.inipath else config.rootpath
        return (base / str(ini)).expanduser().absolute(), True
    return default(), False


def otlp_endpoint(config: pytest.Config, opt: Option) -> str | None:
    """The collector's traces URL, and the SDK to reach it, checked before any drill runs."""
    raw, source = lookup(config, opt)
    if not raw:
        return None
    url = str(raw).strip()
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise pytest.UsageError(
            f"{source}: {raw!r} is not an OTLP/HTTP traces URL; give one such as "
            f"http://127.0.0.1:4318/v1/traces (set with {where(opt)})"
        )
    from pytest_drdrill.reporting.otel import missing_sdk

    problem = missing_sdk()
    if problem is not None:
        raise pytest.UsageError(f"{source} asks for OpenTelemetry traces, but {problem}")
    return url


def pushgateway(config: pytest.Config, opt: Option) -> str | None:
    """The Pushgateway's URL, checked now rather than after the drills have run.

    Like Prometheus's own tools, prometheus_client takes ``host:port`` as
    ``http://host:port``; so does this check.
    """
    raw, source = lookup(config, opt)
    if not raw:
        return None
    text = str(raw).strip()
    url = text if "://" in text else f"http://{text}"
    parsed = urllib.parse.urlsplit(url)
    try:
        port_ok = parsed.port is None or parsed.port > 0
    except ValueError:  # not a number, or above 65535
        port_ok = False
    host = parsed.hostname or ""
    # urllib would take "user:password@" as credentials and then not send them.
    host_ok = bool(re.fullmatch(r"[A-Za-z0-9._-]+|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*", host))
    host_ok = host_ok and parsed.username is None
    if parsed.scheme not in ("http", "https") or not host_ok or not port_ok:
        raise pytest.UsageError(
            f"{source}: {raw!r} is not a Pushgateway address; give its URL, e.g. "
            f"http://127.0.0.1:9091 (set with {where(opt)})"
        )
    return url.rstrip("/")


def guardrails(config: pytest.Config, opt: Option) -> dict[str, object] | None:
    """The guardrails as a marker would give them, checked; ``None`` when unset."""
    raw, source = lookup(config, opt)
    if not raw:
        return None
    from pytest_drdrill.guardrails import parse

    given: dict[str, object] = {}
    for part in str(raw).split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not key.strip():
            raise pytest.UsageError(
                f"{source}: {part.strip()!r} is not key=value; write e.g. "
                f"max_outage=2m,max_error_rate=0.5 (set with {where(opt)})"
            )
        key, value = key.strip(), value.strip()
        if key == "functions":
            given[key] = [f for f in value.split("|") if f]
        elif key == "max_error_rate":
            try:
                given[key] = float(value)
            except ValueError:
                given[key] = value  # parse() names it
        else:
            given[key] = None if value.lower() in ("none", "off") else value
    try:
        parse(source, given, None, None)
    except ValueError as exc:
        raise pytest.UsageError(f"{exc} (set with {where(opt)})") from None
    return given


def images(config: pytest.Config, opt: Option) -> tuple[tuple[str, str], ...]:
    """The docker backend's image of each service (``service=image``), defaults for the rest."""
    raw, source = lookup(config, opt)
    from pytest_drdrill.topology.docker_engine import Images

    try:
        chosen = Images.parse(str(raw) if raw else None, where=source)
    except ValueError as exc:
        raise pytest.UsageError(f"{exc} (set with {where(opt)})") from None
    return tuple(chosen.as_dict().items())


def sizes(config: pytest.Config, opt: Option, backend: str) -> Sizes:
    """The local topology's server counts; refused on the docker and stack backends."""
    raw, source = lookup(config, opt)
    try:
        counts = Sizes.parse(str(raw) if raw else None, where=source)
    except ValueError as exc:
        raise pytest.UsageError(f"{exc} (set with {where(opt)})") from None
    if raw and backend in ("docker", "stack"):
        raise pytest.UsageError(
            f"{source}: sizes apply to the local backend only; the {backend} backend builds "
            f"{'its fixed shape' if backend == 'docker' else 'nothing: it drills your stack'}. "
            f"Drop {opt.flag} / ini {opt.name}, or use --drill-backend=local"
        )
    return counts


def flag(config: pytest.Config, name: str) -> bool:
    """A switch: set on the command line or true in the ini file."""
    cli = config.getoption(name)
    return bool(cli) if cli is not None else bool(config.getini(name))


def whole(config: pytest.Config, opt: Option, what: str) -> int:
    """A whole number, 1 or more, of ``what`` (named in the error)."""
    raw, source = lookup(config, opt)
    try:
        value = int(str(raw))
        if value < 1:
            raise ValueError
    except ValueError:
        raise pytest.UsageError(
            f"{source}: invalid value {raw!r}; give a whole number of {what}, 1 or more "
            f"(set with {where(opt)})"
        ) from None
    return value
