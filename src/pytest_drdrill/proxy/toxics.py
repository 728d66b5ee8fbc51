"""Toxics: what the fault proxy can do to the bytes of one direction of a connection.

A :class:`Toxic` is the definition the API stores on a proxy; :data:`TOXIC_ATTRIBUTES`
lists every type Toxiproxy 2.x knows with its attributes; an :class:`Item` is a chunk of
bytes, or an end-of-stream marker, on its way through the toxics. These definitions are
shared by the API (which checks and stores toxics), the forwarder (which reads and writes
items) and the toxic chain itself: :mod:`pytest_drdrill.proxy.stages` says how each type
acts, :mod:`pytest_drdrill.proxy.pipeline` moves items along a chain of them.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

__all__ = [
    "STREAMS",
    "TOXIC_ATTRIBUTES",
    "Item",
    "Stream",
    "Toxic",
]

Stream = Literal["upstream", "downstream"]

#: Toxiproxy's stream names: ``upstream`` is client to server, ``downstream`` server to client.
STREAMS: tuple[Stream, ...] = ("upstream", "downstream")

#: Every toxic type with its attributes and their units, in Toxiproxy's order.
TOXIC_ATTRIBUTES: dict[str, dict[str, str]] = {
    "latency": {"latency": "ms", "jitter": "ms"},
    "bandwidth": {"rate": "KB/s"},
    "slow_close": {"delay": "ms"},
    "timeout": {"timeout": "ms"},
    "reset_peer": {"timeout": "ms"},
    "slicer": {"average_size": "bytes", "size_variation": "bytes", "delay": "µs"},
    "limit_data": {"bytes": "bytes"},
}

# Item kinds. EOF is a half-close; CLOSE closes the connection once what went before is
# written; RESET aborts both sockets with a TCP RST.
DATA, EOF, CLOSE, RESET = range(4)


@dataclasses.dataclass
class Toxic:
    """A toxic as the API stores it on a proxy.

    :param name: unique among the proxy's toxics.
    :param type: a key of :data:`TOXIC_ATTRIBUTES`.
    :param stream: the direction it acts on.
    :param toxicity: the probability, from 0 to 1, that it applies to a given connection.
    :param attributes: every attribute of its type, as whole numbers.
    """

    name: str
    type: str
    stream: Stream
    toxicity: float
    attributes: dict[str, int]

    def to_json(self) -> dict[str, object]:
        """Return the toxic in Toxiproxy's JSON shape."""
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }


class Item:
    """A chunk of bytes, or a marker, on its way through a pipeline.

    :param kind: ``DATA``, ``EOF``, ``CLOSE`` or ``RESET``.
    :param data: the bytes of a ``DATA`` item.
    :param ts: when it was read, advanced by each latency it went through (as Toxiproxy
        does, so that two latency toxics add up).
    """

    __slots__ = ("data", "kind", "ts")

    def __init__(self, kind: int, data: bytes, ts: float) -> None:
        self.kind = kind
        self.data = data
        self.ts = ts
