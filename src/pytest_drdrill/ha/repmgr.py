"""repmgr as the HA stack under test: repmgrd on every node, a witness, HAProxy in front.

On the local backend the provider builds the cluster from Debian's ``postgresql-15-repmgr``
and ``haproxy``; repmgrd, not the drill, decides every PostgreSQL failover, and the drill
only measures what clients saw. The failover envelope comes from the repmgr.conf
settings the nodes run with (:func:`~pytest_drdrill.recovery.envelope.repmgr_envelope`);
while the drill runs, ``repmgr cluster show --csv`` and each server's
``pg_is_in_recovery()`` are sampled into the timeline, and ``repmgr cluster event``'s
promotions are its timeline switches.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import subprocess
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pytest_drdrill import timing
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.measure.roles import wall_to_monotonic
from pytest_drdrill.recovery.envelope import repmgr_envelope
from pytest_drdrill.results import RoleSample, TimelineSwitch
from pytest_drdrill.topology.haproxy import find_haproxy
from pytest_drdrill.topology.local import LocalBackend
from pytest_drdrill.topology.repmgr_settings import parse_repmgr_conf
from pytest_drdrill.topology.repmgr_topology import RepmgrTopology, in_recovery

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from pytest_drdrill.faults._protocol import Fault
    from pytest_drdrill.recovery.envelope import FailoverEnvelope
    from pytest_drdrill.topology._protocol import Topology
    from pytest_drdrill.topology.backend import Backend

#: ``repmgr cluster show --csv``'s availability and recovery columns (repmgr 5.3).
_AVAILABLE = {"0": "running", "-1": "unreachable"}
_RECOVERY = {"0": "primary", "1": "standby", "-1": "unknown"}


class RepmgrHA:
    """PostgreSQL failover by a real repmgr cluster.

    :param settings: repmgr.conf settings per node name (``"*"`` for all), already
        checked; ``None`` for the drill's defaults.

    .. versionadded:: 0.8
    """

    name = "repmgr"
    decides_failover = True

    def __init__(self, settings: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.settings = dict(settings or {})

    @functools.cached_property
    def executables(self) -> dict[str, str]:
        """``haproxy``; raises ExecutableMissing with the remedy."""
        return {"haproxy": find_haproxy()}

    def topology(self, backend: Backend, workdir: Path, *, sentinel: bool = False) -> Topology:
        """The local topology with a repmgr cluster running PostgreSQL."""
        if not isinstance(backend, LocalBackend) or backend.dataroot is None:
            raise TopologyError(
                f"--drill-postgres-failover=repmgr builds its cluster on the local backend, "
                f"not on --drill-backend={backend.name}: use --drill-backend=local"
            )
        return backend.topology(
            workdir,
            sentinel=sentinel,
            kind=RepmgrTopology,
            settings=self.settings,
            executables=self.executables,
        )

    @functools.cached_property
    def _versions(self) -> dict[str, str]:
        from pytest_drdrill.topology.postgres import PostgresInstall
        from pytest_drdrill.topology.repmgr import find_repmgr

        found: dict[str, str] = {}
        try:
            programs = {
                "repmgr": find_repmgr(PostgresInstall.discover().bindir)[0],
                "haproxy": self.executables["haproxy"],
            }
        except Exception:  # a header without versions beats a run that cannot start
            return found
        for name, program in programs.items():
            try:
                out = subprocess.run(
                    [program, "--version" if name == "repmgr" else "-v"],
                    capture_output=True, text=True, timeout=10,
                ).stdout  # fmt: skip
            except (OSError, subprocess.SubprocessError):
                continue
            match = re.search(r"\d+\.\d+(\.\d+)?", out)
            found[name] = match.group(0) if match else "unknown"
        return found

    def versions(self) -> Mapping[str, str]:
        """The repmgr and HAProxy versions the drills run."""
        return dict(self._versions)

    # --- the failover envelope ----------------------------------------------------------------

    def live_config(self, topology: Topology) -> dict[str, Any]:
        """The repmgr.conf the node that would take over runs with, read from its disk.

        Read back rather than recomputed, so the envelope shows what repmgrd was given.
        """
        cluster = _cluster(topology)
        standby = next(n for n in cluster.members.values() if n is not topology.primary)
        return parse_repmgr_conf(standby.config_file.read_text())

    def envelope(self, topology: Topology, fault: Fault) -> FailoverEnvelope | None:
        """The envelope of a crash of the primary (node or PostgreSQL alone)."""
        if fault.target != topology.primary.name:
            return None
        kind = {"crash": "node_loss", "postgres-crash": "postgres_crash"}.get(fault.kind)
        if kind is None:
            return None
        return repmgr_envelope(kind, self.live_config(topology))  # type: ignore[arg-type]

    # --- observation --------------------------------------------------------------------------

    def roles(self, topology: Topology) -> Sequence[RoleSample]:
        """``repmgr cluster show --csv`` and each server's own ``pg_is_in_recovery()``."""
        if not isinstance(topology, RepmgrTopology) or topology.repmgr is None:
            return ()
        cluster = topology.repmgr
        at = timing.monotonic()
        ids = {m.node_id: name for name, m in cluster.members.items()}
        try:
            rows = cluster.cluster_show()
        except TopologyError:
            rows = []
        reported = {ids[int(r[0])]: r for r in rows if len(r) >= 3 and int(r[0]) in ids}
        samples = []
        for name, member in cluster.members.items():
            row = reported.get(name)
            samples.append(
                RoleSample(
                    at=at,
                    node=name,
                    role=_RECOVERY.get(row[2], "unknown") if row else "unreachable",
                    state=_AVAILABLE.get(row[1], row[1]) if row else "",
                    timeline=None,
                    lag_bytes=None,
                    in_recovery=in_recovery(member.dsn(app="drdrill-roles")),
                    source="repmgr cluster show",
                )
            )
        return samples

    def settle(self, topology: Topology, *, timeout: float) -> str | None:
        """Nothing to wait for: the endpoint only leads to the member the stack chose."""
        return None

    def history(self, topology: Topology) -> Sequence[TimelineSwitch]:
        """Each ``standby_promote`` event of ``repmgr cluster event`` as a timeline switch.

        repmgr records no timeline number: the switches are numbered from timeline 2 in
        the order they happened.
        """
        if not isinstance(topology, RepmgrTopology) or topology.repmgr is None:
            return []
        anchor = timing.anchor()
        promotions = [
            row
            for row in csv.reader(io.StringIO(topology.repmgr.events()))
            if len(row) >= 5 and row[2] == "standby_promote" and row[3] == "t"
        ]
        promotions.sort(key=lambda row: row[4])
        return [
            TimelineSwitch(
                timeline=2 + i,
                lsn="",
                at=_event_time(row[4], anchor),
                reason="standby_promote",
                new_leader=row[1],
            )
            for i, row in enumerate(promotions)
        ]


def _event_time(text: str, anchor: Any) -> float | None:
    try:
        wall = datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        return None
    return wall_to_monotonic(wall, anchor)


def _cluster(topology: Topology) -> Any:
    if not isinstance(topology, RepmgrTopology) or topology.repmgr is None:
        raise TopologyError("this topology runs no repmgr: use --drill-postgres-failover=repmgr")
    return topology.repmgr
