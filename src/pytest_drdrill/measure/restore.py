"""What a point-in-time restore kept and lost, judged from the client's own history.

A restore to time *T* must hold every write the client saw acknowledged before *T* and
none it started after *T*; writes in flight at *T* may go either way. Writes acknowledged
between *T* and the incident are the price of restoring to *T*: they are lost, counted,
and the span from *T* to the last of them is the restore's RPO window.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from pytest_drdrill.results import RpoResult

if TYPE_CHECKING:
    from collections.abc import Set

    from pytest_drdrill.measure.history import History
    from pytest_drdrill.timing import Anchor


@dataclasses.dataclass(frozen=True)
class RestoreCheck:
    """The restored data against the history.

    :param rpo: writes lost and the window they span.
    :param missing_before_target: acknowledged before *T* yet absent: a broken restore.
    :param present_after_target: started after *T* yet present: not a restore to *T*.

    .. versionadded:: 0.3
    """

    rpo: RpoResult
    missing_before_target: tuple[int, ...]
    present_after_target: tuple[int, ...]

    @property
    def correct(self) -> bool:
        """Whether the restored data is exactly the state at *T* (in-flight writes aside)."""
        return not self.missing_before_target and not self.present_after_target


def check_restore(
    history: History, present: Set[int], *, anchor: Anchor, target: float, incident: float
) -> RestoreCheck:
    """Compare the restored ledger with what the client saw.

    :param history: the client's history.
    :param present: ledger ids in the restored database.
    :param anchor: turns the history's monotonic stamps into wall time.
    :param target: the restore's target, epoch seconds.
    :param incident: when the incident happened, epoch seconds (writes after it are not
        the restore's concern: the incident itself destroyed them).

    .. versionadded:: 0.3
    """
    acked = [op for op in history.acknowledged() if anchor.to_wall(op.completed) < incident]
    lost = sorted(op.id for op in acked if op.id not in present)
    lost_set = set(lost)
    missing = tuple(
        op.id for op in acked if anchor.to_wall(op.completed) < target and op.id in lost_set
    )
    after = tuple(
        sorted(
            op.id
            for op in history.writes()
            if anchor.to_wall(op.invoked) > target and op.id in present
        )
    )
    lost_times = [anchor.to_wall(op.completed) for op in acked if op.id in lost_set]
    window = max(0.0, max(lost_times) - target) if lost_times else 0.0
    acked_ids = {op.id for op in history.acknowledged()}
    unacked_present = sum(1 for i in present if i not in acked_ids)
    rpo = RpoResult(len(lost), tuple(lost), window, unacked_present)
    return RestoreCheck(rpo, missing, after)
