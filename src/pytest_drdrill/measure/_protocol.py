"""What a measuring client needs from each service: write a numbered record, probe, read back.

One :class:`~pytest_drdrill.measure.workload.Workload` loop drives any service through a
:class:`LedgerClient`, so PostgreSQL, Redis and object storage are measured by the same
rules: a write either was acknowledged, certainly did not apply, or is indeterminate.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class NotApplied(Exception):  # noqa: N818 - an outcome, not a failure of the caller
    """The write certainly did not take effect: nothing was sent, or the server refused it."""


class Indeterminate(Exception):  # noqa: N818 - an outcome, not a failure of the caller
    """The write was sent but never acknowledged: it may or may not have applied."""


@runtime_checkable
class LedgerClient(Protocol):
    """A client of one service's endpoint that writes ids into a ledger and reads them back.

    Implementations keep their own connection and reconnect after a failure; every
    method gives up after ``timeout`` seconds measured on the client side.

    .. versionadded:: 0.2
    """

    service: str

    async def write(self, op_id: int, timeout: float) -> None:
        """Write ``op_id`` into the ledger once; return only when it was acknowledged.

        :raises NotApplied: when it certainly did not apply.
        :raises Indeterminate: when it was sent and not acknowledged.
        """
        ...

    async def probe(self, timeout: float) -> None:
        """A cheap read that proves the service answers; raises on any failure."""
        ...

    async def aclose(self) -> None:
        """Close the connection; never raises."""
        ...

    def read_ids(self, *, timeout: float = 10.0) -> set[int]:
        """Every id in the ledger, read through the endpoint after recovery (blocking).

        :raises Exception: the client library's error when the endpoint cannot be read.
        """
        ...
