"""Network faults on a proxied link."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_drdrill.topology.links import Link


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
