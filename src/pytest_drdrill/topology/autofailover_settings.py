"""A team's own pg_auto_failover settings (``--drill-pg-auto-failover-config=FILE``).

What shapes a pg_auto_failover failover lives in two places: the monitor's
``pgautofailover.*`` GUCs (how fast it sees a node lost and how long the chosen standby
waits for the old primary to demote) and each keeper's registration (its candidate
priority, whether it is in the replication quorum) with the formation's
``number_sync_standbys``. The file is YAML::

    health_check_period: 5000          # ms; the pgautofailover. prefix may be written
    primary_demote_timeout: 30000
    number_sync_standbys: 0
    nodes:
      pg-sync: {candidate_priority: 50, replication_quorum: true}
      pg-dr: {candidate_priority: 0, replication_quorum: false}

Everything else is refused: a typo the monitor would never see, or a key the drill sets
from its own cluster (ports, paths, the monitor's URI), would drill the defaults while the
team believes it drilled its own values. pg_auto_failover accepts settings under which no
failover can ever happen (no standby may be promoted) and the monitor refuses a
``number_sync_standbys`` the quorum cannot meet only once the cluster runs; both are errors
here, naming the file, the key and the fix.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pytest_drdrill.errors import AutofailoverSettingsError
from pytest_drdrill.topology.autofailover_cluster import KEEPERS
from pytest_drdrill.topology.proxied import PRIMARY
from pytest_drdrill.topology.setting_checks import Where, boolean, kind, read_file, whole

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: The drill's keepers, the names a ``nodes`` section may use.
NODES: tuple[str, ...] = tuple(name for name, *_ in KEEPERS)
_PREFIX = "pgautofailover."
_MS = " of milliseconds"

#: The monitor's GUCs a team may set, without their prefix.
MONITOR_KEYS: dict[str, Callable[[object, str, Where], None]] = {
    "health_check_period": whole(1, _MS),
    "health_check_max_retries": whole(1, most=100),
    "health_check_retry_delay": whole(1, _MS),
    "health_check_timeout": whole(1, _MS),
    "node_considered_unhealthy_timeout": whole(1, _MS),
    "primary_demote_timeout": whole(1, _MS),
    "startup_grace_period": whole(1, _MS),
}
_NODE_KEYS: dict[str, Callable[[object, str, Where], None]] = {
    "candidate_priority": whole(0, most=100),
    "replication_quorum": boolean,
}
#: Keys whose value the drill derives from its own cluster: a team's value would break it.
DRILL_OWNED = frozenset(
    {"pgdata", "pgport", "hostname", "monitor", "formation", "name", "nodename", "group",
     "listen", "auth", "ssl", "dbname", "username"}
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class AutofailoverSettings:
    """pg_auto_failover settings to run the drill's cluster with.

    :param monitor: the monitor's GUCs, prefixed (``pgautofailover.health_check_period``).
    :param priorities: candidate priority by node name.
    :param quorums: replication quorum by node name.
    :param number_sync_standbys: the formation's setting; ``None`` keeps the drill's.
    :param source: the file they came from.
    """

    monitor: dict[str, int]
    priorities: dict[str, int]
    quorums: dict[str, bool]
    number_sync_standbys: int | None
    source: str

    def cluster_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :meth:`AutofailoverCluster.build`."""
        out: dict[str, Any] = {
            "monitor_settings": dict(self.monitor),
            "priorities": dict(self.priorities),
            "quorums": dict(self.quorums),
        }
        if self.number_sync_standbys is not None:
            out["number_sync_standbys"] = self.number_sync_standbys
        return out


def load_settings(path: str | Path) -> AutofailoverSettings:
    """Read and check the team's pg_auto_failover settings file.

    :raises AutofailoverSettingsError: naming the file, the key and the fix.
    """
    source = str(path)
    text = read_file(
        path, AutofailoverSettingsError, stack="pg_auto_failover",
        option="--drill-pg-auto-failover-config",
    )  # fmt: skip
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise AutofailoverSettingsError(f"{source}: not valid YAML: {err}") from err
    return check_settings(raw or {}, source=source)


def check_settings(raw: object, *, source: str) -> AutofailoverSettings:
    """Check already-parsed settings (see :func:`load_settings`)."""
    where = Where(source, AutofailoverSettingsError)
    if not isinstance(raw, dict):
        raise where.error("", f"the file must be a mapping of settings, not {kind(raw)}")
    top = dict(raw)
    per_node = top.pop("nodes", {})
    sync = top.pop("number_sync_standbys", None)
    if sync is not None:
        whole(0)(sync, "number_sync_standbys", where)
    monitor: dict[str, int] = {}
    for key, value in top.items():
        bare = str(key).removeprefix(_PREFIX)
        if bare in DRILL_OWNED:
            raise where.error(
                str(key), "the drill sets it from its own cluster (ports, paths, the monitor): "
                "remove it",
            )  # fmt: skip
        check = MONITOR_KEYS.get(bare)
        if check is None:
            allowed = ", ".join([*MONITOR_KEYS, "number_sync_standbys", "nodes"])
            raise where.error(str(key), f"unknown setting; allowed: {allowed}")
        check(value, str(key), where)
        monitor[_PREFIX + bare] = value
    priorities, quorums = _check_nodes(per_node, where)
    _check_rules(priorities, quorums, sync, where)
    return AutofailoverSettings(monitor, priorities, quorums, sync, source)


def _check_nodes(per_node: object, where: Where) -> tuple[dict[str, int], dict[str, bool]]:
    if not isinstance(per_node, dict):
        raise where.error("nodes", f"{kind(per_node)} is not allowed: use a mapping per node")
    priorities: dict[str, int] = {}
    quorums: dict[str, bool] = {}
    for name, keys in per_node.items():
        path = f"nodes.{name}"
        if name not in NODES:
            raise where.error(path, f"no such node; use one of {', '.join(NODES)}")
        if not isinstance(keys, dict):
            raise where.error(path, f"{kind(keys)} is not allowed: use a mapping")
        for key, value in keys.items():
            check = _NODE_KEYS.get(str(key))
            if check is None:
                allowed = ", ".join(_NODE_KEYS)
                raise where.error(f"{path}.{key}", f"unknown setting; allowed: {allowed}")
            check(value, f"{path}.{key}", where)
        if "candidate_priority" in keys:
            priorities[str(name)] = keys["candidate_priority"]
        if "replication_quorum" in keys:
            quorums[str(name)] = keys["replication_quorum"]
    return priorities, quorums


def _check_rules(
    priorities: Mapping[str, int], quorums: Mapping[str, bool], sync: int | None, where: Where
) -> None:
    """Rules between keys, on the settings the cluster would run with (file over drill's)."""
    standbys = [(name, priorities.get(name, p), quorums.get(name, q))
                for name, _, p, q in KEEPERS if name != PRIMARY]  # fmt: skip
    if not any(priority > 0 for _, priority, _ in standbys):
        raise where.error(
            "nodes",
            f"every standby ({', '.join(n for n, *_ in standbys)}) has candidate_priority 0: "
            "pg_auto_failover never promotes one, so every failover drill would only measure "
            "an outage; give the synchronous standby a candidate_priority above 0 (the drill "
            "of no candidate is its negative control)",
        )
    in_quorum = sum(1 for *_, quorum in standbys if quorum)
    if sync is not None and sync > max(in_quorum - 1, 0):
        raise where.error(
            "number_sync_standbys",
            f"{sync} needs {sync + 1} standbys with replication_quorum true and the cluster "
            f"has {in_quorum} (the monitor refuses it); lower number_sync_standbys or set "
            "replication_quorum: true on more nodes",
        )
