"""The built-in fault proxy: a TCP forwarder with a subset of Toxiproxy's HTTP API.

:class:`ProxyServer` runs it as a child process, :class:`ProxyClient` drives it (or a
real Toxiproxy) over HTTP, and :class:`ProxyInfo` describes one proxy.
"""

from __future__ import annotations

from pytest_drdrill.proxy.client import ProxyClient, ProxyInfo
from pytest_drdrill.proxy.process import ProxyServer

__all__ = ["ProxyClient", "ProxyInfo", "ProxyServer"]
