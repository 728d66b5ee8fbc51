"""Patroni as the HA stack under test: etcd, Patroni on every node, HAProxy in front.

On the local backend the provider builds the cluster from the host's packages (Debian's
``patroni``, ``etcd-server``, ``haproxy``); Patroni, not the drill, decides every
PostgreSQL failover, and the drill only measures what clients saw. Before a fault the
provider reads the live settings back from Patroni's REST ``/config`` and computes the
failover envelope for it (:mod:`pytest_drdrill.recovery.envelope`); while the drill
runs, ``/cluster`` and each server's ``pg_is_in_recovery()`` are sampled into its
timeline.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import re
import subprocess
from typing import TYPE_CHECKING, Any

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.measure.roles import lsn_text, wall_to_monotonic
from pytest_drdrill.recovery.envelope import envelope
from pytest_drdrill.results import RoleSample, TimelineSwitch
from pytest_drdrill.topology.etcd import find_etcd
from pytest_drdrill.topology.haproxy import find_haproxy
from pytest_drdrill.topology.local import LocalBackend
from pytest_drdrill.topology.patroni import find_patroni
from pytest_drdrill.topology.patroni_rest import RunsPatroni
from pytest_drdrill.topology.patroni_topology import PatroniTopology

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from pytest_drdrill.faults._protocol import Fault
    from pytest_drdrill.recovery.envelope import FailoverEnvelope
    from pytest_drdrill.recovery.envelope import Fault as EnvelopeFault
    from pytest_drdrill.topology._protocol import Topology
    from pytest_drdrill.topology.backend import Backend
    from pytest_drdrill.topology.patroni_settings import PatroniSettings

logger = logging.getLogger(__name__)

#: Which envelope a fault on the leader falls under, by the fault's kind.
_ON_LEADER: dict[str, EnvelopeFault] = {
    "crash": "node_loss",
    "freeze": "patroni_frozen",
    "postgres-crash": "postgres_crash",
    "dcs-partition": "dcs_partition",
}


class PatroniHA:
    """PostgreSQL failover by a real Patroni cluster.

    :param settings: the team's settings (``--drill-patroni-config``), already checked;
        ``None`` for the drill's defaults.
    :param patroni: the ``patroni`` executable (``--drill-patroni-bin``); default the
        one on PATH.

    .. versionadded:: 0.6
    """

    name = "patroni"
    decides_failover = True

    def __init__(self, settings: PatroniSettings | None = None, patroni: str | None = None) -> None:
        self.settings = settings
        self._patroni = patroni

    @functools.cached_property
    def executables(self) -> dict[str, str]:
        """``patroni``, ``etcd`` and ``haproxy``; raises ExecutableMissing with the remedy."""
        return {
            "patroni": find_patroni(self._patroni),
            "etcd": find_etcd(),
            "haproxy": find_haproxy(),
        }

    def topology(self, backend: Backend, workdir: Path, *, sentinel: bool = False) -> Topology:
        """The local topology with a Patroni cluster running PostgreSQL, or the team's own.

        On the stack backend nothing is started: the stack file's ``patroni:`` section names
        the team's cluster, and the drill reads its settings and roles from it.
        """
        from pytest_drdrill.topology.stack import StackBackend

        if isinstance(backend, StackBackend):
            return backend.topology(workdir, sentinel=sentinel, patroni=True)
        if not isinstance(backend, LocalBackend) or backend.dataroot is None:
            raise TopologyError(
                f"--drill-postgres-failover=patroni builds its cluster on the local backend, "
                f"not on --drill-backend={backend.name}: use --drill-backend=local, or "
                f"--drill-backend=stack with a stack file whose patroni: section names the "
                f"team's Patroni (its members' REST URLs)"
            )
        return backend.topology(
            workdir,
            sentinel=sentinel,
            kind=PatroniTopology,
            settings=self.settings,
            executables=self.executables,
        )

    @functools.cached_property
    def _versions(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, flag in (("patroni", "--version"), ("etcd", "--version"), ("haproxy", "-v")):
            try:
                out = subprocess.run(
                    [self.executables[name], flag], capture_output=True, text=True, timeout=10
                ).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            match = re.search(r"\d+\.\d+(\.\d+)?", out)
            found[name] = match.group(0) if match else "unknown"
        return found

    def versions(self) -> Mapping[str, str]:
        """The Patroni, etcd and HAProxy versions the drills run."""
        return dict(self._versions)

    # --- the failover envelope ----------------------------------------------------------------

    def live_config(self, topology: Topology) -> dict[str, Any]:
        """Patroni's dynamic configuration as the cluster holds it (REST ``/config``).

        :raises TopologyError: when no member answers.
        """
        return _rest(topology).config(first=topology.primary.name)

    def envelope(self, topology: Topology, fault: Fault) -> FailoverEnvelope | None:
        """The envelope of ``fault`` when it is one Patroni's settings bound."""
        kind = self.classify(topology, fault)
        return None if kind is None else envelope(kind, self.live_config(topology))

    @staticmethod
    def classify(topology: Topology, fault: Fault) -> EnvelopeFault | None:
        """Which of Patroni's failure modes ``fault`` is, or ``None``."""
        if fault.target == topology.primary.name and fault.kind in _ON_LEADER:
            return _ON_LEADER[fault.kind]
        if fault.kind == "dcs-quorum-loss":
            return "dcs_quorum_lost"
        if fault.kind == "link-cut" and fault.target == topology.pg_endpoint.label:
            return "clients_partitioned"
        return None

    # --- observation --------------------------------------------------------------------------

    def roles(self, topology: Topology) -> Sequence[RoleSample]:
        """``/cluster`` as last read, and each server's own ``pg_is_in_recovery()``."""
        if not isinstance(topology, RunsPatroni):
            return ()
        at = timing.monotonic()
        reported = {str(m.get("name")): m for m in topology.cluster_state().get("members", [])}
        # Asked at once: a frozen server holds its ask for libpq's 2 s floor, not the others.
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(topology.pg_nodes)) as pool:
            answers = dict(
                zip(
                    topology.pg_nodes,
                    pool.map(
                        _in_recovery,
                        [n.dsn(app="drdrill-roles") for n in topology.pg_nodes.values()],
                    ),
                    strict=True,
                )
            )
        samples = []
        for name in topology.pg_nodes:
            member = reported.get(name, {})
            lag = member.get("lag")
            timeline = member.get("timeline")
            samples.append(
                RoleSample(
                    at=at,
                    node=name,
                    role=str(member.get("role", "unreachable")),
                    state=str(member.get("state", "")),
                    timeline=int(timeline) if isinstance(timeline, int) else None,
                    lag_bytes=int(lag) if isinstance(lag, int) else None,
                    in_recovery=answers[name],
                    source="patroni /cluster",
                )
            )
        return samples

    def history_rows(self, topology: Topology) -> list[list[Any]]:
        """Patroni's ``/history``: ``[timeline, lsn, reason, timestamp, new leader]`` per switch."""
        return _rest(topology).history(first=topology.primary.name)

    def settle(self, topology: Topology, *, timeout: float) -> str | None:
        """Nothing to wait for: the endpoint only leads to the member the stack chose."""
        return None

    def history(self, topology: Topology) -> Sequence[TimelineSwitch]:
        """The timeline switches in ``/history``, each naming the timeline that began.

        Patroni writes a row a loop or more after the promotion: read it at the drill's end.
        """
        anchor = timing.anchor()
        return [
            TimelineSwitch(
                timeline=int(row[0]) + 1,
                lsn=lsn_text(row[1]),
                at=wall_to_monotonic(row[3], anchor) if len(row) > 3 else None,
                reason=str(row[2]),
                new_leader=str(row[4]) if len(row) > 4 and row[4] else None,
            )
            for row in self.history_rows(topology)
        ]


def _rest(topology: Topology) -> Any:
    """The REST API of the topology's Patroni cluster, built by the plugin or the team's."""
    if not isinstance(topology, RunsPatroni):
        raise TopologyError(
            "this topology runs no Patroni: use --drill-postgres-failover=patroni, and on "
            "--drill-backend=stack name the team's cluster in the stack file's patroni: section"
        )
    return topology.patroni_rest


def _in_recovery(dsn: str) -> bool | None:
    """``pg_is_in_recovery()`` asked directly, bounded; ``None`` without an answer."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=1) as conn:
            conn.execute("SET statement_timeout = 500")
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    except psycopg.Error:
        return None
    return None if row is None else bool(row[0])
