"""Servers of the Docker backend: one container per node, at a fixed address in its region.

A node's process-level operations map to the container's: a crash is ``docker kill``
(SIGKILL to the container's init, so every process of it dies at once), a freeze is
``docker pause`` (the cgroup freezer: the server keeps its sockets and answers nothing),
a clean stop is ``docker stop`` with the server's own fast-shutdown signal. Docker-level
faults add a restart and a disconnection from the network (:mod:`pytest_drdrill.faults.docker`).

Each container is attached with a static IP, so a restarted or reconnected node comes
back at the address every proxy entry points to. The host reaches that address directly
(Linux bridge networks are routed from the host), as the clients and the reference
monitor do on the local backend.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import redis

from pytest_drdrill import timing
from pytest_drdrill.clients.redis import sync_client
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.servers import processes
from pytest_drdrill.topology.postgres import conninfo

if TYPE_CHECKING:
    from collections.abc import Callable

    from docker.models.containers import Container
    from docker.models.networks import Network
    from testcontainers.core.container import DockerContainer

    from pytest_drdrill.servers.processes import RunAs
    from pytest_drdrill.topology.postgres import PostgresInstall
    from pytest_drdrill.topology.redis import RedisInstall

logger = logging.getLogger(__name__)

#: Lines of a container's log attached to an error.
_LOG_LINES = 40


class HostTools:
    """Binaries of the host that backup and restore code runs against the containers.

    Backups (``pg_basebackup``, ``pg_amcheck``, ``redis-check-rdb``) and restores into
    isolated servers are the same code on every backend, and run on the host; the
    containers' data directories are mounted at the same paths on both sides.

    :param find_postgres: returns the PostgreSQL binaries (raises when missing).
    :param find_redis: returns the Redis binaries (raises when missing).
    :param run_as: the account that runs host-side PostgreSQL tools.
    """

    def __init__(
        self,
        find_postgres: Callable[[], PostgresInstall],
        find_redis: Callable[[], RedisInstall],
        run_as: RunAs | None,
    ) -> None:
        self._find_postgres = find_postgres
        self._find_redis = find_redis
        self.run_as = run_as
        self._postgres: PostgresInstall | None = None
        self._redis: RedisInstall | None = None

    @property
    def postgres(self) -> PostgresInstall:
        """The host's PostgreSQL binaries, found on first use."""
        if self._postgres is None:
            self._postgres = self._find_postgres()
        return self._postgres

    @property
    def redis(self) -> RedisInstall:
        """The host's Redis binaries, found on first use."""
        if self._redis is None:
            self._redis = self._find_redis()
        return self._redis


class ContainerNode:
    """A server of the topology running in one container.

    :param name: the node's name, e.g. ``pg-primary``.
    :param region: ``primary`` or ``dr``.
    :param container: the container, as testcontainers describes it; not started yet.
    :param network: the region's network it is attached to.
    :param host: its static IP on that network.
    :param port: the port the server listens on inside the container.
    :param log: the host file its output is written to when it is removed.

    .. versionadded:: 0.4
    """

    stop_timeout = 10.0

    def __init__(
        self,
        name: str,
        region: str,
        container: DockerContainer,
        *,
        network: Network,
        host: str,
        port: int,
        log: Path,
    ) -> None:
        self.name = name
        self.region = region
        self.spec = container
        self._created = False
        self.network = network
        self.host = host
        self.port = port
        self.log = log
        self.fenced = False
        self.disconnected = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.host}:{self.port} {self.container_name}>"

    @property
    def started(self) -> bool:
        """Whether the container exists (testcontainers creates it on the first start)."""
        return self._created

    @property
    def container(self) -> Container:
        """The docker SDK's container, for every operation after the first start."""
        if not self._created:
            raise TopologyError(f"{self.name}'s container is not started yet")
        return self.spec.get_wrapped_container()

    @property
    def container_name(self) -> str:
        """The container's name, or ``(not started)``."""
        return str(self.container.name) if self.started else "(not started)"

    @property
    def address(self) -> str:
        """``host:port`` of the server itself, as a proxy upstream."""
        return f"{self.host}:{self.port}"

    # --- running ----------------------------------------------------------------------------

    def status(self) -> str:
        """The container's state: ``created``, ``running``, ``paused``, ``exited``, ``gone``."""
        import docker.errors

        if not self.started:
            return "created"
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return "gone"
        return str(self.container.status)

    def start(self) -> None:
        """Start the container (it must exist); a fenced node is never started again.

        :raises TopologyError: when fenced.
        """
        if self.fenced:
            raise TopologyError(f"{self.name} is fenced: a fenced node is never started again")
        if self.started:
            self.container.start()
        else:
            self.spec.start()  # creates it: labels, network, address, mounts as configured
            self._created = True

    def is_running(self) -> bool:
        """Whether the container runs (a paused one counts as running)."""
        return self.status() in ("running", "paused")

    def pids(self) -> list[int]:
        """The server's processes as the host sees them; empty when it is not running."""
        if not self.is_running():
            return []
        pid = int(self.container.attrs.get("State", {}).get("Pid") or 0)
        return processes.process_tree(pid) if pid > 0 else []

    def crash(self) -> None:
        """``docker kill``: every process of the container dies at once, as a power loss."""
        import docker.errors

        if self.status() not in ("running", "paused", "restarting"):
            return
        try:
            self.container.kill()
        except docker.errors.APIError as exc:
            if self.status() in ("running", "paused"):
                raise TopologyError(f"could not kill {self.name}'s container: {exc}") from exc
        self._wait_stopped(timeout=10.0)

    def freeze(self) -> None:
        """``docker pause``: the cgroup freezer stops every process; sockets stay open."""
        if self.status() == "running":
            self.container.pause()

    def thaw(self) -> None:
        """``docker unpause`` what :meth:`freeze` paused."""
        if self.status() == "paused":
            self.container.unpause()

    def stop(self) -> None:
        """``docker stop``: the server's shutdown signal, SIGKILL after :attr:`stop_timeout`."""
        self.thaw()
        if self.status() == "running":
            self.container.stop(timeout=round(self.stop_timeout))
        self._wait_stopped(timeout=self.stop_timeout + 5.0)

    def fence(self) -> None:
        """Make sure this node never accepts writes again: kill it and refuse restarts."""
        self.fenced = True
        self.crash()

    def restart(self) -> None:
        """``docker restart``: a clean stop, then the same container starts again.

        :raises TopologyError: when the node is fenced.
        """
        if self.fenced:
            raise TopologyError(f"{self.name} is fenced: a fenced node is never started again")
        self.thaw()
        self.container.restart(timeout=round(self.stop_timeout))

    def disconnect(self) -> None:
        """Detach the container from its region's network: nothing reaches it or leaves it."""
        if not self.disconnected:
            self.network.disconnect(self.container, force=True)
            self.disconnected = True

    def reconnect(self) -> None:
        """Attach it again, at the same address."""
        if self.disconnected:
            self.network.connect(self.container, ipv4_address=self.host)
            self.disconnected = False

    def _wait_stopped(self, timeout: float) -> None:
        deadline = timing.monotonic() + timeout
        while self.status() not in ("exited", "dead", "created", "gone"):
            if timing.monotonic() > deadline:
                raise TopologyError(f"{self.name}'s container did not stop within {timeout:.0f}s")
            timing.sleep(0.01)

    # --- logs and removal -------------------------------------------------------------------

    def logs(self, lines: int = _LOG_LINES) -> str:
        """The last ``lines`` lines the server wrote (stdout and stderr)."""
        import docker.errors

        if not self.started:
            return "(not started)"
        try:
            return bytes(self.container.logs(tail=lines)).decode(errors="replace").rstrip()
        except docker.errors.APIError as exc:
            return f"(logs unavailable: {exc})"

    def fail(self, message: str) -> TopologyError:
        """A :class:`TopologyError` for this node with its container's last log lines attached."""
        exc = TopologyError(f"{self.name} ({self.container_name}): {message}")
        exc.add_note(f"last lines of {self.container_name}'s log:\n{self.logs()}")
        return exc

    def cleanup(self) -> None:
        """Save the container's log to :attr:`log`, then remove it; never raises."""
        import docker.errors

        if self.started:
            try:
                self.log.write_bytes(bytes(self.container.logs()))
            except (OSError, docker.errors.APIError):
                logger.debug("could not save the log of %s", self.name, exc_info=True)
        try:
            self.spec.stop(force=True, delete_volume=True)  # removes it, closes its client
        except docker.errors.NotFound:
            pass
        except Exception:  # cleanup must not hide the test's own failure
            logger.exception("removing the container of %s failed", self.name)

    def wait_ready(self, check: Callable[[], object], *, timeout: float, what: str) -> None:
        """Poll ``check`` until it returns ``None`` (ready) or its container exits.

        :param check: returns ``None`` when ready, else why not.
        :raises TopologyError: with the container's log, on exit or timeout.
        """
        deadline = timing.monotonic() + timeout
        last: object = "no check ran"
        while timing.monotonic() < deadline:
            state = self.status()
            if state not in ("running", "created", "restarting"):
                code = self.container.attrs.get("State", {}).get("ExitCode")
                raise self.fail(f"container {state} (exit {code}) before {what}")
            last = check()
            if last is None:
                return
            timing.sleep(0.02)
        raise self.fail(f"not {what} within {timeout:.0f}s: {last}")


class DockerPostgresNode(ContainerNode):
    """A PostgreSQL server in a container; its data directory is mounted from the host.

    :param datadir: the data directory, the same path on the host and in the container.
    :param tools: the host's binaries, for backups and restores of this node.

    .. versionadded:: 0.4
    """

    def __init__(
        self, name: str, region: str, container: DockerContainer, *, datadir: Path,
        tools: HostTools,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(name, region, container, **kwargs)
        self.datadir = datadir
        self.tools = tools

    @property
    def install(self) -> PostgresInstall:
        """The host's PostgreSQL binaries (``pg_basebackup``, ``pg_amcheck`` of backups)."""
        return self.tools.postgres

    @property
    def run_as(self) -> RunAs | None:
        """The host account that runs PostgreSQL tools against this node."""
        return self.tools.run_as

    def dsn(self, *, app: str = "drdrill") -> str:
        """Connection string to this node directly (not through any endpoint)."""
        return conninfo(self.host, self.port, app=app)

    def wait_accepting(self, timeout: float = 60.0) -> None:
        """Wait until this node answers queries from its own data directory."""

        def check() -> str | None:
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2, autocommit=True) as conn:
                    row = conn.execute("SELECT current_setting('data_directory')").fetchone()
            except psycopg.OperationalError as exc:
                return str(exc).strip()
            if row is not None and Path(str(row[0])) == self.datadir:
                return None
            return f"another server answers (data directory {row[0] if row else '?'})"

        self.wait_ready(check, timeout=timeout, what="accepting connections")


class DockerRedisNode(ContainerNode):
    """A Redis server in a container; its working directory is mounted from the host.

    :param workdir: where it writes its RDB file, the same path on both sides.
    :param tools: the host's binaries (``redis-check-rdb`` for snapshots).

    .. versionadded:: 0.4
    """

    def __init__(
        self, name: str, region: str, container: DockerContainer, *, workdir: Path,
        tools: HostTools,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(name, region, container, **kwargs)
        self.workdir = workdir
        self.tools = tools

    @property
    def install(self) -> RedisInstall:
        """The host's Redis binaries (``redis-check-rdb`` of snapshots)."""
        return self.tools.redis

    def url(self) -> str:
        """A ``redis://`` URL straight to this node (not through any endpoint)."""
        return f"redis://{self.host}:{self.port}/0"

    def client(self, *, timeout: float = 2.0) -> redis.Redis:
        """A blocking client straight to this node, bounded by ``timeout``; close it after use."""
        return sync_client(self.url(), timeout=timeout)

    def _info(self, section: str) -> dict[str, Any] | str:
        try:
            with self.client(timeout=1.0) as client:
                return dict(client.info(section))
        except redis.RedisError as exc:
            return str(exc)

    def wait_answering(self, timeout: float = 30.0) -> None:
        """Wait until the server answers."""

        def check() -> object:
            info = self._info("server")
            return None if isinstance(info, dict) else info

        self.wait_ready(check, timeout=timeout, what="answering")

    def wait_replicating(self, timeout: float = 15.0) -> None:
        """Wait until this replica reports ``master_link_status:up``."""

        def check() -> object:
            info = self._info("replication")
            if isinstance(info, dict) and info.get("master_link_status") == "up":
                return None
            return info if isinstance(info, str) else f"link {info.get('master_link_status')}"

        self.wait_ready(check, timeout=timeout, what="replicating")


class DockerS3Node(ContainerNode):
    """An in-memory S3 store (moto's server) in a container: a kill loses its objects.

    .. versionadded:: 0.4
    """

    @property
    def endpoint_url(self) -> str:
        """``http://host:port`` straight to this store (not through any link)."""
        return f"http://{self.host}:{self.port}"

    def wait_answering(self, timeout: float = 60.0) -> None:
        """Wait until the store answers S3 requests."""
        from pytest_drdrill.topology.s3 import _answers_s3

        self.wait_ready(
            lambda: _answers_s3(self.host, self.port, 1.0), timeout=timeout, what="answering S3"
        )
