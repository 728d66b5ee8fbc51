"""The Docker backend: the session's networks, fault proxy and template cluster.

The same topology as the local backend, as containers, one network per region
(:mod:`.docker_topology`). The fault proxy runs as a container attached to both regions'
networks, and so is the only way between them.

Per session: the region networks, the fault proxy container, and a template cluster
(``initdb`` in a container, once). Per drill: seven containers (three PostgreSQL, two
Redis, two object stores), removed at teardown. Containers are testcontainers'
:class:`~testcontainers.core.container.DockerContainer`; the region networks are the docker
SDK's, because testcontainers' networks take no subnet and the nodes need fixed addresses.
Everything carries the run's labels; leftovers of a killed run are removed when the next one
starts (:mod:`.reaper`), and by testcontainers' Ryuk as soon as the run dies when its image
is on the machine.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import shutil
import uuid
from typing import TYPE_CHECKING, Any

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.ledger import LEDGER_DDL
from pytest_drdrill.proxy import ProxyClient
from pytest_drdrill.proxy.identity import BUILTIN, FaultProxyIdentity, from_api_version
from pytest_drdrill.servers import processes
from pytest_drdrill.topology.dataroot import make_dataroot, reap_dataroots
from pytest_drdrill.topology.docker_engine import (
    Images,
    connect,
    require_images,
    run_labels,
    use_ryuk_if_present,
)
from pytest_drdrill.topology.docker_networks import RegionNetworks
from pytest_drdrill.topology.docker_nodes import (
    ContainerNode,
    DockerPostgresNode,
    HostTools,
)
from pytest_drdrill.topology.docker_topology import (
    PG_PORT,
    DockerTopology,
    pg_settings,
)
from pytest_drdrill.topology.postgres import PostgresInstall
from pytest_drdrill.topology.redis import RedisInstall

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import docker
    from testcontainers.core.container import DockerContainer


logger = logging.getLogger(__name__)

PROXY_API_PORT = 8474

#: Lines PostgreSQL needs so the host, the proxy and the standbys reach it by TCP.
_HBA = "host all all all trust\nhost replication all all trust\n"


class DockerBackend:
    """Session-wide resources of the Docker backend: networks, fault proxy, template cluster.

    :param basedir: a session temp directory (pytest's) for logs.
    :param images: the image of each service.
    :param run_id: the run's id; every container, network and volume is labelled with it.
    :param pg_bin: host PostgreSQL binaries for backups and restores (``--drill-pg-bin``).
    :param run_as: host account for those tools (``--drill-run-as``).
    :param redis_bin: host Redis binaries for snapshot checks and restores.

    .. versionadded:: 0.4
    """

    name = "docker"

    def __init__(
        self,
        basedir: Path,
        *,
        images: Images | None = None,
        run_id: str | None = None,
        pg_bin: str | None = None,
        run_as: str | None = None,
        redis_bin: str | None = None,
    ) -> None:
        self.basedir = basedir
        self.images = images or Images()
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.prefix = f"drdrill-{uuid.uuid4().hex[:6]}"
        self._pg_bin, self._redis_bin, self._run_as_name = pg_bin, redis_bin, run_as
        self.reaped: list[str] = []
        self.versions: dict[str, str] = {}
        self.dataroot: Path | None = None
        self.client: docker.DockerClient | None = None
        self._networks: RegionNetworks | None = None
        self._proxy_node: ContainerNode | None = None
        self.proxy_address: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        self._proxy_identity: FaultProxyIdentity | None = None

    def fault_proxy(self) -> FaultProxyIdentity:
        """The proxy container: before :meth:`start` its image, after it its API's version."""
        if self._proxy_identity is not None:
            return self._proxy_identity
        image = self.images.proxy
        name = "toxiproxy" if _is_toxiproxy(image) else BUILTIN
        return FaultProxyIdentity(name, "(version read when its container starts)", image)

    # --- session ----------------------------------------------------------------------------

    def start(self) -> DockerBackend:
        """Reap leftovers, check the images, create the networks, template and fault proxy.

        :raises TopologyError: when no daemon answers, an image is missing, or a
            container does not come up; what was created is removed.
        """
        import docker.errors

        from pytest_drdrill.topology.reaper import reap

        t0 = timing.monotonic()
        self.client = connect()
        use_ryuk_if_present(self.client)
        self.labels = run_labels(self.run_id)
        self.tools = HostTools(
            lambda: PostgresInstall.discover(self._pg_bin),
            lambda: RedisInstall.discover(self._redis_bin),
            processes.RunAs.resolve(self._run_as_name),
        )
        try:
            self.reaped = reap(self.client) + reap_dataroots()
            for line in self.reaped:
                logger.warning("removed leftover: %s", line)
            require_images(self.client, self.images)
            self.dataroot = make_dataroot()
            self._networks = RegionNetworks(self.client, self.prefix, self.labels).create()
            with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
                steps = [
                    pool.submit(step)
                    for step in (self._start_proxy, self._make_template, self._redis_version)
                ]
                for step in steps:
                    step.result()
        except docker.errors.DockerException as exc:
            self.close()
            raise TopologyError(f"the Docker daemon refused a request: {exc}") from exc
        except BaseException:
            self.close()
            raise
        self.timings["session"] = timing.monotonic() - t0
        return self

    @property
    def networks(self) -> RegionNetworks:
        """The regions' networks (after :meth:`start`)."""
        if self._networks is None:
            raise TopologyError("the Docker backend is not started: call start() first")
        return self._networks

    @property
    def install(self) -> PostgresInstall:
        """The host's PostgreSQL binaries, which backups and restores run."""
        return self.tools.postgres

    @property
    def redis_install(self) -> RedisInstall:
        """The host's Redis binaries, which snapshot checks and restores run."""
        return self.tools.redis

    @property
    def run_as(self) -> processes.RunAs | None:
        """The host account that runs PostgreSQL tools and restored servers."""
        return self.tools.run_as

    def create_container(
        self,
        image: str,
        *,
        name: str,
        region: str,
        address: str,
        labels: Mapping[str, str] | None = None,
        **options: Any,
    ) -> DockerContainer:
        """A labelled container, attached to ``region``'s network at ``address``, not started.

        A testcontainers :class:`DockerContainer`: the node starts it (creating it) and
        gets the docker SDK's container from it for every later operation. ``command``,
        ``volumes`` (docker SDK form) and ``environment`` go through testcontainers' own
        setters; other options straight to the container's creation.
        """
        from testcontainers.core.container import DockerContainer

        network = self.networks.network(region)
        spec = DockerContainer(image).with_name(name)
        if options.get("command") is not None:
            spec.with_command(options.pop("command"))
        for host, mount in dict(options.pop("volumes", None) or {}).items():
            spec.with_volume_mapping(host, mount["bind"], mount.get("mode", "ro"))
        spec.with_envs(**dict(options.pop("environment", None) or {}))
        return spec.with_kwargs(
            labels={**self.labels, **(labels or {})},
            network=network.name,
            networking_config=self.networks.endpoint(region, address),
            **options,
        )

    def own_pg(self, path: Path) -> None:
        """Give ``path`` to the PostgreSQL image's account, which the servers run as."""
        processes.RunAs(self.pg_user, self._pg_ids[0], self._pg_ids[1]).own(path)

    def _make_template(self) -> None:
        """``initdb`` once in a container, with the drill tables and TCP access for all."""
        assert self.client is not None and self.dataroot is not None
        image = self.images.postgres
        out = self.client.containers.run(
            image, entrypoint=["sh", "-c", "id -u postgres; id -g postgres; postgres --version"],
            remove=True, labels=self.labels,
        )  # fmt: skip
        lines = out.decode(errors="replace").split("\n")
        self.pg_user = "postgres"
        self._pg_ids = (int(lines[0]), int(lines[1]))
        found = re.search(r"\(PostgreSQL\) (\S+)", out.decode(errors="replace"))
        self.versions["postgresql"] = found.group(1) if found else "unknown"
        home = self.dataroot / "template"
        home.mkdir(mode=0o700)
        self.own_pg(home)
        datadir = home / "data"
        script = (
            f"initdb --no-sync -A trust -U postgres -E UTF8 --locale=C -D {datadir} >/dev/null && "
            f"printf '{_HBA}' >> {datadir}/pg_hba.conf && "
            f'exec postgres -D {datadir} "$@"'
        )
        address = self.networks.allocate("primary")
        container = self.create_container(
            image, name=f"{self.prefix}-template", region="primary", address=address,
            user=self.pg_user, entrypoint=["sh", "-c", script, "template"],
            command=pg_settings(), volumes={str(home): {"bind": str(home), "mode": "rw"}},
            stop_signal="SIGINT",
        )  # fmt: skip
        node = DockerPostgresNode(
            "template", "primary", container, datadir=datadir, tools=self.tools,
            network=self.networks.network("primary"), host=address, port=PG_PORT,
            log=self.basedir / "template.log",
        )  # fmt: skip
        try:
            node.start()
            node.wait_accepting(timeout=120)
            with psycopg.connect(node.dsn(), autocommit=True) as conn:
                conn.execute(LEDGER_DDL)
                conn.execute("CHECKPOINT")
            node.stop()  # a fast shutdown: the template must be clean
        finally:
            node.cleanup()
        self.template = datadir

    def _redis_version(self) -> None:
        assert self.client is not None
        out = self.client.containers.run(
            self.images.redis, entrypoint=["redis-server", "--version"], remove=True,
            labels=self.labels,
        )  # fmt: skip
        found = re.search(r"v=(\S+)", out.decode(errors="replace"))
        self.versions["redis"] = found.group(1) if found else "unknown"

    def _start_proxy(self) -> None:
        """The fault proxy as a container on every region's network: their only way across."""
        assert self.client is not None
        image = self.images.proxy
        options: dict[str, Any] = {"command": ["--listen", f"0.0.0.0:{PROXY_API_PORT}"]}
        if _is_toxiproxy(image):
            options = {"command": ["-host=0.0.0.0", f"-port={PROXY_API_PORT}"]}
        addresses = {region: self.networks.allocate(region) for region in self.networks.networks}
        container = self.create_container(
            image, name=f"{self.prefix}-proxy", region="primary", address=addresses["primary"],
            **options,
        )  # fmt: skip
        node = ContainerNode(
            "fault-proxy", "primary", container, network=self.networks.network("primary"),
            host=addresses["primary"], port=PROXY_API_PORT, log=self.basedir / "proxy.log",
        )  # fmt: skip
        self._proxy_node = node
        self.proxy_address = addresses
        node.start()
        # Listening on 0.0.0.0, it serves the other networks as soon as it is attached.
        for region, address in addresses.items():
            if region != "primary":
                self.networks.network(region).connect(node.container, ipv4_address=address)
        self.proxy = ProxyClient(f"http://{node.address}")

        def check() -> str | None:
            try:
                self._proxy_identity = from_api_version(self.proxy.version(), where=image)
                self.versions["fault proxy"] = self._proxy_identity.label
            except Exception as exc:  # any failure means: not ready yet
                return str(exc)
            return None

        node.wait_ready(check, timeout=30, what="serving its API")

    def topology(self, workdir: Path, *, sentinel: bool = False) -> DockerTopology:
        """Build a fresh topology for one drill.

        :param sentinel: a Redis Sentinel; not available on this backend yet.
        :raises TopologyError: when called before :meth:`start`, or with ``sentinel``.
        """
        if self.dataroot is None or self._networks is None:
            raise TopologyError("the Docker backend is not started: call start() first")
        if sentinel:
            raise TopologyError(
                "--drill-redis-failover=sentinel is not available on the Docker backend yet; "
                "use --drill-redis-failover=orchestrator or --drill-backend=local"
            )
        return DockerTopology.start_in(self, workdir)

    def close(self) -> None:
        """Remove the proxy, the networks and the data root; never raises."""
        if self._proxy_node is not None:
            self._proxy_node.cleanup()
            self._proxy_node = None
        if self._networks is not None:
            self._networks.remove()
            self._networks = None
        if self.dataroot is not None:
            shutil.rmtree(self.dataroot, ignore_errors=True)
            self.dataroot = None
        if self.client is not None:
            self.client.close()
            self.client = None


def _is_toxiproxy(image: str) -> bool:
    """Whether the proxy image is Toxiproxy's, which takes Go-style flags, not the built-in's."""
    return "toxiproxy" in image.rsplit("/", 1)[-1]
