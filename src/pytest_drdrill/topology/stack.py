"""The running-stack backend (``--drill-backend=stack``): drills on a stack started by others.

A YAML file (``--drill-stack`` / ``drill_stack``) describes the stack: where each node
answers, the fault proxy (Toxiproxy's API) that carries every path, the names of the
proxies that are the paths, and the faults the stack's owners allow. The backend starts
and stops nothing. It reads the stack's current shape (which node each endpoint leads
to) from the proxy, empties the drills' own ledgers, and injects only what the file
allows: any other fault is refused with an error naming the file, the fault and the key
to add. ``fixtures/stack-compose.yaml`` describes the stack of ``docker-compose.yml``.

This module holds the session's side (:class:`StackBackend`); the topology one drill sees
is :mod:`.stack_topology`, over the paths and nodes of :mod:`.stack_nodes`.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_drdrill.errors import TopologyError
from pytest_drdrill.topology.stack_file import StackFileError, StackSpec
from pytest_drdrill.topology.stack_nodes import GuardedProxy
from pytest_drdrill.topology.stack_topology import StackTopology

if TYPE_CHECKING:
    from pytest_drdrill.proxy.identity import FaultProxyIdentity


class StackBackend:
    """Session resources of the running-stack backend: its file and its fault proxy.

    :param stack_file: the stack's description (``--drill-stack`` / ``drill_stack``).
    :param basedir: a session temp directory.

    .. versionadded:: 0.4
    """

    name = "stack"

    def __init__(self, stack_file: Path, basedir: Path) -> None:
        self.stack_file = stack_file
        self.basedir = basedir
        self.reaped: list[str] = []
        self.versions: dict[str, str] = {}
        self.dataroot: Path | None = None
        self._proxy_identity: FaultProxyIdentity | None = None

    def fault_proxy(self) -> FaultProxyIdentity:
        """The stack's own fault proxy, as its API names its version."""
        from pytest_drdrill.proxy import identity

        if self._proxy_identity is not None:
            return self._proxy_identity
        try:
            spec = StackSpec.load(self.stack_file)
        except (TopologyError, OSError) as exc:  # start() reports it; the header must not fail
            return identity.FaultProxyIdentity("toxiproxy", f"unknown ({exc})", "")
        return identity.of_url(spec.proxy_api)

    def start(self) -> StackBackend:
        """Read the stack file and check that the fault proxy answers.

        :raises StackFileError: when the file is bad.
        :raises ProxyError: when the fault proxy does not answer.
        """
        self.spec = StackSpec.load(self.stack_file)
        self.proxy = GuardedProxy(self.spec)
        from pytest_drdrill.proxy.identity import from_api_version

        self._proxy_identity = from_api_version(self.proxy.version(), where=self.spec.proxy_api)
        self.versions["fault proxy"] = self._proxy_identity.label
        self.dataroot = Path(tempfile.mkdtemp(prefix=f"drdrill-stack-{uuid.uuid4().hex[:6]}-"))
        return self

    def topology(
        self, workdir: Path, *, sentinel: bool = False, patroni: bool = False
    ) -> StackTopology:
        """The stack, ready for one drill: ledgers emptied, current primaries read.

        :param patroni: the drill runs under ``--drill-postgres-failover=patroni``: the
            file must name the team's Patroni cluster.
        :raises TopologyError: with ``sentinel`` (the stack decides its own failover), or
            when the file's ``patroni:`` section and the HA stack chosen disagree.
        """
        if self.dataroot is None:
            raise TopologyError("the stack backend is not started: call start() first")
        if patroni and self.spec.patroni is None:
            raise StackFileError(
                f"--drill-postgres-failover=patroni on the stack backend drills the team's "
                f"Patroni: stack file {self.stack_file} has no patroni: section; add "
                f"patroni.rest with each postgres node's REST URL (and patroni.haproxy)"
            )
        if not patroni and self.spec.patroni is not None:
            raise TopologyError(
                f"stack file {self.stack_file} names a Patroni cluster (patroni:), which "
                f"decides its own failovers; run with --drill-postgres-failover=patroni so "
                f"the reference orchestrator does not fail over beside it"
            )
        if sentinel:
            raise TopologyError(
                "--drill-redis-failover=sentinel does not apply to the stack backend: the "
                "stack runs its own failover, or the reference orchestrator does"
            )
        workdir.mkdir(parents=True, exist_ok=True)
        return StackTopology.attach(self.spec, workdir, self.dataroot)

    def close(self) -> None:
        """Nothing of the stack is stopped; only the scratch directory goes."""
        import shutil

        if self.dataroot is not None:
            shutil.rmtree(self.dataroot, ignore_errors=True)
            self.dataroot = None
