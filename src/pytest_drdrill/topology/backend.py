"""Backends: where a run's topologies come from, behind one protocol, and choosing one.

A backend holds what a whole session shares (binaries, template cluster, networks, the
fault proxy) and builds a fresh :class:`~pytest_drdrill.topology._protocol.Topology` per
drill. The fixtures, the Chaos Toolkit control and the schedule drill use only this
protocol, so a new backend is one module with a class that implements it, plus one branch
in :func:`make_backend`.

The backend modules are imported only by :func:`make_backend`, once one is chosen: the
Docker backend needs the ``docker`` package, which a local run must not require.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from pytest_drdrill.proxy.identity import FaultProxyIdentity
    from pytest_drdrill.topology._protocol import Topology
    from pytest_drdrill.topology.docker_engine import BackendChoice
    from pytest_drdrill.topology.sizes import Sizes


@runtime_checkable
class Backend(Protocol):
    """Session resources that build one topology per drill.

    .. versionadded:: 0.4
    """

    #: ``local``, ``docker`` or ``stack``: recorded with every drill.
    name: str

    @property
    def reaped(self) -> Sequence[str]:
        """Leftovers of killed earlier runs that :meth:`start` removed, in words."""
        ...

    @property
    def dataroot(self) -> Path | None:
        """Scratch space the servers' account can reach; ``None`` unless started."""
        ...

    @property
    def versions(self) -> Mapping[str, str]:
        """Versions of the servers the drills run against (``postgresql``, ``redis``…).

        Known once started; the servers' own, not the host's, when they run elsewhere.
        """
        ...

    def fault_proxy(self) -> FaultProxyIdentity:
        """The fault proxy the drills go through, with its version.

        Callable before :meth:`start`, for the run header, which is printed before anything
        starts: it then names the proxy :meth:`start` will use, asking an executable or a
        running server for its version but starting nothing. Once started, the proxy in
        use as its API reports itself; :attr:`versions` then holds its
        :attr:`~pytest_drdrill.proxy.identity.FaultProxyIdentity.label` under
        ``fault proxy``. Never raises: what cannot be read is an ``unknown`` version.

        .. versionadded:: 0.5
        """
        ...

    def start(self) -> Backend:
        """Make the session's resources; return the backend itself.

        :raises DrillError: when they cannot be made (what was made is removed).
        """
        ...

    def topology(self, workdir: Path, *, sentinel: bool = False) -> Topology:
        """A fresh topology for one drill.

        :param sentinel: also start a Redis Sentinel (``--drill-redis-failover=sentinel``).
        :raises TopologyError: when it cannot be built.
        """
        ...

    def close(self) -> None:
        """Remove everything :meth:`start` made; never raises."""
        ...


def make_backend(
    name: str,
    basedir: Path,
    *,
    run_id: str | None = None,
    pg_bin: str | None = None,
    run_as: str | None = None,
    redis_bin: str | None = None,
    images: Mapping[str, str] | None = None,
    stack_file: Path | None = None,
    sizes: Sizes | None = None,
) -> Backend:
    """The backend ``name`` names (``local``, ``docker`` or ``stack``), not yet started.

    :param basedir: a session temp directory for logs.
    :param run_id: the run's id, which labels Docker containers; ``None`` draws one.
    :param pg_bin: ``--drill-pg-bin``: PostgreSQL binaries of the host.
    :param run_as: ``--drill-run-as``: the account that runs servers as root.
    :param redis_bin: ``--drill-redis-bin``: Redis binaries of the host.
    :param images: ``--drill-docker-images``: service -> image of the Docker backend.
    :param stack_file: ``--drill-stack``: the running stack's description (``stack`` only).
    :param sizes: ``--drill-sizes``: server counts (``local`` only; the others build their
        own shape, and the configuration refuses the option for them).

    .. versionadded:: 0.4
    """
    if name == "docker":
        from pytest_drdrill.topology.docker import DockerBackend
        from pytest_drdrill.topology.docker_engine import Images

        return DockerBackend(
            basedir,
            images=Images(**dict(images or {})),
            run_id=run_id,
            pg_bin=pg_bin,
            run_as=run_as,
            redis_bin=redis_bin,
        )
    if name == "stack":
        from pytest_drdrill.topology.stack import StackBackend

        assert stack_file is not None
        return StackBackend(stack_file, basedir)
    from pytest_drdrill.topology.local import LocalBackend

    return LocalBackend(basedir, pg_bin=pg_bin, run_as=run_as, redis_bin=redis_bin, sizes=sizes)


def resolve_auto(images: Mapping[str, str] | None = None) -> BackendChoice:
    """What ``--drill-backend=auto`` runs on: Docker when it can run, else local, and why.

    :param images: the images the Docker backend would use (``--drill-docker-images``).

    .. versionadded:: 0.4
    """
    from pytest_drdrill.topology.docker_engine import Images, choose_backend

    return choose_backend(Images(**dict(images or {})))
