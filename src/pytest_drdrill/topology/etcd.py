"""etcd members, the store Patroni keeps its leader lease in.

Debian's ``etcd-server`` ships no ``etcdctl``; everything here speaks etcd's HTTP API.
Members of one cluster must start together: a member of a static three-member cluster
answers ``/health`` only once a quorum elected a leader, so :func:`start_members` starts
them in parallel.
"""

from __future__ import annotations

import concurrent.futures
import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from pytest_drdrill.servers import processes
from pytest_drdrill.servers.lifecycle import ServerProcess

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from pytest_drdrill.servers.processes import RunAs

_REMEDY = "Install etcd (Debian: apt-get install etcd-server; scripts/bootstrap does this)."


def find_etcd(explicit: str | None = None) -> str:
    """The ``etcd`` executable: ``explicit``, else the one on PATH.

    :raises ExecutableMissing: with the remedy, when there is none.
    """
    return processes.find_program("etcd", explicit, _REMEDY)


def http_json(url: str, *, timeout: float = 1.0) -> object:
    """GET ``url`` and decode its JSON body (any HTTP status with a JSON body counts)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 - loopback
            return json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return json.loads(err.read() or b"null")


def http_send(
    url: str, body: object, *, method: str = "POST", timeout: float = 5.0
) -> tuple[int, str]:
    """Send ``body`` as JSON with ``method``; return the HTTP status and the reply's text.

    :raises OSError: when nothing answers (an HTTP error status is a reply, not raised).
    """
    request = urllib.request.Request(  # noqa: S310 - loopback
        url, data=json.dumps(body).encode(), method=method,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
            return reply.status, reply.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


class EtcdMember(ServerProcess):
    """One member of a static etcd cluster on loopback.

    :param name: the member's name, unique in its cluster.
    :param region: ``primary`` or ``dr``.
    :param datadir: its data directory (created by etcd).
    :param log: the log file.
    :param run_as: the account it runs as.
    :param etcd: the ``etcd`` executable.

    :attr:`port` is the client port; :attr:`peer_port` the one members talk on. Set
    :attr:`initial_cluster` (all members' ``name=peer URL``) before starting, e.g. with
    :func:`start_members`.
    """

    ready_phrase = "join a healthy cluster"
    program = "etcd"
    stop_timeout = 5.0

    def __init__(
        self,
        name: str,
        region: str,
        datadir: Path,
        *,
        log: Path,
        run_as: RunAs | None = None,
        etcd: str = "etcd",
        token: str = "drdrill",
    ) -> None:
        super().__init__(name, log=log, run_as=run_as)
        self.region = region
        self.datadir = datadir
        self.etcd = etcd
        self.token = token
        self.peer_port = processes.free_port()
        self.initial_cluster = f"{name}={self.peer_url}"
        #: Start as a one-member cluster of this member alone, keeping its data.
        self.force_new_cluster = False

    @property
    def client_url(self) -> str:
        """``http://host:port`` of the client API."""
        return f"http://{self.host}:{self.port}"

    @property
    def peer_url(self) -> str:
        """``http://host:port`` members reach this one at."""
        return f"http://{self.host}:{self.peer_port}"

    def command(self) -> list[str]:
        """``etcd`` as a member of the static cluster :attr:`initial_cluster`."""
        return [
            self.etcd, "--name", self.name, "--data-dir", str(self.datadir),
            "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", self.initial_cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", self.token,
            # v2 serves /v2/stats/self, which names the member answering.
            "--enable-v2=true",
            # A first leader within ~0.5 s of a cold start (defaults 100 / 1000 ms).
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--logger", "zap", "--log-outputs", "stderr",
            *(["--force-new-cluster"] if self.force_new_cluster else []),
        ]  # fmt: skip

    def check_ready(self) -> str | None:
        """Ready once the member answering is this one (by name) and the cluster is healthy."""
        try:
            stats = http_json(f"{self.client_url}/v2/stats/self")
            health = http_json(f"{self.client_url}/health")
        except (OSError, ValueError) as err:
            return str(err)
        if not isinstance(stats, dict) or stats.get("name") != self.name:
            return f"another server answers on its port ({stats!r})"
        if not isinstance(health, dict) or health.get("health") != "true":
            return f"cluster not healthy yet ({health!r})"
        return None

    def start(self, *, timeout: float = 15.0) -> EtcdMember:
        """Start the member and wait until the cluster it joins is healthy."""
        self.launch(timeout=timeout)
        return self

    def restart_alone(self, *, timeout: float = 15.0) -> EtcdMember:
        """Restart as the sole member of its cluster, with the data it holds.

        etcd's disaster recovery for a lost quorum: ``--force-new-cluster`` rewrites the
        membership to this member alone and keeps every key, leases included, so the
        survivor serves again without a snapshot restore. The flag is used for this one
        start only, as etcd's documentation asks.
        """
        self.stop()
        self.force_new_cluster = True
        try:
            self.launch(timeout=timeout)
        finally:
            self.force_new_cluster = False
        return self

    def member_names(self) -> list[str]:
        """Names of the cluster's members, as this member lists them."""
        reply = http_json(f"{self.client_url}/v2/members")
        members = reply.get("members", []) if isinstance(reply, dict) else []
        return sorted(str(m.get("name")) for m in members)


def start_members(members: Sequence[EtcdMember], *, timeout: float = 15.0) -> None:
    """Give each member the static cluster of all ``members`` and start them together.

    :raises TopologyError: from the first member that did not come up.
    """
    initial = ",".join(f"{m.name}={m.peer_url}" for m in members)
    for member in members:
        member.initial_cluster = initial
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(members)) as pool:
        futures = [pool.submit(m.start, timeout=timeout) for m in members]
        errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
