"""pg_auto_failover as the HA stack under test: a monitor and three keepers.

On the local backend the provider builds the cluster from the host's packages (Debian's
``pg-auto-failover-cli`` and ``postgresql-15-auto-failover``); the monitor, not the
drill, decides every PostgreSQL failover, and the drill only measures what clients saw
through the multi-host URI. Before a fault the provider reads the monitor's live GUCs
from ``pg_settings`` and computes the envelope
(:mod:`pytest_drdrill.recovery.autofailover_envelope`); while the drill runs the
monitor's node table and each server's ``pg_is_in_recovery()`` go into its timeline.
"""

from __future__ import annotations

import concurrent.futures
import functools
import re
import subprocess
from typing import TYPE_CHECKING, Any

from pytest_drdrill import timing
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.ha.patroni import _in_recovery
from pytest_drdrill.measure.roles import lsn_text, wall_to_monotonic
from pytest_drdrill.recovery.autofailover_envelope import (
    monitor_lost_envelope,
    node_loss_envelope,
)
from pytest_drdrill.results import RoleSample, TimelineSwitch
from pytest_drdrill.topology.autofailover import find_pg_autoctl
from pytest_drdrill.topology.autofailover_topology import AutofailoverTopology
from pytest_drdrill.topology.local import LocalBackend

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from pytest_drdrill.faults._protocol import Fault
    from pytest_drdrill.recovery.envelope import FailoverEnvelope
    from pytest_drdrill.topology._protocol import Topology
    from pytest_drdrill.topology.backend import Backend


class AutofailoverHA:
    """PostgreSQL failover by a real pg_auto_failover monitor.

    :param settings: keyword arguments for the cluster (``monitor_settings``,
        ``priorities``, ``number_sync_standbys``); ``None`` for the drill's defaults.

    .. versionadded:: 0.6
    """

    name = "pg_auto_failover"
    decides_failover = True

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = dict(settings or {})

    def topology(self, backend: Backend, workdir: Path, *, sentinel: bool = False) -> Topology:
        """The local topology with pg_auto_failover running PostgreSQL."""
        if not isinstance(backend, LocalBackend) or backend.dataroot is None:
            raise TopologyError(
                f"--drill-postgres-failover=pg_auto_failover builds its cluster on the local "
                f"backend, not on --drill-backend={backend.name}: use --drill-backend=local"
            )
        return backend.topology(
            workdir,
            sentinel=sentinel,
            kind=AutofailoverTopology,
            settings=self.settings,
            executables={"pg_autoctl": find_pg_autoctl()},
        )

    @functools.cached_property
    def _versions(self) -> dict[str, str]:
        try:
            out = subprocess.run(
                [find_pg_autoctl(), "--version"], capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return {}
        match = re.search(r"pg_autoctl version (\S+)", out)
        return {"pg_auto_failover": match.group(1) if match else "unknown"}

    def versions(self) -> Mapping[str, str]:
        """The pg_autoctl version the drills run."""
        return dict(self._versions)

    # --- the failover envelope ----------------------------------------------------------------

    def live_settings(self, topology: Topology) -> dict[str, int]:
        """The monitor's ``pgautofailover.*`` GUCs as ``pg_settings`` shows them now."""
        return _cluster(topology).monitor_settings()

    def envelope(self, topology: Topology, fault: Fault) -> FailoverEnvelope | None:
        """The node-loss envelope for a crash or freeze of the primary; else ``None``."""
        cluster = _cluster(topology)
        if fault.target == "monitor":
            return monitor_lost_envelope()
        if fault.target == topology.primary.name and fault.kind in ("crash", "freeze"):
            monitor = cluster.monitor
            if monitor is None or monitor.fenced or not monitor.is_running():
                return monitor_lost_envelope()
            return node_loss_envelope(cluster.monitor_settings())
        return None

    # --- observation --------------------------------------------------------------------------

    def roles(self, topology: Topology) -> Sequence[RoleSample]:
        """The monitor's node table as last read, and each server's ``pg_is_in_recovery()``."""
        if not isinstance(topology, AutofailoverTopology):
            return ()
        at = timing.monotonic()
        reported = {str(r["nodename"]): r for r in topology.last_state}
        nodes = topology.pg_nodes
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            answers = dict(
                zip(
                    nodes,
                    pool.map(_in_recovery, [n.dsn(app="drdrill-roles") for n in nodes.values()]),
                    strict=True,
                )
            )
        samples = []
        for name in nodes:
            row = reported.get(name, {})
            tli = row.get("reportedtli")
            samples.append(
                RoleSample(
                    at=at,
                    node=name,
                    role=str(row.get("reportedstate", "unreachable")),
                    state=f"goal {row.get('goalstate', '?')}, health {row.get('health', '?')}",
                    timeline=int(tli) if isinstance(tli, int) else None,
                    lag_bytes=None,
                    in_recovery=answers[name],
                    source="pg_auto_failover monitor pgautofailover.node",
                )
            )
        return samples

    def settle(self, topology: Topology, *, timeout: float) -> str | None:
        """Wait while more than one keeper answers writable; ``None`` if none did.

        A primary frozen with its keeper comes back read-write: its keeper learns from
        the monitor that it must demote only on its next round. Until then a client of
        the multi-host URI that tries it first gets a stale primary (its own writes
        there wait for a synchronous standby that follows someone else). The drill's
        final read waits this out, and the note says how long it lasted.
        """
        if not isinstance(topology, AutofailoverTopology):
            return None
        start = timing.monotonic()
        first: list[str] | None = None
        while True:
            nodes = topology.pg_nodes
            answers = [_in_recovery(k.dsn(app="drdrill-settle")) for k in nodes.values()]
            writable = [n for n, a in zip(nodes, answers, strict=True) if a is False]
            first = writable if first is None else first
            took = timing.monotonic() - start
            if len(writable) <= 1:
                if len(first) <= 1:
                    return None
                return (
                    f"pg_auto_failover settled: {', '.join(first)} answered writable at once "
                    f"after the faults were healed, for up to {took:.1f} s (polled every 0.2 "
                    f"s), until only {', '.join(writable) or 'none'} was; the final read "
                    "waited for that"
                )
            if took >= timeout:
                return (
                    f"pg_auto_failover did not settle within {timeout:.0f} s of the faults' "
                    f"healing: {', '.join(writable)} all still writable; the final read "
                    "takes whichever host the URI gives first"
                )
            timing.sleep(0.2)

    def history(self, topology: Topology) -> Sequence[TimelineSwitch]:
        """Each timeline a keeper first reported in the monitor's events (``show events``)."""
        cluster = _cluster(topology)
        anchor = timing.anchor()
        seen: set[int] = set()
        switches = []
        for event in cluster.events():
            tli = event.get("reportedtli")
            if not isinstance(tli, int) or tli <= 1 or tli in seen:
                continue
            seen.add(tli)
            switches.append(
                TimelineSwitch(
                    timeline=tli,
                    lsn=lsn_text(str(event.get("reportedlsn"))),
                    at=_monotonic(event.get("eventtime"), anchor),
                    reason=str(event.get("description", "")),
                    new_leader=str(event.get("nodename")),
                )
            )
        return switches


def _monotonic(when: Any, anchor: Any) -> float | None:
    if when is None:
        return None
    try:
        return wall_to_monotonic(when.timestamp(), anchor)
    except (AttributeError, TypeError, ValueError):
        return None


def _cluster(topology: Topology) -> Any:
    if not isinstance(topology, AutofailoverTopology) or topology.autofailover is None:
        raise TopologyError(
            "this topology runs no pg_auto_failover: use "
            "--drill-postgres-failover=pg_auto_failover on --drill-backend=local"
        )
    return topology.autofailover
