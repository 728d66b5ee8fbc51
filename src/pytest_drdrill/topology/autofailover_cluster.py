"""A pg_auto_failover cluster for one drill: a monitor and three keepers on loopback.

The monitor runs in the primary region. ``pg-primary`` and ``pg-sync`` are keepers in
the primary region with ``replication-quorum true`` and equal candidate priorities, and
the formation's ``number_sync_standbys`` stays 0: with one quorum standby pg_auto_failover
still sets ``synchronous_standby_names = 'ANY 1 (pg-sync)'``, so every commit waits for
``pg-sync``; 1 would need two quorum standbys (the monitor refuses it: "At least 2
standby nodes are required").
``pg-dr`` is asynchronous (``replication-quorum false``) with candidate priority 0:

- not in the quorum, because a commit that waited for the other region would put the
  cross-region link's latency and loss into every write of the primary region, and a
  DR outage would stall writes (the requirement keeps the DR node asynchronous);
- priority 0, because the monitor must not move the primary to the other region on its
  own: promoting the DR node is the operator's decision in a regional disaster, and an
  asynchronous node may miss acknowledged writes.

Every path passes the fault proxy: each keeper reaches the monitor over a path of its
own (``mon-<node>``), and each keeper's registered address is a path to it
(``pg-<node>``, used by the monitor's health checks and by replication). Clients get
their own paths, joined into the multi-host URI ``pg_autoctl show uri`` prints.

The monitor's health checks are made fast enough for drills through its GUCs
(``ALTER SYSTEM`` on the monitor and a reload), see :data:`FAST_MONITOR`.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import uuid
from typing import TYPE_CHECKING, Any

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.topology.autofailover import MONITOR_DB, AutoctlKeeper, AutoctlMonitor
from pytest_drdrill.topology.links import Link
from pytest_drdrill.topology.proxied import DR, PRIMARY, SYNC

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from pytest_drdrill.proxy import ProxyClient
    from pytest_drdrill.servers.processes import RunAs
    from pytest_drdrill.topology.nodes import ServiceNode

logger = logging.getLogger(__name__)

#: The monitor's health-check GUCs a drill runs with (pg_auto_failover's defaults:
#: period 5000 ms, 2 retries, 2000 ms retry delay, 5000 ms timeout, unhealthy after
#: 20000 ms, primary demote timeout 30000 ms). Lower than the defaults so a node-loss drill
#: lasts seconds: with the defaults a killed primary took 37 s to the first write, the
#: standby waiting out ``primary_demote_timeout`` before it may serve writes.
FAST_MONITOR: dict[str, int] = {
    "pgautofailover.primary_demote_timeout": 2000,
    "pgautofailover.health_check_period": 1000,
    "pgautofailover.health_check_max_retries": 1,
    "pgautofailover.health_check_retry_delay": 500,
    "pgautofailover.health_check_timeout": 1000,
    "pgautofailover.node_considered_unhealthy_timeout": 2000,
}
#: ``(name, region, candidate priority, replication quorum)`` of the keepers, in start order.
KEEPERS = ((PRIMARY, "primary", 50, True), (SYNC, "primary", 50, True), (DR, "dr", 0, False))
#: Monitor states of a keeper that streams from the primary.
STANDBY_STATES = {"secondary"}


class AutofailoverCluster:
    """A running monitor and three keepers; :meth:`close` removes all of it.

    :attr:`keepers` are the PostgreSQL nodes by name, :attr:`links` every proxy path by
    name (``mon-<node>``, ``pg-<node>``).
    """

    def __init__(self, workdir: Path, dataroot: Path, proxy: ProxyClient) -> None:
        self.workdir = workdir
        self.proxy = proxy
        self.id = uuid.uuid4().hex[:8]
        self.data = dataroot / self.id
        self.monitor: AutoctlMonitor | None = None
        self.keepers: dict[str, AutoctlKeeper] = {}
        self.links: dict[str, Link] = {}
        self.timings: dict[str, float] = {}

    @classmethod
    def build(
        cls,
        workdir: Path,
        *,
        dataroot: Path,
        proxy: ProxyClient,
        bin_dir: Path,
        run_as: RunAs | None,
        template: Path | None,
        monitor_settings: Mapping[str, int] | None = None,
        priorities: Mapping[str, int] | None = None,
        quorums: Mapping[str, bool] | None = None,
        number_sync_standbys: int = 0,
        pg_autoctl: str = "pg_autoctl",
        timeout: float = 90.0,
    ) -> AutofailoverCluster:
        """Start the monitor, then the keepers one by one; return once all are in place.

        :param monitor_settings: the monitor GUCs over :data:`FAST_MONITOR`.
        :param priorities: candidate priorities by node name over :data:`KEEPERS`'.
        :param quorums: replication quorum by node name over :data:`KEEPERS`'.
        :raises TopologyError: when it does not come up; what was started is removed.
        """
        cluster = cls(workdir, dataroot, proxy)
        try:
            cluster._start(
                bin_dir, run_as, template, {**FAST_MONITOR, **(monitor_settings or {})},
                dict(priorities or {}), dict(quorums or {}), number_sync_standbys, pg_autoctl,
                timeout,
            )  # fmt: skip
        except BaseException:
            cluster.close()
            raise
        return cluster

    def _link(self, name: str, target: ServiceNode, label: str, source: str) -> Link:
        link = Link(self.proxy, f"drdrill-{self.id}-{name}", target, label, source=source)
        self.links[name] = link
        return link

    def _start(
        self,
        bin_dir: Path,
        run_as: RunAs | None,
        template: Path | None,
        monitor_settings: dict[str, int],
        priorities: dict[str, int],
        quorums: dict[str, bool],
        number_sync_standbys: int,
        pg_autoctl: str,
        timeout: float,
    ) -> None:
        t0 = timing.monotonic()
        deadline = t0 + timeout
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data.mkdir()
        if run_as is not None:
            run_as.own(self.data)
        common: dict[str, Any] = {"bin_dir": bin_dir, "run_as": run_as, "pg_autoctl": pg_autoctl}
        self.monitor = AutoctlMonitor(
            "monitor", "primary", self.data / "monitor", log=self.workdir / "monitor.log",
            template=template, **common,
        )  # fmt: skip
        self.monitor.start(timeout=timeout)
        self.configure_monitor(monitor_settings)
        self.timings["monitor"] = timing.monotonic() - t0
        for name, region, priority, quorum in KEEPERS:
            monitor_path = self._link(f"mon-{name}", self.monitor, f"{name} -> monitor", name)
            keeper = AutoctlKeeper(
                name, region, self.data / name,
                monitor_uri=(
                    f"postgres://autoctl_node@{monitor_path.address}/{MONITOR_DB}?sslmode=disable"
                ),
                candidate_priority=priorities.get(name, priority),
                replication_quorum=quorums.get(name, quorum),
                template=template if name == PRIMARY else None,
                log=self.workdir / f"{name}.log", **common,
            )  # fmt: skip
            path = self._link(f"pg-{name}", keeper, f"peers -> {name}", "peers")
            # The registered address is the proxy path's: PostgreSQL takes its port on
            # the keeper's own loopback address.
            keeper.port = path.port
            path.follow()
            self.keepers[name] = keeper
            keeper.start(timeout=deadline - timing.monotonic())
            self.wait_state(name, {"single", "primary"} if name == PRIMARY else STANDBY_STATES,
                            timeout=deadline - timing.monotonic())  # fmt: skip
            self.timings[f"{name} {'primary' if name == PRIMARY else 'streaming'}"] = (
                timing.monotonic() - t0
            )
        if number_sync_standbys:
            self.autoctl_monitor(
                "set", "formation", "number-sync-standbys", str(number_sync_standbys)
            )
        self.wait_state(PRIMARY, {"primary"}, timeout=deadline - timing.monotonic())
        self.timings["ready"] = timing.monotonic() - t0

    # --- the monitor ------------------------------------------------------------------------

    def configure_monitor(self, settings: Mapping[str, int]) -> None:
        """``ALTER SYSTEM`` the monitor's GUCs and reload."""
        assert self.monitor is not None
        with psycopg.connect(self.monitor.dsn(), autocommit=True, connect_timeout=5) as conn:
            for key, value in settings.items():
                conn.execute(f"ALTER SYSTEM SET {key} = {int(value)}")
            conn.execute("SELECT pg_reload_conf()")

    def monitor_settings(self) -> dict[str, int]:
        """The monitor's live ``pgautofailover.*`` GUCs, read from ``pg_settings``."""
        assert self.monitor is not None
        with psycopg.connect(self.monitor.dsn(), autocommit=True, connect_timeout=2) as conn:
            rows = conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name LIKE 'pgautofailover.%'"
            ).fetchall()
        return {str(n): int(v) for n, v in rows if str(v).lstrip("-").isdigit()}

    def autoctl_monitor(self, *args: str, timeout: float = 15.0) -> str:
        """``pg_autoctl <args> --monitor <uri>`` run against the monitor; its stdout."""
        assert self.monitor is not None
        monitor = self.monitor
        uri = f"postgres://autoctl_node@{monitor.address}/{MONITOR_DB}?sslmode=disable"
        try:
            done = subprocess.run(
                [monitor.pg_autoctl, *args, "--monitor", uri],
                capture_output=True, text=True, errors="replace", timeout=timeout, check=False,
                env={**monitor.environment()},
            )  # fmt: skip
        except subprocess.TimeoutExpired as err:
            raise TopologyError(f"pg_autoctl {' '.join(args)} timed out after {timeout}s") from err
        if done.returncode != 0:
            raise TopologyError(
                f"pg_autoctl {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}"
            )
        return done.stdout

    def node_states(self, *, timeout: float = 1.0) -> list[dict[str, Any]]:
        """The monitor's ``pgautofailover.node`` rows: name, states, LSN, health, priority.

        :raises psycopg.Error: when the monitor does not answer.
        """
        assert self.monitor is not None
        with psycopg.connect(
            self.monitor.dsn(app="drdrill-roles"), autocommit=True, connect_timeout=2
        ) as conn:
            conn.execute(f"SET statement_timeout = {int(timeout * 1000)}")
            cur = conn.execute(
                "SELECT nodename, reportedstate::text, goalstate::text, reportedlsn::text, "
                "reportedtli, health, candidatepriority, replicationquorum, nodeport "
                "FROM pgautofailover.node ORDER BY nodeid"
            )
            cols = [c.name for c in cur.description or ()]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def state_json(self) -> Any:
        """``pg_autoctl show state --json`` as parsed JSON."""
        return json.loads(self.autoctl_monitor("show", "state", "--json"))

    def events(self, *, count: int = 200) -> Any:
        """The monitor's events (``pgautofailover.event``), oldest first."""
        assert self.monitor is not None
        with psycopg.connect(self.monitor.dsn(), autocommit=True, connect_timeout=2) as conn:
            cur = conn.execute(
                "SELECT eventtime, nodename, reportedstate::text, goalstate::text, "
                "reportedtli, reportedlsn::text, description FROM pgautofailover.event "
                "ORDER BY eventid DESC LIMIT %s",
                (count,),
            )
            cols = [c.name for c in cur.description or ()]
            return [dict(zip(cols, row, strict=True)) for row in reversed(cur.fetchall())]

    def primary_name(self) -> str | None:
        """The keeper the monitor has as primary (reported and goal), ``None`` if none."""
        try:
            rows = self.node_states()
        except psycopg.Error:
            return None
        for row in rows:
            if row["reportedstate"] in ("primary", "single") and row["goalstate"] in (
                "primary", "single", "wait_primary",
            ):  # fmt: skip
                return str(row["nodename"])
        return None

    def wait_state(self, name: str, states: set[str], *, timeout: float) -> None:
        """Wait until the monitor reports ``name`` in one of ``states`` (reported and goal)."""
        deadline = timing.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while timing.monotonic() < deadline:
            try:
                rows = self.node_states()
            except psycopg.Error:
                rows = []
            for row in rows:
                if row["nodename"] == name and {row["reportedstate"], row["goalstate"]} <= states:
                    return
            timing.sleep(0.1)
        raise TopologyError(
            f"pg_auto_failover node {name} did not reach {sorted(states)} within "
            f"{timeout:.0f}s; the monitor reports "
            f"{[(r['nodename'], r['reportedstate'], r['goalstate']) for r in rows]}; "
            f"logs in {self.workdir}"
        )

    # --- teardown ---------------------------------------------------------------------------

    def close(self) -> None:
        """Kill every process, delete every proxy entry and the data; never raises."""
        for server in [*self.keepers.values(), self.monitor]:
            if server is not None:
                server.cleanup()
        for link in self.links.values():
            link.remove()
        self.monitor, self.keepers, self.links = None, {}, {}
        shutil.rmtree(self.data, ignore_errors=True)
