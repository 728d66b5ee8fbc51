"""How the fault proxy's API describes a proxy and a toxic, as typed, frozen values.

:class:`ProxyInfo` and :class:`ToxicInfo` are what :class:`~pytest_drdrill.proxy.client.ProxyClient`
returns; they are apart from the client so that code which only reads these values (and
their checks of the API's JSON) does not need the HTTP machinery.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from typing import Literal

from pytest_drdrill.errors import ProxyError
from pytest_drdrill.proxy.addresses import split_address

__all__ = ["ProxyInfo", "ToxicInfo"]


@dataclasses.dataclass(frozen=True)
class ProxyInfo:
    """A proxy as the fault proxy's API describes it.

    .. versionadded:: 0.1

    :param name: the proxy's unique name.
    :param listen: the address it listens on; after a bind to port 0 this is the port it got.
    :param upstream: the address new connections are forwarded to.
    :param enabled: whether it accepts connections.
    """

    name: str
    listen: str
    upstream: str
    enabled: bool

    @property
    def host(self) -> str:
        """The host part of :attr:`listen` (without IPv6 brackets)."""
        return split_address(self.listen)[0]

    @property
    def port(self) -> int:
        """The port part of :attr:`listen`."""
        return split_address(self.listen)[1]

    @classmethod
    def from_json(cls, data: object) -> ProxyInfo:
        """Build a :class:`ProxyInfo` from one proxy object of the API.

        :param data: the decoded JSON object; fields other than the four known ones are ignored.
        :returns: the proxy.
        :raises ProxyError: if a field is missing or has the wrong type.
        """
        if not isinstance(data, dict):
            raise ProxyError(f"expected a proxy object from the fault proxy, got {data!r:.200}")
        fields = {"name": str, "listen": str, "upstream": str, "enabled": bool}
        for key, kind in fields.items():
            if not isinstance(data.get(key), kind):
                raise ProxyError(
                    f"the fault proxy described a proxy without a valid {key!r} field: "
                    f"{data!r:.200}"
                )
        return cls(
            name=data["name"],
            listen=data["listen"],
            upstream=data["upstream"],
            enabled=data["enabled"],
        )


@dataclasses.dataclass(frozen=True)
class ToxicInfo:
    """A toxic as the fault proxy's API describes it.

    .. versionadded:: 0.1

    :param name: its name, unique among the toxics of its proxy.
    :param type: ``latency``, ``bandwidth``, ``timeout``, ``reset_peer``, ``slow_close``,
        ``limit_data`` or ``slicer`` (or a custom type of a real Toxiproxy).
    :param stream: ``upstream`` (client to server) or ``downstream`` (server to client).
    :param toxicity: the probability, from 0 to 1, that it applies to a connection.
    :param attributes: its settings, e.g. ``{"latency": 100, "jitter": 10}``; read-only.
    """

    name: str
    type: str
    stream: Literal["upstream", "downstream"]
    toxicity: float
    attributes: Mapping[str, int | float]

    def __post_init__(self) -> None:
        # A private copy behind a read-only view keeps the frozen dataclass frozen.
        object.__setattr__(self, "attributes", types.MappingProxyType(dict(self.attributes)))

    def __hash__(self) -> int:
        attributes = tuple(sorted(self.attributes.items()))
        return hash((self.name, self.type, self.stream, self.toxicity, attributes))

    @classmethod
    def from_json(cls, data: object) -> ToxicInfo:
        """Build a :class:`ToxicInfo` from one toxic object of the API.

        :param data: the decoded JSON object.
        :returns: the toxic.
        :raises ProxyError: if a field is missing or has the wrong type.
        """
        if not isinstance(data, dict):
            raise ProxyError(f"expected a toxic object from the fault proxy, got {data!r:.200}")
        attributes = data.get("attributes")
        # Attribute values are not checked: a real Toxiproxy may carry custom toxics whose
        # attributes are not numbers.
        valid = (
            isinstance(data.get("name"), str)
            and isinstance(data.get("type"), str)
            and data.get("stream") in ("upstream", "downstream")
            and isinstance(data.get("toxicity"), int | float)
            and isinstance(attributes, dict)
        )
        if not valid or not isinstance(attributes, dict):
            raise ProxyError(f"the fault proxy described a toxic badly: {data!r:.200}")
        return cls(
            name=data["name"],
            type=data["type"],
            stream=data["stream"],
            toxicity=float(data["toxicity"]),
            attributes=attributes,
        )
