"""The one protocol every fault implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Fault(Protocol):
    """A failure that can be injected and healed.

    ``heal`` must be safe to call after a failed or partial ``inject`` and more than
    once: teardown heals every fault whatever happened.

    .. versionadded:: 0.1
    """

    kind: str
    target: str

    def inject(self) -> None:
        """Make the failure happen."""
        ...

    def heal(self) -> None:
        """Undo what can be undone; idempotent."""
        ...
