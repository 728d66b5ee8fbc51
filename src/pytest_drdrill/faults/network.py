"""Network faults, all made of fault-proxy calls: cuts, partitions and Toxiproxy toxics.

A toxic's ``stream`` is Toxiproxy's: ``upstream`` carries what the link's source sends
to its target, ``downstream`` the answers. Every fault here works the same against the
built-in proxy and a real Toxiproxy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill.errors import FaultError

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from pytest_drdrill.topology._protocol import Topology
    from pytest_drdrill.topology.links import Link

STREAMS = ("upstream", "downstream")
DIRECTIONS = ("both", "a->b", "b->a")


class LinkCut:
    """Cut a proxied path: established connections drop, new ones are refused."""

    kind = "link-cut"

    def __init__(self, link: Link) -> None:
        self.link = link
        self.target = link.label

    def inject(self) -> None:
        """Disable the proxy."""
        self.link.cut()

    def heal(self) -> None:
        """Enable the proxy again."""
        self.link.restore()


class Toxic:
    """One Toxiproxy toxic on one link, removed when healed.

    :param link: the path it slows or breaks.
    :param type: the toxic type, e.g. ``latency``.
    :param attributes: the toxic's attributes, e.g. ``{"latency": 200, "jitter": 20}``.
    :param stream: ``upstream`` or ``downstream``.
    :param kind: the fault's name in reports; default the toxic type.
    """

    def __init__(
        self,
        link: Link,
        type: str,  # noqa: A002 - Toxiproxy's own field name
        attributes: Mapping[str, float],
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
        kind: str | None = None,
    ) -> None:
        if stream not in STREAMS:
            raise FaultError(
                f"stream={stream!r} for a {type} toxic on {link.label}; use one of "
                f"{', '.join(STREAMS)} (upstream: what the source sends; downstream: replies)"
            )
        self.link = link
        self.type = type
        self.attributes = dict(attributes)
        self.stream = stream
        self.toxicity = toxicity
        self.kind = kind or type
        self.name = f"drdrill-{type}-{stream}"
        shown = ", ".join(f"{k}={v:g}" for k, v in self.attributes.items())
        self.target = f"{link.label} [{stream}{': ' + shown if shown else ''}]"

    def inject(self) -> None:
        """Add the toxic to the link's proxy."""
        self.link.client.add_toxic(
            self.link.proxy_name,
            self.type,
            name=self.name,
            stream="upstream" if self.stream == "upstream" else "downstream",
            toxicity=self.toxicity,
            # Toxiproxy's attributes are integers (milliseconds, KB/s, bytes).
            attributes={k: round(v) for k, v in self.attributes.items()},
        )

    def heal(self) -> None:
        """Remove the toxic if it is there."""
        present = {t.name for t in self.link.client.toxics(self.link.proxy_name)}
        if self.name in present:
            self.link.client.remove_toxic(self.link.proxy_name, self.name)


def latency(link: Link, ms: float, *, jitter: float = 0, stream: str = "downstream") -> Toxic:
    """Delay every chunk by ``ms`` ± ``jitter`` milliseconds."""
    return Toxic(link, "latency", {"latency": ms, "jitter": jitter}, stream=stream)


def bandwidth(link: Link, kb_per_second: float, *, stream: str = "downstream") -> Toxic:
    """Limit the link to ``kb_per_second`` KB/s."""
    return Toxic(link, "bandwidth", {"rate": kb_per_second}, stream=stream)


def blackhole(link: Link, *, stream: str = "upstream", close_after_ms: float = 0) -> Toxic:
    """Swallow data (Toxiproxy ``timeout``): nothing passes, connections hang.

    :param close_after_ms: close the connection after this long; 0 holds it forever.
    """
    return Toxic(link, "timeout", {"timeout": close_after_ms}, stream=stream, kind="blackhole")


def reset_peer(link: Link, *, after_ms: float = 0, stream: str = "downstream") -> Toxic:
    """Reset connections (TCP RST) after ``after_ms`` milliseconds."""
    return Toxic(link, "reset_peer", {"timeout": after_ms}, stream=stream, kind="reset-peer")


def _group(topology: Topology, names: Collection[str], which: str) -> set[str]:
    known = {*topology.nodes(), "clients"}
    unknown = sorted(set(names) - known)
    if unknown or not names:
        raise FaultError(
            f"partition group {which} {sorted(names)} names unknown nodes {unknown}; "
            f"use node names of the topology ({', '.join(sorted(known))})"
        )
    return set(names)


class Partition:
    """Cut every path between two groups of nodes (``clients`` counts as a node).

    Both directions disable the paths, dropping established connections. One direction
    (``a->b``: A's bytes never reach B) puts a blackhole toxic on the matching stream of
    each crossing path, as far as a TCP proxy can make a path one-way. Service endpoints
    are never cut: they stand for DNS or a virtual IP, which failover repoints.

    :param topology: the drill's topology.
    :param a: node names on one side.
    :param b: node names on the other side.
    :param direction: ``both``, ``a->b`` or ``b->a``.
    """

    kind = "partition"

    def __init__(
        self, topology: Topology, a: Sequence[str], b: Sequence[str], direction: str = "both"
    ) -> None:
        if direction not in DIRECTIONS:
            raise FaultError(
                f"direction={direction!r} for a partition; use one of {', '.join(DIRECTIONS)}"
            )
        side_a, side_b = _group(topology, a, "a"), _group(topology, b, "b")
        if side_a & side_b:
            raise FaultError(f"partition groups overlap: {sorted(side_a & side_b)}")
        self.direction = direction
        self.parts: list[LinkCut | Toxic] = []
        for link in topology.links():
            if link.kind == "endpoint":
                continue
            ends = (link.source, link.target.name)
            if ends[0] in side_a and ends[1] in side_b:
                forward = True
            elif ends[0] in side_b and ends[1] in side_a:
                forward = False
            else:
                continue
            if direction == "both":
                self.parts.append(LinkCut(link))
            else:
                # a->b blocks what A sends: upstream on A-sourced paths, replies on B-sourced.
                stream = "upstream" if forward == (direction == "a->b") else "downstream"
                self.parts.append(blackhole(link, stream=stream))
        if not self.parts:
            raise FaultError(
                f"no path runs between {sorted(side_a)} and {sorted(side_b)}: nothing to "
                "partition; see topology.links() for the paths that exist"
            )
        arrow = {"both": "<->", "a->b": "->", "b->a": "<-"}[direction]
        self.target = f"{','.join(sorted(side_a))} {arrow} {','.join(sorted(side_b))}"

    def inject(self) -> None:
        """Cut or blackhole every crossing path."""
        for part in self.parts:
            part.inject()

    def heal(self) -> None:
        """Restore every crossing path."""
        errors = []
        for part in self.parts:
            try:
                part.heal()
            except Exception as exc:  # heal the rest; report all at the end
                errors.append(f"{part.target}: {exc}")
        if errors:
            raise FaultError("partition not fully healed: " + "; ".join(errors))
