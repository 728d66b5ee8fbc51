"""Remove the containers, networks and volumes that a killed run left behind.

Each of them carries the labels of :func:`~pytest_drdrill.topology.docker_engine.run_labels`:
the owning pytest process (pid and start time) and the machine's boot id. A leftover is
one whose owner no longer runs on this machine; what belongs to a live run, or to another
machine sharing the daemon, is never touched.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pytest_drdrill.servers import processes
from pytest_drdrill.topology.docker_engine import LABEL_HOST, LABEL_OWNER, LABEL_RUN, host_id

if TYPE_CHECKING:
    import docker

logger = logging.getLogger(__name__)


def _dead(labels: dict[str, str] | None, here: str) -> bool:
    labels = labels or {}
    owner = labels.get(LABEL_OWNER)
    return owner is not None and labels.get(LABEL_HOST) == here and not processes.owner_alive(owner)


def reap(client: docker.DockerClient) -> list[str]:
    """Remove every labelled container, network and volume whose owning run is dead.

    Containers go first (with their anonymous volumes), then the networks they were
    attached to, then labelled volumes. Failures are logged and skipped: reaping must
    never stop a run from starting.

    :returns: one line per object removed, for the log and the terminal.

    .. versionadded:: 0.4
    """
    import docker.errors

    here = host_id()
    removed: list[str] = []
    owned = {"label": LABEL_OWNER}
    for container in client.containers.list(all=True, filters=owned):
        if _dead(container.labels, here):
            try:
                container.remove(force=True, v=True)
            except docker.errors.APIError:
                logger.exception("could not remove leftover container %s", container.name)
                continue
            removed.append(_line("container", container.name, container.labels))
    for network in client.networks.list(filters=owned):
        labels = network.attrs.get("Labels") or {}
        if _dead(labels, here):
            try:
                network.remove()
            except docker.errors.APIError:
                logger.exception("could not remove leftover network %s", network.name)
                continue
            removed.append(_line("network", network.name, labels))
    for volume in client.volumes.list(filters=owned):
        labels = volume.attrs.get("Labels") or {}
        if _dead(labels, here):
            try:
                volume.remove(force=True)
            except docker.errors.APIError:
                logger.exception("could not remove leftover volume %s", volume.name)
                continue
            removed.append(_line("volume", volume.name, labels))
    return removed


def _line(kind: str, name: str | None, labels: dict[str, str]) -> str:
    return (
        f"Docker {kind} {name} left by dead run {labels.get(LABEL_RUN, '?')} "
        f"(owner {labels.get(LABEL_OWNER)})"
    )
