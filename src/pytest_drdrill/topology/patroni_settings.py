"""A team's own Patroni settings (``--drill-patroni-config=FILE``), checked before any start.

A drill is worth something only if it runs the settings the team runs, so the file may
hold Patroni's dynamic (DCS) configuration keys that shape a failover and the tags of
each member. Everything else is refused: a typo silently ignored would drill the
defaults while the team believes it drilled its own values.

Patroni itself is lenient: from 3.2 on it raises a too-small ``ttl`` (minimum 20),
``loop_wait`` (1) or ``retry_timeout`` (3) with only a warning in its log, and it
rewrites timings that break its rule ``loop_wait + 2 * retry_timeout <= ttl``. A drill
would then measure values nobody wrote down, so here each of those is an error naming
the file, the key and the fix. Debian's Patroni 3.0.2 has no minimum, which is why
the minimums depend on ``patroni_version`` (the defaults' ``ttl`` 10 runs there).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pytest_drdrill.errors import PatroniSettingsError
from pytest_drdrill.topology.patroni import BOOTSTRAP_DCS, check_timings, merge_settings
from pytest_drdrill.topology.proxied import DR, PRIMARY, SYNC, SYNC2

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: Members of the drill's Patroni cluster, the names a ``tags`` section may use.
MEMBERS: tuple[str, ...] = (PRIMARY, SYNC, SYNC2, DR)

#: The Patroni release from which ``ttl``, ``loop_wait`` and ``retry_timeout`` have minimums.
MINIMUMS_SINCE: tuple[int, ...] = (3, 2, 0)
_MINIMUMS = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}

_BOOL = "true or false"
_SYNC_MODES = (True, False, "on", "off", "quorum")


@dataclasses.dataclass(frozen=True)
class PatroniSettings:
    """Settings to bootstrap the drill's Patroni cluster with.

    :param dcs: dynamic configuration, the file's keys merged over ``BOOTSTRAP_DCS``.
    :param tags: tags per member name (only the members the file names).
    :param source: the file they came from.
    """

    dcs: dict[str, Any]
    tags: dict[str, dict[str, Any]]
    source: str
    #: The settings as written, before merging over the defaults.
    raw: dict[str, Any] = dataclasses.field(default_factory=dict)
    patroni_version: tuple[int, ...] = (3, 0, 2)


def load_settings(
    path: str | Path, *, patroni_version: tuple[int, ...] = (3, 0, 2)
) -> PatroniSettings:
    """Read, check and merge the team's Patroni settings file.

    :param path: a YAML file of dynamic configuration keys and ``tags: {member: {...}}``.
    :param patroni_version: the Patroni that will run them; it decides the minimums.
    :raises PatroniSettingsError: naming the file, the key path and the fix.
    """
    source = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise PatroniSettingsError(
            f"{source}: cannot read the Patroni settings file ({err.strerror}). "
            f"Check the path given to --drill-patroni-config."
        ) from err
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise PatroniSettingsError(f"{source}: not valid YAML: {err}") from err
    return check_settings(raw or {}, source=source, patroni_version=patroni_version)


def check_settings(
    raw: object, *, source: str, patroni_version: tuple[int, ...] = (3, 0, 2)
) -> PatroniSettings:
    """Check already-parsed settings (see :func:`load_settings`) and merge them."""
    where = _Where(source)
    if not isinstance(raw, dict):
        raise where.error("", f"the file must be a mapping of settings, not {_kind(raw)}")
    over = dict(raw)
    tags = _check_tags(over.pop("tags", {}), where)
    for key, value in over.items():
        check = _TOP.get(key)
        if check is None:
            raise where.error(key, f"unknown setting; allowed: {', '.join(sorted(_ALLOWED))}")
        check(value, key, where)
    if "primary_start_timeout" in over and "master_start_timeout" in over:
        raise where.error(
            "master_start_timeout",
            "it is the old name of primary_start_timeout, which is set too: keep only "
            "primary_start_timeout",
        )
    dcs = merge_settings(BOOTSTRAP_DCS, over)
    if tuple(patroni_version) >= MINIMUMS_SINCE:
        for key, least in _MINIMUMS.items():
            if dcs[key] < least:
                raise where.error(
                    key,
                    f"{dcs[key]} is below Patroni {_dotted(MINIMUMS_SINCE)}+'s minimum of "
                    f"{least} (it would silently use {least}): set {key} to {least} or more",
                )
    check_timings(dcs, source=source)
    postgresql = dcs["postgresql"]
    if postgresql.get("use_pg_rewind") and str(
        postgresql.get("parameters", {}).get("wal_log_hints", "off")
    ).lower() not in ("on", "true", "1", "yes"):
        raise where.error(
            "postgresql.parameters.wal_log_hints",
            "pg_rewind needs it on (the cluster is initialised without data checksums): "
            "set it to 'on' or set postgresql.use_pg_rewind to false",
        )
    return PatroniSettings(
        dcs=dcs, tags=tags, source=source, raw=dict(raw), patroni_version=tuple(patroni_version)
    )


def combine(
    base: PatroniSettings | None, over: Mapping[str, Any], *, source: str
) -> PatroniSettings:
    """``over`` (a drill's own settings) merged over ``base`` (the run's file), checked again.

    :raises PatroniSettingsError: when the combination breaks a rule, naming both sources.
    """
    raw = merge_settings(base.raw if base is not None else {}, over)
    where = source if base is None else f"{base.source} with {source}"
    version = base.patroni_version if base is not None else (3, 0, 2)
    return check_settings(raw, source=where, patroni_version=version)


class _Where:
    """The file being checked, to build errors that name it and the key path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, key: str, fix: str) -> PatroniSettingsError:
        at = f" {key}:" if key else ""
        return PatroniSettingsError(f"{self.source}:{at} {fix}")


def _kind(value: object) -> str:
    return f"{type(value).__name__} {value!r}"


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def _is_int(value: object) -> bool:
    # YAML's true/false are bools, and bool is an int to Python: refuse them as numbers.
    return isinstance(value, int) and not isinstance(value, bool)


def _int(least: int) -> Callable[[object, str, _Where], None]:
    def check(value: object, key: str, where: _Where) -> None:
        if not _is_int(value) or value < least:  # type: ignore[operator]
            raise where.error(key, f"{_kind(value)} is not allowed: use a whole number >= {least}")

    return check


def _any_int(value: object, key: str, where: _Where) -> None:
    if not _is_int(value):
        raise where.error(key, f"{_kind(value)} is not allowed: use a whole number of seconds")


def _bool(value: object, key: str, where: _Where) -> None:
    if not isinstance(value, bool):
        raise where.error(key, f"{_kind(value)} is not allowed: use {_BOOL}")


def _sync_mode(value: object, key: str, where: _Where) -> None:
    if value not in _SYNC_MODES or (_is_int(value) and not isinstance(value, bool)):
        raise where.error(key, f"{_kind(value)} is not allowed: use true, false, on, off or quorum")


def _parameter(value: object, key: str, where: _Where) -> None:
    if not isinstance(value, (str, int, float)):
        raise where.error(key, f"{_kind(value)} is not allowed: use a string, number or on/off")


def _section(
    checks: Mapping[str, Callable[[object, str, _Where], None]] | None,
    each: Callable[[object, str, _Where], None] | None = None,
) -> Callable[[object, str, _Where], None]:
    """A check for a nested mapping: named keys with their checks, or any key with ``each``."""

    def check(value: object, key: str, where: _Where) -> None:
        if not isinstance(value, dict):
            raise where.error(key, f"{_kind(value)} is not allowed: use a mapping")
        for name, item in value.items():
            path = f"{key}.{name}"
            inner = each if checks is None else checks.get(str(name))
            if inner is None:
                assert checks is not None
                raise where.error(path, f"unknown setting; allowed: {', '.join(sorted(checks))}")
            inner(item, path, where)

    return check


_TOP: dict[str, Callable[[object, str, _Where], None]] = {
    "ttl": _int(1),
    "loop_wait": _int(1),
    "retry_timeout": _int(1),
    "maximum_lag_on_failover": _int(0),
    "primary_start_timeout": _int(0),
    "master_start_timeout": _int(0),
    # Zero or less switches the stop timeout off, so any whole number is valid.
    "primary_stop_timeout": _any_int,
    "failsafe_mode": _bool,
    "synchronous_mode": _sync_mode,
    "synchronous_mode_strict": _bool,
    "synchronous_node_count": _int(1),
    "check_timeline": _bool,
    "postgresql": _section(
        {
            "parameters": _section(None, _parameter),
            "use_pg_rewind": _bool,
            "use_slots": _bool,
        }
    ),
}
_ALLOWED = (*_TOP, "tags")

_TAGS: dict[str, Callable[[object, str, _Where], None]] = {
    "nofailover": _bool,
    "nosync": _bool,
    "noloadbalance": _bool,
    "nostream": _bool,
    "clonefrom": _bool,
    "failover_priority": _int(0),
}


def _check_tags(raw: object, where: _Where) -> dict[str, dict[str, Any]]:
    """Tags per member; a member both excluded from failover and given a priority is refused."""
    _section(dict.fromkeys(MEMBERS, _section(_TAGS)))(raw, "tags", where)
    assert isinstance(raw, dict)
    for member, tags in raw.items():
        if tags.get("nofailover") is True and tags.get("failover_priority", 0) > 0:
            raise where.error(
                f"tags.{member}.failover_priority",
                "contradicts nofailover: true (a member that never takes over has no "
                "priority): remove one of the two",
            )
    return {str(member): dict(tags) for member, tags in raw.items()}
