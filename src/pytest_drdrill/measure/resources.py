"""What the topology costs to run: processes and memory of each server, measured.

Memory is the proportional set size (PSS) from the kernel, through psutil: shared pages
(PostgreSQL's shared buffers, libraries) are split among the processes that share them,
so the sum over a server's processes does not count them twice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pytest_drdrill.results import NodeResources

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pytest_drdrill.topology._protocol import ServiceNode

logger = logging.getLogger(__name__)


def sample_resources(nodes: Mapping[str, ServiceNode]) -> tuple[NodeResources, ...]:
    """Measure every running node's processes and PSS; stopped nodes are left out.

    A process that exits while it is being measured is skipped, not an error.

    .. versionadded:: 0.3
    """
    import psutil

    sampled = []
    for name, node in nodes.items():
        pss = 0
        processes = 0
        for pid in node.pids():
            try:
                pss += psutil.Process(pid).memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            except psutil.AccessDenied:
                logger.warning("no permission to read the memory of pid %d of %s", pid, name)
                continue
            processes += 1
        if processes:
            sampled.append(NodeResources(name, processes, pss))
    return tuple(sampled)
