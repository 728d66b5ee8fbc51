"""The Docker engine as the Docker backend sees it: the daemon, the images, the run's labels.

Everything the backend creates (containers, networks, volumes) carries the labels of
:func:`run_labels`, so a later run can tell its own leftovers from anyone else's
(:mod:`pytest_drdrill.topology.reaper`). Image names default to the ones
``scripts/build-images`` tags and can be replaced per service, e.g. by the official
``postgres:15`` and ``redis:7`` where a registry is reachable.

The ``docker`` package is imported inside the functions that use it, so the plugin
loads without it.
"""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_drdrill.errors import TopologyError
from pytest_drdrill.servers import processes

if TYPE_CHECKING:
    import docker

#: The services of the Docker backend, each one image.
IMAGE_SERVICES = ("postgres", "redis", "s3", "proxy")

#: What ``scripts/build-images`` tags from ``docker/<service>/Dockerfile``.
DEFAULT_IMAGES: dict[str, str] = {
    "postgres": "drdrill/postgres",
    "redis": "drdrill/redis",
    "s3": "drdrill/s3",
    "proxy": "drdrill/proxy",
}

LABEL_RUN = "io.drdrill.run"
LABEL_OWNER = "io.drdrill.owner"
LABEL_HOST = "io.drdrill.host"
LABEL_TOPOLOGY = "io.drdrill.topology"
LABEL_NODE = "io.drdrill.node"

_BUILD_HINT = (
    "Build them with scripts/docker-engine && scripts/build-images, or name other images "
    "with --drill-docker-images / ini drill_docker_images (e.g. postgres=postgres:15,"
    "redis=redis:7)."
)
_DAEMON_HINT = (
    "Start one with scripts/docker-engine (installs docker.io and starts dockerd), point "
    "DOCKER_HOST at a running daemon, or use --drill-backend=local."
)


def host_id() -> str:
    """The boot id of the machine: owner pids only mean something on the machine that wrote them."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return socket.gethostname()


def run_labels(run_id: str) -> dict[str, str]:
    """Labels for everything one run creates: the run, its owning process and this machine.

    :param run_id: the run's id (the report bundle's name).
    """
    return {LABEL_RUN: run_id, LABEL_OWNER: processes.owner_tag(), LABEL_HOST: host_id()}


@dataclasses.dataclass(frozen=True)
class Images:
    """The image of each service of the Docker backend.

    :param postgres: PostgreSQL 15 with ``postgres``, ``initdb``, ``pg_basebackup`` on PATH
        and an account ``postgres`` (uid 999 in both ``drdrill/postgres`` and ``postgres:15``).
    :param redis: ``redis-server`` on PATH.
    :param s3: moto's ``moto_server`` on PATH.
    :param proxy: the fault proxy (``drdrill/proxy``) or a real Toxiproxy
        (``ghcr.io/shopify/toxiproxy``, recognised by its name).

    .. versionadded:: 0.4
    """

    postgres: str = DEFAULT_IMAGES["postgres"]
    redis: str = DEFAULT_IMAGES["redis"]
    s3: str = DEFAULT_IMAGES["s3"]
    proxy: str = DEFAULT_IMAGES["proxy"]

    @classmethod
    def parse(cls, spec: str | None, *, where: str) -> Images:
        """Read ``service=image`` pairs (comma- or newline-separated); others keep their default.

        :param spec: e.g. ``postgres=postgres:15,redis=redis:7``; ``None`` or empty for defaults.
        :param where: the flag or ini key it came from, for the error message.
        :raises ValueError: naming the bad entry and the valid services.
        """
        chosen: dict[str, str] = {}
        for part in (spec or "").replace("\n", ",").split(","):
            if not part.strip():
                continue
            service, sep, image = (s.strip() for s in part.partition("="))
            if not sep or not image or service not in IMAGE_SERVICES:
                raise ValueError(
                    f"{where}: {part.strip()!r} is not service=image with a service among "
                    f"{', '.join(IMAGE_SERVICES)} (e.g. postgres=postgres:15)"
                )
            chosen[service] = image
        return cls(**chosen)

    def as_dict(self) -> dict[str, str]:
        """Service -> image."""
        return dataclasses.asdict(self)


def connect(timeout: float = 10.0) -> docker.DockerClient:
    """A client of the daemon ``DOCKER_HOST`` names (default: the local socket), checked.

    :param timeout: seconds each API call may take.
    :raises TopologyError: with the remedy, when the ``docker`` package is missing or no
        daemon answers.
    """
    try:
        import docker
        import docker.errors
    except ImportError:
        raise TopologyError(
            "the Docker backend needs the 'docker' Python package: pip install "
            "'pytest-drdrill[docker]' (or pip install docker)"
        ) from None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        raise TopologyError(f"no Docker daemon answers: {exc}. {_DAEMON_HINT}") from None
    return client


def use_ryuk_if_present(client: docker.DockerClient) -> bool:
    """Let testcontainers start Ryuk only when its image is on the machine.

    Ryuk removes a dead run's containers at once; without a registry its image cannot be
    pulled, and the plugin's own reaper (:mod:`.reaper`) removes them at the next run.
    ``TESTCONTAINERS_RYUK_DISABLED`` set by the user wins.

    :returns: whether Ryuk is used.
    """
    import os

    import docker.errors
    from testcontainers.core.config import testcontainers_config

    if "TESTCONTAINERS_RYUK_DISABLED" not in os.environ:
        try:
            client.images.get(testcontainers_config.ryuk_image)
            testcontainers_config.ryuk_disabled = False
        except docker.errors.ImageNotFound:
            testcontainers_config.ryuk_disabled = True
    return not testcontainers_config.ryuk_disabled


def missing_images(client: docker.DockerClient, images: Images) -> list[str]:
    """The images (``service=image``) the daemon does not have."""
    import docker.errors

    missing = []
    for service, image in images.as_dict().items():
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            missing.append(f"{service}={image}")
    return missing


def require_images(client: docker.DockerClient, images: Images) -> None:
    """Check that every image is there; the backend never pulls (no registry here).

    :raises TopologyError: naming the missing images and how to get them.
    """
    missing = missing_images(client, images)
    if missing:
        raise TopologyError(f"the Docker daemon has no image {', '.join(missing)}. {_BUILD_HINT}")


@dataclasses.dataclass(frozen=True)
class BackendChoice:
    """What ``--drill-backend=auto`` chose, and why (shown in the terminal header).

    .. versionadded:: 0.4
    """

    name: str
    reason: str


def choose_backend(images: Images, *, timeout: float = 3.0) -> BackendChoice:
    """Docker when a daemon answers and has every image, else local; with the reason.

    :param images: the images the Docker backend would use.
    :param timeout: how long to wait for the daemon.
    """
    try:
        client = connect(timeout=timeout)
    except TopologyError as exc:
        return BackendChoice("local", f"auto: {str(exc).split('. ')[0]}")
    try:
        version = client.version().get("Version", "?")
        missing = missing_images(client, images)
    finally:
        client.close()
    if missing:
        return BackendChoice(
            "local", f"auto: Docker {version} answers but lacks {', '.join(missing)}"
        )
    return BackendChoice(
        "docker", f"auto: Docker {version} answers and has {', '.join(images.as_dict().values())}"
    )
