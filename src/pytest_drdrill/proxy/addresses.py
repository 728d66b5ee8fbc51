"""``host:port`` addresses as Toxiproxy writes them.

The client, the API server, the forwarder and the topologies that read a proxy's
``listen`` field all split and join these addresses; they live here, apart from the HTTP
client, so that the server side of the proxy does not import the client to get them.
"""

from __future__ import annotations

__all__ = ["join_address", "split_address"]


def split_address(address: str) -> tuple[str, int]:
    """Split a ``host:port`` address as Toxiproxy writes it.

    IPv6 hosts come in brackets (``[::1]:8474``); an empty host (``:8474``) means
    every interface, as in Go's ``net.Listen``.

    :param address: the address to split.
    :returns: the host without brackets, and the port.
    :raises ValueError: if the address has no valid port.
    """
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"expected host:port, got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


def join_address(host: str, port: int) -> str:
    """Write a host and port as ``host:port``, bracketing IPv6 hosts.

    :param host: a host name or IP address.
    :param port: the port.
    :returns: the joined address.
    """
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
