"""The fault proxy: a TCP forwarder with Toxiproxy's HTTP API, toxics included.

:class:`ProxyServer` runs it (or a real ``toxiproxy-server``, see
:func:`find_toxiproxy_server`) as a child process, :class:`ProxyClient` drives either
over HTTP, and :class:`ProxyInfo` and :class:`ToxicInfo` describe a proxy and a toxic.
"""

from __future__ import annotations

from pytest_drdrill.proxy.client import ProxyClient, ProxyInfo, ToxicInfo
from pytest_drdrill.proxy.process import ProxyServer, find_toxiproxy_server

__all__ = ["ProxyClient", "ProxyInfo", "ProxyServer", "ToxicInfo", "find_toxiproxy_server"]
