"""Containers a team already starts with testcontainers, handed to a drill as its nodes.

A team whose fixtures start PostgreSQL, Redis and an object store with testcontainers
drills *those* containers: :func:`adopt_containers` puts the fault proxy in front of
them (the built-in one, a child process of this one), describes them as a running
stack, and gives back the stack backend the drill runs on. The team's ``conftest.py``
overrides the plugin's ``drdrill_backend`` fixture with it::

    @pytest.fixture(scope="session")
    def drdrill_backend(postgres, redis, objects, tmp_path_factory):  # the team's containers
        nodes = {
            "pg-primary": AdoptedNode(postgres, "postgres", 5432),
            "redis-primary": AdoptedNode(redis, "redis", 6379),
            "s3-primary": AdoptedNode(objects, "s3", 9000),
        }
        with adopt_containers(nodes, tmp_path_factory.mktemp("adopted")) as backend:
            yield backend

Clients reach each container through its own path of the fault proxy, so partitions,
latency and the other toxics reach them; node faults (freeze, stop, crash) act on the
container itself with the docker SDK, as on any stack whose file names its containers.
Replication between the team's containers is theirs and does not pass the proxy.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any

import yaml

from pytest_drdrill.errors import TopologyError
from pytest_drdrill.proxy.process import ProxyServer
from pytest_drdrill.topology._protocol import SERVICES
from pytest_drdrill.topology.stack import StackBackend

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from pathlib import Path

#: The faults an adopted stack allows unless told otherwise: every proxy fault, and the
#: node faults (the containers are the test's own). Crash and stop still need
#: ``--drill-allow-destructive``, as on every stack.
DEFAULT_FAULTS = ("cut", "latency", "bandwidth", "timeout", "reset_peer", "freeze", "stop", "crash")


@dataclasses.dataclass(frozen=True)
class AdoptedNode:
    """One of the team's started containers, as a drill node.

    :param container: a started testcontainers container (``DockerContainer`` or one of
        its subclasses, e.g. ``PostgresContainer``).
    :param service: ``postgres``, ``redis`` or ``s3``.
    :param port: the service's port inside the container (published by testcontainers).
    :param region: ``primary`` or ``dr``.
    :param serving: whether clients reach the service through this node (its primary);
        by default the first node of each service.

    .. versionadded:: 0.7
    """

    container: Any
    service: str
    port: int
    region: str = "primary"
    serving: bool | None = None


def _check(nodes: Mapping[str, AdoptedNode]) -> None:
    missing = [s for s in SERVICES if not any(n.service == s for n in nodes.values())]
    for name, node in nodes.items():
        if node.service not in SERVICES:
            raise TopologyError(
                f"adopt_containers: node {name!r} has service {node.service!r}; give one of "
                f"{', '.join(SERVICES)}"
            )
        if node.region not in ("primary", "dr"):
            raise TopologyError(
                f"adopt_containers: node {name!r} has region {node.region!r}; give primary or dr"
            )
    if missing:
        raise TopologyError(
            f"adopt_containers: no node serves {', '.join(missing)}; a drill measures every "
            f"service of its topology: adopt a container for each of {', '.join(SERVICES)}"
        )


def _serving(nodes: Mapping[str, AdoptedNode], service: str) -> str:
    named = [n for n, node in nodes.items() if node.service == service]
    chosen = [n for n in named if nodes[n].serving]
    return chosen[0] if chosen else named[0]


@contextlib.contextmanager
def adopt_containers(
    nodes: Mapping[str, AdoptedNode],
    workdir: Path,
    *,
    allowed_faults: Sequence[str] = DEFAULT_FAULTS,
    sync_standbys: Sequence[str] = (),
    bucket: str = "drdrill-objects",
    name: str = "adopted testcontainers",
) -> Iterator[StackBackend]:
    """The team's containers behind a fault proxy, as a started stack backend.

    Writes the stack file it drills to ``workdir/stack.yaml`` (readable evidence of what
    was drilled); the proxy stops and the backend closes on exit. The containers are
    left alone: they are the team's fixtures' to stop.

    :raises TopologyError: for a node that names no known service or region, or when a
        service has no node.
    """
    _check(nodes)
    workdir.mkdir(parents=True, exist_ok=True)
    with ProxyServer(workdir / "proxy") as proxy:
        client = proxy.client()
        described: dict[str, dict[str, str]] = {}
        paths: dict[str, str] = {}
        listeners: dict[str, str] = {}
        for node_name, node in nodes.items():
            host = node.container.get_container_host_ip()
            host = "127.0.0.1" if host == "localhost" else host  # never ::1 by surprise
            address = f"{host}:{node.container.get_exposed_port(node.port)}"
            path = client.create(f"to-{node_name}", listen="127.0.0.1:0", upstream=address)
            paths[node_name], listeners[node_name] = path.name, path.listen
            described[node_name] = {
                "service": node.service, "region": node.region, "address": address,
                "upstream": address, "container": node.container.get_wrapped_container().name,
            }  # fmt: skip
        endpoints = {}
        for service in SERVICES:
            serving = _serving(nodes, service)
            endpoints[service] = client.create(
                service, listen="127.0.0.1:0", upstream=listeners[serving]
            ).name
        stack_file = workdir / "stack.yaml"
        stack_file.write_text(
            yaml.safe_dump(
                {
                    "name": name,
                    "proxy": {"api": proxy.url, "host": "127.0.0.1"},
                    "bucket": bucket,
                    "nodes": described,
                    "sync_standbys": list(sync_standbys),
                    "paths": {"endpoints": endpoints, "client_paths": paths, "replication": {}},
                    "allowed_faults": list(allowed_faults),
                },
                sort_keys=False,
            )
        )
        backend = StackBackend(stack_file, workdir)
        backend.start()
        try:
            yield backend
        finally:
            backend.close()
