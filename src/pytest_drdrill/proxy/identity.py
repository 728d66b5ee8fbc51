"""Which fault proxy carries a run's paths, and its version, as the run header and reports say.

A run's figures depend on the proxy in the data path as much as on the servers: the
built-in proxy and a real Toxiproxy add different latency and implement toxics apart. So
the proxy is named with its version, like PostgreSQL and Redis, in the header line and in
``run.versions`` of drill.json. The header is printed before anything starts, so a
backend can also say which proxy it *will* use: :func:`of_program` asks an executable for
its version without starting a server, :func:`of_url` asks a running one over its API.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess

from pytest_drdrill._version import __version__
from pytest_drdrill.errors import ProxyError

__all__ = ["BUILTIN", "TOXIPROXY_SERVER", "FaultProxyIdentity", "builtin", "of_program", "of_url"]

#: Names a run records: the proxy this package ships, and Toxiproxy's server.
BUILTIN = "drdrill-proxy"
TOXIPROXY_SERVER = "toxiproxy-server"
#: The built-in proxy's API answers ``/version`` with the package version and this suffix.
_BUILTIN_SUFFIX = "+drdrill"


@dataclasses.dataclass(frozen=True)
class FaultProxyIdentity:
    """A fault proxy as a run reports it.

    .. versionadded:: 0.5

    :param name: :data:`BUILTIN`, :data:`TOXIPROXY_SERVER`, or ``toxiproxy`` for a server
        reached by URL that is not the built-in one.
    :param version: its version, or ``unknown`` with the reason when it could not be read.
    :param where: the executable, URL or image it is, for the header.
    """

    name: str
    version: str
    where: str = ""

    @property
    def label(self) -> str:
        """``name version``: the value recorded under ``fault proxy`` in ``run.versions``."""
        return f"{self.name} {self.version}"

    def __str__(self) -> str:
        return f"{self.label} ({self.where})" if self.where else self.label


def builtin(where: str = "") -> FaultProxyIdentity:
    """The built-in proxy of this installation: its version is the package's."""
    return FaultProxyIdentity(BUILTIN, __version__, where)


def from_api_version(text: str, *, name: str | None = None, where: str = "") -> FaultProxyIdentity:
    """The proxy whose ``/version`` answered ``text``.

    :param name: what was started, when known (an executable's name); else it is read
        from the answer, which the built-in proxy marks with ``+drdrill``.
    """
    if text.endswith(_BUILTIN_SUFFIX):
        return FaultProxyIdentity(name or BUILTIN, text.removesuffix(_BUILTIN_SUFFIX), where)
    return FaultProxyIdentity(name or "toxiproxy", text, where)


def of_url(url: str, *, timeout: float = 2.0) -> FaultProxyIdentity:
    """The running proxy at ``url``, as its API names its version.

    Never raises: a proxy that does not answer is named with an ``unknown`` version and
    the reason, since this is for the header; starting the backend reports the failure.
    """
    from pytest_drdrill.proxy.client import ProxyClient

    try:
        text = ProxyClient(url, timeout=timeout).version()
    except ProxyError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return FaultProxyIdentity("toxiproxy", f"unknown ({first})", url)
    return from_api_version(text, where=url)


def of_program(path: str, *, timeout: float = 5.0) -> FaultProxyIdentity:
    """A ``toxiproxy-server`` executable and the version its ``-version`` flag prints.

    Toxiproxy 2.x prints ``toxiproxy-server version 2.12.0`` and exits; older releases
    refuse the flag and exit too (Go's flag package), so no server is ever started here.
    """
    try:
        done = subprocess.run(
            [path, "-version"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return FaultProxyIdentity(TOXIPROXY_SERVER, f"unknown ({exc})", path)
    found = re.search(r"version\s+v?(\S+)", done.stdout + done.stderr)
    version = found.group(1) if found else f"unknown (`{path} -version` printed no version)"
    return FaultProxyIdentity(TOXIPROXY_SERVER, version, path)
