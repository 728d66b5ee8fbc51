"""A team's own repmgr settings (``--drill-repmgr-config=FILE``), checked before any start.

A drill is worth something only if it runs the settings the team runs, so the file holds
the repmgr.conf keys that shape a failover: repmgrd's timings, ``failover``, the election's
``priority`` and ``primary_visibility_consensus``, the team's own fencing hook. Either as
YAML (``key: value``, with ``nodes: {pg-sync: {priority: 90}}`` for one node) or as
repmgr.conf itself (``key=value`` lines): a team can point the option at the file its
servers run with. Everything else is refused: a typo repmgr would ignore silently, or a
key the drill must set itself (``conninfo``, ``data_directory``, ``promote_command``),
would drill the defaults while the team believes it drilled its own values.

repmgr itself is lenient: it accepts ``reconnect_interval=0`` and ``failover=manual`` and
then never promotes anyone. Here each of those is an error naming the file, the key and
the fix.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pytest_drdrill.errors import RepmgrSettingsError
from pytest_drdrill.topology.proxied import DR, PRIMARY, SYNC
from pytest_drdrill.topology.repmgr import FAST_REPMGRD
from pytest_drdrill.topology.setting_checks import (
    Where,
    boolean,
    kind,
    one_of,
    read_file,
    text,
    whole,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: The drill's repmgr nodes, the names a ``nodes`` section may use.
NODES: tuple[str, ...] = (PRIMARY, SYNC, DR, "pg-witness")

#: Keys whose value the drill derives from its own cluster: a team's value would break it.
DRILL_OWNED = frozenset(
    {
        "node_id", "node_name", "conninfo", "data_directory", "pg_bindir", "pg_ctl_options",
        "promote_command", "follow_command", "repmgrd_pid_file", "use_replication_slots",
        "config_directory", "replication_user", "location",
    }
)  # fmt: skip

_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


@dataclasses.dataclass(frozen=True)
class RepmgrSettings:
    """repmgr.conf settings to run the drill's repmgr cluster with.

    :param nodes: settings per node name, ``"*"`` for every node (the file's top level).
    :param source: the file they came from.
    """

    nodes: dict[str, dict[str, Any]]
    source: str


def load_settings(path: str | Path) -> RepmgrSettings:
    """Read and check the team's repmgr settings file (YAML or repmgr.conf syntax).

    :raises RepmgrSettingsError: naming the file, the key and the fix.
    """
    source = str(path)
    text = read_file(path, RepmgrSettingsError, stack="repmgr", option="--drill-repmgr-config")
    if _is_repmgr_conf(text):
        raw: object = parse_repmgr_conf(text)
    else:
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise RepmgrSettingsError(
                f"{source}: neither YAML nor repmgr.conf (key=value lines): {err}"
            ) from err
    return check_settings(raw or {}, source=source)


def _is_repmgr_conf(text: str) -> bool:
    lines = [s for s in (line.strip() for line in text.splitlines()) if s and s[0] != "#"]
    return bool(lines) and all(_LINE.match(line) for line in lines)


def parse_repmgr_conf(text: str) -> dict[str, Any]:
    """repmgr.conf's ``key=value`` lines as a dict: quoted values as strings, the rest typed.

    Unquoted ``true``/``false`` are booleans and whole numbers ints, as repmgr reads them.
    """
    out: dict[str, Any] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(stripped)
        if match is None:
            continue
        key, value = match.group(1), match.group(2)
        if len(value) >= 2 and value[0] == value[-1] == "'":
            out[key] = value[1:-1].replace("''", "'")
        elif value.lower() in ("true", "on", "yes"):
            out[key] = True
        elif value.lower() in ("false", "off", "no"):
            out[key] = False
        elif re.fullmatch(r"-?\d+", value):
            out[key] = int(value)
        else:
            out[key] = value
    return out


def check_settings(raw: object, *, source: str) -> RepmgrSettings:
    """Check already-parsed settings (see :func:`load_settings`)."""
    where = Where(source, RepmgrSettingsError)
    if not isinstance(raw, dict):
        raise where.error("", f"the file must be a mapping of settings, not {kind(raw)}")
    top = dict(raw)
    per_node = top.pop("nodes", {})
    _check_keys(top, "", where)
    if not isinstance(per_node, dict):
        raise where.error("nodes", f"{kind(per_node)} is not allowed: use a mapping per node")
    nodes: dict[str, dict[str, Any]] = {"*": top} if top else {}
    for name, keys in per_node.items():
        if name not in NODES:
            raise where.error(f"nodes.{name}", f"no such node; use one of {', '.join(NODES)}")
        if not isinstance(keys, dict):
            raise where.error(f"nodes.{name}", f"{kind(keys)} is not allowed: use a mapping")
        _check_keys(keys, f"nodes.{name}.", where)
        nodes[str(name)] = dict(keys)
    for name in (*NODES, "*"):
        _check_rules({**top, **per_node.get(name, {})}, where)
    return RepmgrSettings(nodes=nodes, source=source)


def _check_keys(keys: Mapping[str, Any], prefix: str, where: Where) -> None:
    for key, value in keys.items():
        path = f"{prefix}{key}"
        if key in DRILL_OWNED:
            raise where.error(
                path, "the drill sets it from its own cluster (ports, paths, node ids): remove it"
            )
        check = _KEYS.get(str(key))
        if check is None:
            raise where.error(path, f"unknown setting; allowed: {', '.join(sorted(_KEYS))}")
        check(value, path, where)


def _check_rules(conf: Mapping[str, Any], where: Where) -> None:
    """Rules between keys, on one node's effective settings (file over the drill's)."""
    eff = {**FAST_REPMGRD, "primary_visibility_consensus": True, **conf}
    if eff["failover"] == "manual":
        raise where.error(
            "failover",
            "'manual': repmgrd never promotes a standby, so every failover drill would only "
            "measure an outage until someone runs 'repmgr standby promote': set failover: "
            "automatic (the drill of manual failover is its negative control)",
        )
    window = eff["reconnect_attempts"] * eff["reconnect_interval"]
    veto = 2 * eff["monitor_interval_secs"]
    if eff["primary_visibility_consensus"] and window <= veto:
        # Measured: a sibling that saw the primary less than 2 monitor intervals ago vetoes
        # the election, and the vetoed standby then only pings the lost primary.
        raise where.error(
            "reconnect_attempts",
            f"reconnect_attempts × reconnect_interval = {window} s does not outlast the "
            f"visibility veto (2 × monitor_interval_secs = {veto} s): with "
            "primary_visibility_consensus a sibling that saw the primary that recently "
            "cancels the election and no failover follows; raise reconnect_attempts or "
            "reconnect_interval",
        )


_SECONDS = " of seconds"
_KEYS: dict[str, Callable[[object, str, Where], None]] = {
    "failover": one_of("automatic", "manual"),
    "priority": whole(0),
    "reconnect_attempts": whole(1),
    "reconnect_interval": whole(1, _SECONDS),
    "monitor_interval_secs": whole(1, _SECONDS),
    "primary_visibility_consensus": boolean,
    "standby_disconnect_on_failover": boolean,
    "sibling_nodes_disconnect_timeout": whole(1, _SECONDS),
    "promote_check_timeout": whole(1, _SECONDS),
    "promote_check_interval": whole(1, _SECONDS),
    "election_rerun_interval": whole(1, _SECONDS),
    "async_query_timeout": whole(1, _SECONDS),
    "repmgrd_standby_startup_timeout": whole(1, _SECONDS),
    "connection_check_type": one_of("ping", "connection", "query"),
    "failover_validation_command": text,
    "event_notification_command": text,
    "event_notifications": text,
    "log_level": one_of("DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "ALERT", "CRIT", "EMERG"),
    "log_status_interval": whole(0, _SECONDS),
}
