"""Patroni members: PostgreSQL under Patroni's control, as a node the drill can fault.

Patroni starts PostgreSQL detached from itself: killing Patroni leaves the postmaster
running (FIELD-NOTES). A node loss therefore kills both trees, the postmaster found by
line 1 of ``postmaster.pid``. The configuration is written as JSON, which is YAML, so no
YAML library is needed.

Debian's Patroni 3.0.2 talks to etcd 3.4 through its ``etcd3`` module (etcd's v3 HTTP
gateway, no ``etcd3`` Python package needed); ``use_proxies`` keeps it on the addresses
given, so its etcd traffic can pass through the fault proxy.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
from typing import TYPE_CHECKING, Any

from pytest_drdrill.errors import PatroniSettingsError, TopologyError
from pytest_drdrill.servers import processes
from pytest_drdrill.topology.etcd import http_json
from pytest_drdrill.topology.postgres import conninfo
from pytest_drdrill.topology.supervised import SupervisedPostgres

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from pytest_drdrill.servers.processes import RunAs

_REMEDY = "Install Patroni (Debian: apt-get install patroni; scripts/bootstrap does this)."

#: The most aggressive timings Patroni's rule ``loop_wait + 2 * retry_timeout <= ttl``
#: allows with a one-second loop.
FAST_DCS: dict[str, Any] = {"ttl": 10, "loop_wait": 1, "retry_timeout": 4}

#: Dynamic (DCS) settings every cluster is bootstrapped with.
BOOTSTRAP_DCS: dict[str, Any] = {
    **FAST_DCS,
    "maximum_lag_on_failover": 1048576,
    "synchronous_mode": True,
    # The requirements' two synchronous standbys: Patroni names both, and drops a lost
    # one from synchronous_standby_names on its next loop.
    "synchronous_node_count": 2,
    "postgresql": {
        "use_pg_rewind": True,
        "use_slots": True,
        "parameters": {
            # pg_rewind needs hint bits logged (or checksums) to rejoin an old primary.
            "wal_log_hints": "on",
            # The 5 s default stalls about one promotion in four by ~5.05 s.
            "wal_retrieve_retry_interval": "100ms",
            "max_connections": 40,
            "max_wal_senders": 10,
            "max_replication_slots": 10,
            "wal_keep_size": "128MB",
        },
    },
}

#: Local PostgreSQL settings (not shared through the DCS), measured reasons as in postgres.py.
LOCAL_PARAMETERS: dict[str, str] = {
    "dynamic_shared_memory_type": "mmap",
    "shared_buffers": "16MB",
    "logging_collector": "off",
    "log_min_messages": "warning",
}


def check_timings(dcs: Mapping[str, Any], *, source: str = "Patroni timings") -> None:
    """Refuse timings that break Patroni's rule ``loop_wait + 2 * retry_timeout <= ttl``.

    The rule is what lets a leader cut off from the DCS give up its role (after its
    retries run out) before its leader key expires and a replica takes over.

    :param source: where the timings come from, named first in the message (a file).
    :raises PatroniSettingsError: naming the values and the fix.
    """
    ttl, loop, retry = dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"]
    if loop + 2 * retry > ttl:
        raise PatroniSettingsError(
            f"{source}: ttl, loop_wait and retry_timeout break Patroni's rule "
            f"loop_wait + 2 * retry_timeout <= ttl: "
            f"{loop} + 2 * {retry} > {ttl}. Raise ttl to at least {loop + 2 * retry} or "
            f"lower loop_wait / retry_timeout."
        )


def find_patroni(explicit: str | None = None) -> str:
    """The ``patroni`` executable: ``explicit``, else the one on PATH.

    :raises ExecutableMissing: with the remedy, when there is none.
    """
    return processes.find_program("patroni", explicit, _REMEDY)


def patroni_version(explicit: str | None = None) -> tuple[int, ...]:
    """The version of the ``patroni`` that drills run, e.g. ``(3, 0, 2)``.

    :raises ExecutableMissing: when there is no Patroni.
    :raises TopologyError: when it does not say its version.
    """
    program = find_patroni(explicit)
    try:
        out = subprocess.run(
            [program, "--version"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError) as err:
        raise TopologyError(f"{program} --version failed: {err}") from err
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    if match is None:
        raise TopologyError(f"{program} --version printed no version: {out.strip()!r}")
    return tuple(int(part) for part in match.groups())


class PatroniMember(SupervisedPostgres):
    """One Patroni member and the PostgreSQL server it runs.

    :param name: the member's name in the cluster (and the node's name).
    :param region: ``primary`` or ``dr``.
    :param workdir: directory for its config, data directory and socket directory; keep
        it short, the Unix socket path must stay under ~107 characters.
    :param scope: the cluster's name in the DCS.
    :param etcd_hosts: ``host:port`` of every etcd member (or of links in front of them).
    :param bin_dir: PostgreSQL's binaries.
    :param log: the log file.
    :param run_as: the account Patroni and PostgreSQL run as.
    :param tags: Patroni tags, e.g. ``{"nosync": True}`` or ``{"nofailover": True}``.
    :param dcs: bootstrap DCS settings merged over :data:`BOOTSTRAP_DCS`.
    :param patroni: the ``patroni`` executable.
    :param template: a stopped data directory to bootstrap a new cluster from by copying
        (the session template, ~0.1 s) instead of ``initdb`` (~2 s under Patroni).

    :attr:`port` is PostgreSQL's port, :attr:`rest_port` Patroni's REST API. Others
    reach them at :attr:`connect_address` / :attr:`rest_connect_address`, which default
    to the node itself and are set to fault-proxy links by the cluster.
    """

    ready_phrase = "answer on its REST API"
    program = "patroni"
    stop_timeout = 20.0

    def __init__(
        self,
        name: str,
        region: str,
        workdir: Path,
        *,
        scope: str,
        etcd_hosts: Sequence[str],
        bin_dir: Path,
        log: Path,
        run_as: RunAs | None = None,
        tags: Mapping[str, Any] | None = None,
        dcs: Mapping[str, Any] | None = None,
        patroni: str = "patroni",
        template: Path | None = None,
    ) -> None:
        super().__init__(name, log=log, workdir=workdir, run_as=run_as)
        self.template = template
        self.workdir: Path = workdir
        self.region = region
        self.scope = scope
        self.etcd_hosts = list(etcd_hosts)
        self.bin_dir = bin_dir
        self.tags: dict[str, Any] = dict(tags or {})
        self.dcs: dict[str, Any] = merge_settings(BOOTSTRAP_DCS, dcs or {})
        check_timings(self.dcs)
        self.patroni = patroni
        self.rest_port = processes.free_port()
        self.connect_address = self.address
        self.rest_connect_address = self.rest_address

    @property
    def datadir(self) -> Path:
        """PostgreSQL's data directory (Patroni creates it)."""
        return self.workdir / "data"

    @property
    def config_file(self) -> Path:
        """Patroni's configuration file."""
        return self.workdir / "patroni.yml"

    @property
    def rest_address(self) -> str:
        """``host:port`` of Patroni's REST API itself."""
        return f"{self.host}:{self.rest_port}"

    def rest_url(self, path: str = "") -> str:
        """URL of Patroni's REST API itself, e.g. ``rest_url("/cluster")``."""
        return f"http://{self.rest_address}{path}"

    def dsn(self, *, app: str = "drdrill") -> str:
        """Connection string straight to this member's PostgreSQL."""
        return conninfo(self.host, self.port, app=app)

    # --- configuration ----------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """Patroni's configuration for this member, as a dict."""
        trust = [
            "local all all trust",
            "host all all 127.0.0.1/32 trust",
            "host replication all 127.0.0.1/32 trust",
        ]
        sockets = self.workdir / "s"
        bootstrap: dict[str, Any] = {
            "dcs": self.dcs,
            "initdb": ["no-sync", {"encoding": "UTF8"}, {"locale": "C"}],
        }
        if self.template is not None:
            bootstrap["method"] = "drdrill_copy"
            bootstrap["drdrill_copy"] = {
                "command": f"cp -a {self.template} {self.datadir}",
                "no_params": True,
            }
        return {
            "scope": self.scope,
            "name": self.name,
            "log": {"level": "INFO"},
            "restapi": {
                "listen": self.rest_address,
                "connect_address": self.rest_connect_address,
            },
            "etcd3": {"hosts": self.etcd_hosts, "use_proxies": True, "protocol": "http"},
            "bootstrap": bootstrap,
            "postgresql": {
                "listen": self.address,
                "connect_address": self.connect_address,
                "data_dir": str(self.datadir),
                "bin_dir": str(self.bin_dir),
                "pgpass": str(self.workdir / "pgpass"),
                "pg_hba": trust,
                "authentication": {
                    "superuser": {"username": "postgres"},
                    "replication": {"username": "postgres"},
                },
                "parameters": {**LOCAL_PARAMETERS, "unix_socket_directories": str(sockets)},
                "basebackup": [{"checkpoint": "fast"}],
            },
            "tags": {
                "nofailover": False,
                "noloadbalance": False,
                "clonefrom": False,
                "nosync": False,
                **self.tags,
            },
        }

    def prepare(self) -> None:
        """Write the configuration (as JSON, a subset of YAML) before each start attempt."""
        super().prepare()
        sockets = self.workdir / "s"
        sockets.mkdir(exist_ok=True)
        self.config_file.write_text(json.dumps(self.config(), indent=1))
        if self.run_as is not None:
            self.run_as.own(self.workdir)
        self.workdir.chmod(0o700)

    def choose_ports(self) -> None:
        """New PostgreSQL and REST ports: either may be the one another process took."""
        super().choose_ports()
        self.rest_port = processes.free_port()

    def command(self) -> list[str]:
        """``patroni`` on its configuration file."""
        return [self.patroni, str(self.config_file)]

    def check_ready(self) -> str | None:
        """Ready once the REST API answers ``/patroni`` from a socket this process holds."""
        assert self.process is not None
        try:
            status = http_json(self.rest_url("/patroni"))
        except (OSError, ValueError) as err:
            return str(err)
        if not processes.owns_listener(self.process.pid, self.rest_port):
            return "another server answers on its REST port"
        if not isinstance(status, dict) or "state" not in status:
            return f"unexpected /patroni reply {status!r}"
        return None

    def start(self, *, timeout: float = 30.0) -> PatroniMember:
        """Start Patroni and wait until its REST API answers (PostgreSQL may still start)."""
        if self.fenced:
            raise TopologyError(f"{self.name} is fenced: a fenced node is never started again")
        self.launch(timeout=timeout)
        return self

    # --- observation ------------------------------------------------------------------------

    def status(self, *, timeout: float = 1.0) -> dict[str, Any]:
        """Patroni's ``/patroni`` reply: state, role, timeline, ...

        :raises OSError: when the REST API does not answer.
        """
        try:
            reply = http_json(self.rest_url("/patroni"), timeout=timeout)
        except urllib.error.URLError as err:
            raise OSError(str(err)) from err
        return reply if isinstance(reply, dict) else {}


def merge_settings(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``, nested dicts key by key."""
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            merged[key] = merge_settings(old, value)
        else:
            merged[key] = value
    return merged
