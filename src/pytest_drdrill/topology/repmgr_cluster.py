"""A repmgr cluster over two regions, node-to-node traffic through the fault proxy.

Three PostgreSQL nodes (``pg-primary`` and ``pg-sync`` in the primary region, the
primary waiting for ``pg-sync``'s acknowledgement; ``pg-dr`` asynchronous with priority
0, never promoted by repmgrd) and a witness in the primary region, ``repmgrd`` on all four with
``failover=automatic`` and ``primary_visibility_consensus``: a standby promotes only when
no sibling (the witness included) still sees the primary, so the DR node cannot promote
on its own view of a partition. Every node's repmgr ``conninfo`` is a fault-proxy link,
so replication, repmgrd's monitoring and the consensus queries all cross the proxy.

Clients reach PostgreSQL through HAProxy, not a multi-host connection string: the
drill's clients and faults use one endpoint link, and HAProxy gives that link a single
address while following whichever node answers ``pg_is_in_recovery() = false``
(:class:`RepmgrHAProxy`, an external check every 500 ms). With a multi-host string each
client would choose its own server and the "clients partitioned" fault would have no
single path to cut.

repmgr does not fence: an old primary that comes back (thawed after a freeze, restarted
after a crash) is writable again and answers the check, and HAProxy would send clients to
it beside the new primary. So each node's ``event_notification_command`` is
:data:`FENCE` on ``repmgrd_failover_promote`` and ``standby_promote``: run on the node
repmgr just promoted, it puts every other server in maintenance through HAProxy's admin
socket, and clients follow repmgr's decision rather than each server's own view. A team's
own ``event_notification_command`` (``--drill-repmgr-config``) replaces it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import shutil
import socket
import subprocess
import uuid
from typing import TYPE_CHECKING, Any

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.servers import processes
from pytest_drdrill.topology.haproxy import LocalHAProxy
from pytest_drdrill.topology.links import Link
from pytest_drdrill.topology.postgres import write_auto_conf
from pytest_drdrill.topology.proxied import DR, PRIMARY, SYNC
from pytest_drdrill.topology.repmgr import RepmgrMember

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from pytest_drdrill.proxy import ProxyClient
    from pytest_drdrill.servers.processes import RunAs
    from pytest_drdrill.topology.nodes import ServiceNode

logger = logging.getLogger(__name__)

WITNESS = "pg-witness"
#: ``(name, node id, region, priority)``. The DR node has priority 0, so repmgrd never
#: promotes it: repmgr elects by received LSN first and priority only on a tie, and with
#: priority 50 a loaded run promoted pg-dr across regions on a node loss. Moving the
#: primary to the DR region is the region failover's decision, not repmgrd's.
MEMBERS = ((PRIMARY, 1, "primary", 100), (SYNC, 2, "primary", 100), (DR, 3, "dr", 0))

_CHECK = """#!/bin/sh
# HAProxy external check: passes only for a server that is not in recovery.
# Arguments: proxy address, proxy port, server address, server port.
{timeout} 1 {psql} -X -qtA "host=$3 port=$4 user=postgres dbname=postgres \
connect_timeout=1 application_name=drdrill-haproxy" -c 'SELECT pg_is_in_recovery()' \
2>/dev/null | {grep} -qx f
"""


#: The fence, repmgr's ``event_notification_command`` (``%n`` node id, ``%e`` event, ``%s``
#: success). bash, for ``/dev/tcp``: HAProxy's admin socket without socat or nc.
FENCE = """#!/bin/bash
# Called on the node repmgr just promoted: from now on HAProxy sends clients to it alone.
node_id=$1 event=$2 success=$3
[ "$success" = 1 ] || exit 0
case "$event" in repmgrd_failover_promote|standby_promote) ;; *) exit 0 ;; esac
declare -A names=({names})
new=${{names[$node_id]}}
[ -n "$new" ] || exit 0
cmd="set server postgres/$new state ready"
for name in "${{names[@]}}"; do
    [ "$name" = "$new" ] && continue
    cmd="$cmd; set server postgres/$name state maint; shutdown sessions server postgres/$name"
done
exec 3<>/dev/tcp/127.0.0.1/{port} || exit 1
printf '%s\\n' "$cmd" >&3
reply=$({timeout} 2 cat <&3)
echo "$(date -u +%FT%T.%3NZ) $event of node $node_id: $cmd -> ${{reply:-ok}}" >> {log}
"""


class RepmgrHAProxy(LocalHAProxy):
    """HAProxy sending clients to the node that is not in recovery (an external check).

    :param admin_port: loopback port of its admin socket, where :data:`FENCE` puts the
        servers repmgr did not promote in maintenance.
    """

    def __init__(
        self,
        workdir: Path,
        backends: list[tuple[str, str]],
        psql: Path,
        *,
        admin_port: int,
        **kw: Any,
    ) -> None:
        super().__init__(workdir, [(n, a, "") for n, a in backends], **kw)
        self.psql = psql
        self.admin_port = admin_port

    def server_states(self) -> dict[str, str]:
        """Each server's administrative and operational state (``show servers state``)."""
        with socket.create_connection(("127.0.0.1", self.admin_port), timeout=2) as sock:
            sock.sendall(b"show servers state postgres\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        states: dict[str, str] = {}
        for line in data.decode(errors="replace").splitlines():
            cols = line.split()
            # be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ...
            if len(cols) > 6 and cols[1] == "postgres":
                maint = int(cols[6]) & 0x01 or int(cols[6]) & 0x02
                states[cols[3]] = "maint" if maint else ("up" if cols[5] == "2" else "down")
        return states

    def prepare(self) -> None:
        """Write the check script and the configuration before each start attempt."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        check = self.workdir / "is-primary.sh"
        check.write_text(
            _CHECK.format(
                timeout=shutil.which("timeout") or "timeout",
                psql=self.psql,
                grep=shutil.which("grep") or "grep",
            )
        )
        check.chmod(0o755)
        self.workdir.chmod(0o755)
        lines = [
            "global",
            "    maxconn 200",
            "    external-check",
            "    insecure-fork-wanted",
            f"    stats socket ipv4@127.0.0.1:{self.admin_port} level admin",
            "defaults",
            "    mode tcp",
            "    timeout connect 2s",
            "    timeout client 30m",
            "    timeout server 30m",
            "    timeout check 1500ms",
            "listen postgres",
            f"    bind 127.0.0.1:{self.port}",
            # Every client to the first server up: the old primary restarted beside a
            # new one is then served, and the split-brain watcher sees it.
            "    balance first",
            "    option external-check",
            f"    external-check command {check}",
            "    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions",
            *(f"    server {name} {pg} check" for name, pg, _ in self.backends),
        ]
        self.config_file.write_text("\n".join(lines) + "\n")


class RepmgrCluster:
    """A running repmgr cluster (three nodes, a witness, HAProxy) for one drill.

    Build it with :meth:`build`; :meth:`close` removes every process, proxy entry and
    data directory. :attr:`endpoint` is where clients connect.
    """

    def __init__(self, workdir: Path, dataroot: Path, proxy: ProxyClient) -> None:
        self.workdir = workdir
        self.proxy = proxy
        self.id = uuid.uuid4().hex[:8]
        self.data = dataroot / f"repmgr-{self.id}"
        self.members: dict[str, RepmgrMember] = {}
        self.witness: RepmgrMember | None = None
        self.haproxy: RepmgrHAProxy | None = None
        #: Links by name: ``pg-<node>`` (peers, replication, HAProxy), ``endpoint``.
        self.links: dict[str, Link] = {}
        self.endpoint: Link
        self.timings: dict[str, float] = {}
        #: HAProxy's admin socket, known before any repmgr.conf is written.
        self.admin_port = processes.free_port()

    @classmethod
    def build(
        cls,
        workdir: Path,
        *,
        dataroot: Path,
        proxy: ProxyClient,
        bin_dir: Path,
        template: Path,
        run_as: RunAs | None,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        haproxy: str = "haproxy",
        timeout: float = 90.0,
    ) -> RepmgrCluster:
        """Start the cluster; return once both standbys stream, pg-sync synchronously.

        :param settings: repmgr.conf settings per node name (``"*"`` for every node).
        :raises TopologyError: when it does not come up; what was started is removed.
        """
        cluster = cls(workdir, dataroot, proxy)
        try:
            cluster._start(bin_dir, template, run_as, settings or {}, haproxy, timeout)
        except BaseException:
            cluster.close()
            raise
        return cluster

    def _link(self, name: str, target: ServiceNode, label: str, source: str, **kw: Any) -> Link:
        link = Link(self.proxy, f"drdrill-{self.id}-{name}", target, label, source=source, **kw)
        self.links[name] = link
        return link

    def _start(
        self,
        bin_dir: Path,
        template: Path,
        run_as: RunAs | None,
        settings: Mapping[str, Mapping[str, Any]],
        haproxy: str,
        timeout: float,
    ) -> None:
        t0 = timing.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data.mkdir()
        if run_as is not None:
            run_as.own(self.data)

        fence = self.write_fence(run_as)

        def make(name: str, node_id: int, region: str, priority: int, **kw: Any) -> RepmgrMember:
            own = {
                "priority": priority,
                "event_notification_command": f"{fence} %n %e %s",
                "event_notifications": "repmgrd_failover_promote,standby_promote",
                **settings.get("*", {}),
                **settings.get(name, {}),
            }
            member = RepmgrMember(
                name, node_id, region, self.data / name, bin_dir=bin_dir,
                log=self.workdir / f"{name}.log", run_as=run_as, settings=own, **kw,
            )  # fmt: skip
            link = self._link(f"pg-{name}", member, f"peers -> {name}", "peers")
            member.connect_address = link.address
            return member

        for name, node_id, region, priority in MEMBERS:
            self.members[name] = make(name, node_id, region, priority)
        self.witness = make(WITNESS, 4, "primary", 0, witness=True)
        for member in [*self.members.values(), self.witness]:
            member.workdir.mkdir()
            if run_as is not None:
                run_as.own(member.workdir)
            member.write_config()

        primary = self.members[PRIMARY]
        subprocess.run(["cp", "-a", str(template), str(primary.datadir)], check=True)
        write_auto_conf(primary.datadir, primary.server_settings())
        # Standbys copy this line with the data directory; the one promoted clears it.
        write_auto_conf(primary.datadir, {"synchronous_standby_names": f'FIRST 1 ("{SYNC}")'})
        primary.start_postgres()
        primary.tool("primary", "register")
        self.timings["primary registered"] = timing.monotonic() - t0
        upstream = self.links[f"pg-{PRIMARY}"]

        def clone(member: RepmgrMember) -> None:
            member.tool(
                "-h", upstream.host, "-p", str(upstream.port), "-U", "postgres",
                "-d", "postgres", "standby", "clone", "--fast-checkpoint", timeout=120,
            )  # fmt: skip
            write_auto_conf(member.datadir, {"port": str(member.port)})
            member.start_postgres()
            # register refuses a standby still in "catchup": try again until it streams.
            deadline = timing.monotonic() + 30
            while True:
                try:
                    member.tool("standby", "register", "--wait-sync=30")
                    return
                except TopologyError:
                    if timing.monotonic() > deadline:
                        raise
                    timing.sleep(0.2)

        def witness(member: RepmgrMember) -> None:
            # repmgr refuses a witness sharing the primary's system identifier: a copy of
            # the template would, so the witness gets a cluster of its own.
            processes.run(
                [str(bin_dir / "initdb"), "--no-sync", "-A", "trust", "-U", "postgres",
                 "-E", "UTF8", "--locale=C", "-D", str(member.datadir)],
                run_as=run_as, timeout=120, what="initdb for the repmgr witness",
            )  # fmt: skip
            write_auto_conf(member.datadir, member.server_settings())
            member.start_postgres()
            member.tool(
                "-h", upstream.host, "-p", str(upstream.port), "-U", "postgres",
                "-d", "postgres", "witness", "register",
            )  # fmt: skip

        jobs = [(clone, m) for m in self.members.values() if m is not primary]
        self._parallel([*jobs, (witness, self.witness)])
        self.timings["standbys registered"] = timing.monotonic() - t0
        everyone = [*self.members.values(), self.witness]
        self._parallel([(lambda m: m.start(timeout=timeout), m) for m in everyone])
        self.timings["repmgrd monitoring"] = timing.monotonic() - t0
        for member in self.members.values():
            member.peers = [m for m in self.members.values() if m is not member]
        self.haproxy = RepmgrHAProxy(
            self.data / "haproxy",
            [(n, self.links[f"pg-{n}"].address) for n in self.members],
            bin_dir / "psql",
            admin_port=self.admin_port,
            log=self.workdir / "haproxy.log",
            run_as=run_as,
            haproxy=haproxy,
        )
        self.haproxy.start()
        self.endpoint = self._link(
            "endpoint", self.haproxy, "clients -> postgres (HAProxy)", "clients", kind="endpoint"
        )
        self.wait_streaming(timeout=t0 + timeout - timing.monotonic())
        self.wait_endpoint(timeout=t0 + timeout - timing.monotonic())
        self.timings["ready"] = timing.monotonic() - t0

    @property
    def fence_log(self) -> Path:
        """What :data:`FENCE` did, one line per call (absent until a promotion)."""
        return self.data / "fence.log"

    def write_fence(self, run_as: RunAs | None) -> Path:
        """Write :data:`FENCE` for this cluster's nodes and admin port; its path."""
        script = self.data / "fence.sh"
        names = " ".join(f"[{node_id}]={name}" for name, node_id, _, _ in MEMBERS)
        script.write_text(
            FENCE.format(
                names=names,
                port=self.admin_port,
                timeout=shutil.which("timeout") or "timeout",
                log=self.fence_log,
            )
        )
        script.chmod(0o755)
        if run_as is not None:
            run_as.own(script)
        return script

    @staticmethod
    def _parallel(jobs: list[tuple[Any, RepmgrMember]]) -> None:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
            futures = [pool.submit(job, member) for job, member in jobs]
            errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error

    # --- observation ------------------------------------------------------------------------

    def wait_streaming(self, *, timeout: float) -> None:
        """Wait until pg-sync streams synchronously from pg-primary and pg-dr streams."""
        deadline = timing.monotonic() + timeout
        seen: dict[str, tuple[str, str]] = {}
        while timing.monotonic() < deadline:
            try:
                with psycopg.connect(
                    self.members[PRIMARY].dsn(), autocommit=True, connect_timeout=2
                ) as conn:
                    rows = conn.execute(
                        "SELECT application_name, state, sync_state FROM pg_stat_replication"
                    ).fetchall()
                seen = {str(r[0]): (str(r[1]), str(r[2])) for r in rows}
            except psycopg.Error:
                seen = {}
            if seen.get(SYNC) == ("streaming", "sync") and seen.get(DR, ("",))[0] == "streaming":
                return
            timing.sleep(0.05)
        raise TopologyError(
            f"repmgr standbys did not stream within {timeout:.0f}s: pg_stat_replication "
            f"showed {seen or 'nothing'}; logs in {self.workdir}"
        )

    def wait_endpoint(self, *, timeout: float) -> None:
        """Wait until a write through HAProxy succeeds (its check marked the primary up)."""
        deadline = timing.monotonic() + timeout
        last = "no attempt"
        since: float | None = None
        while timing.monotonic() < deadline:
            try:
                with psycopg.connect(self.endpoint.dsn(), autocommit=True, connect_timeout=2) as c:
                    row = c.execute("SELECT inet_server_port(), pg_is_in_recovery()").fetchone()
                # HAProxy counts every server up until its checks have failed twice: only
                # the primary answering for longer than that shows the checks at work.
                if row is not None and not row[1]:
                    since = timing.monotonic() if since is None else since
                    if timing.monotonic() - since > 1.2:
                        return
                    continue
                last = f"port {row[0] if row else '?'} answered, in recovery"
            except psycopg.Error as err:
                last = str(err)
            since = None
            timing.sleep(0.1)
        raise TopologyError(f"HAProxy did not reach the repmgr primary in time: {last}")

    def cluster_show(self) -> list[list[str]]:
        """``repmgr cluster show --csv`` asked through the first node that answers.

        Rows: node id, availability (0 up, -1 unreachable), recovery type (0 primary,
        1 standby, -1 unknown) as repmgr 5.3 prints them.

        :raises TopologyError: when no node answers.
        """
        for member in [*self.members.values(), *([self.witness] if self.witness else [])]:
            if member.postmaster_pid() is None:
                continue
            try:
                out = member.tool("cluster", "show", "--csv", timeout=5)
            except TopologyError as err:
                # cluster show exits non-zero when a node is down but still prints rows.
                out = _rows_in(str(err))
                if not out:
                    continue
            return [line.split(",") for line in out.splitlines() if line.strip()]
        raise TopologyError("no repmgr node answers 'repmgr cluster show'")

    def events(self) -> str:
        """``repmgr cluster event --csv`` from the first running data node ('' if none)."""
        for member in self.members.values():
            if member.postmaster_pid() is None:
                continue
            try:
                return member.tool("cluster", "event", "--csv", "--all", timeout=5)
            except TopologyError:
                continue
        return ""

    def nodes(self) -> dict[str, RepmgrMember]:
        """The data nodes by name."""
        return dict(self.members)

    # --- teardown ---------------------------------------------------------------------------

    def close(self) -> None:
        """Kill every process, delete every proxy entry and the data; never raises."""
        servers: list[Any] = [self.haproxy, *self.members.values(), self.witness]
        for server in servers:
            if server is not None:
                server.cleanup()
        for link in self.links.values():
            link.remove()
        self.haproxy, self.members, self.witness, self.links = None, {}, None, {}
        shutil.rmtree(self.data, ignore_errors=True)


def _rows_in(message: str) -> str:
    """The CSV lines inside a failed tool's error message."""
    return "\n".join(
        line for line in message.splitlines() if line[:1].isdigit() and line.count(",") >= 2
    )
