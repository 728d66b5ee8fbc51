"""The promotion sequence every reference PostgreSQL failover follows, for one service or a region.

Fence, select, promote, repoint, validate, and roll back when validation fails: each
step a timed phase of the drill's record. The old primary is fenced before anything is
promoted, so two writable primaries never coexist; the endpoints move only once the new
primary is promoted; and a failed validation puts the endpoints back and fails the
recovery, so the drill reports a broken failover instead of measuring a lucky one.

:class:`Promotion` runs that order once; a subclass says what each step covers (one
service in :mod:`~pytest_drdrill.recovery.failover`, a whole region in
:mod:`~pytest_drdrill.recovery.region`). Choosing and promoting a PostgreSQL standby is
a :class:`PromotionSteps`, so a team's subclass of the reference failover changes it for
both.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import TYPE_CHECKING, Protocol

from pytest_drdrill.errors import FailoverFailed

if TYPE_CHECKING:
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.topology._protocol import PostgresNode, Topology

__all__ = ["FailoverSettings", "Promotion", "PromotionSteps", "StandbyState"]


@dataclasses.dataclass(frozen=True)
class FailoverSettings:
    """Bounds of the reference failover's waits, in seconds.

    :param catchup_timeout: how long to wait for the chosen standby to replay what it received.
    :param promote_timeout: how long promotion may take.
    :param validate_timeout: how long validation through the endpoint may take.
    :param quorum_timeout: how long selection waits for a synchronous standby that is still
        running but does not answer (frozen, cut off): under ``ANY 1`` it may hold commits
        that no other standby confirmed.
    """

    catchup_timeout: float = 5.0
    promote_timeout: float = 10.0
    validate_timeout: float = 5.0
    quorum_timeout: float = 10.0


@dataclasses.dataclass(frozen=True)
class StandbyState:
    """What a standby reported during selection."""

    node: PostgresNode
    sync: bool
    receive_lsn: int
    replay_lsn: int
    #: What selection could not check, in words ("" when it saw every synchronous standby).
    note: str = ""


class PromotionSteps(Protocol):
    """Choosing and promoting a PostgreSQL standby (the reference failover is one)."""

    def select(
        self, topology: Topology, *, among: list[PostgresNode] | None = None
    ) -> StandbyState:
        """Pick the standby to promote among ``among`` (default every standby)."""
        ...

    def catch_up(self, chosen: StandbyState) -> str:
        """Wait, bounded, for ``chosen`` to replay what it received; say how that went."""
        ...

    def promote(self, node: PostgresNode) -> str:
        """Make ``node`` a primary; what else it changed on it, in words ("" for nothing)."""
        ...


class Promotion(abc.ABC):
    """One run of the sequence; subclasses fill in what each step covers.

    .. versionadded:: 0.5
    """

    def __init__(self, steps: PromotionSteps, topology: Topology, record: DrillRecord) -> None:
        self.steps = steps
        self.topology = topology
        self.record = record

    def run(self) -> StandbyState:
        """Run the sequence; return the promoted standby.

        :raises FailoverFailed: when a step fails; on failed validation after the rollback.
        """
        record = self.record
        with record.phase("fencing") as note:
            note.detail = self.fence()
        with record.phase("selection") as note:
            chosen = self.steps.select(self.topology, among=self.candidates())
            note.detail = self.selected(chosen) + chosen.note
            note.detail += self.steps.catch_up(chosen)
        with record.phase("promotion") as note:
            changed = self.steps.promote(chosen.node)
            note.detail = self.promoted(chosen) + changed
        self.before_repoint()
        with record.phase("repoint") as note:
            note.detail = self.repoint(chosen)
        try:
            with record.phase("validation") as note:
                note.detail = self.validate()
        except Exception as exc:
            with record.phase("rollback") as note:
                note.detail = self.roll_back()
            raise FailoverFailed(self.failure(chosen, exc), record.phases) from exc
        return chosen

    @abc.abstractmethod
    def fence(self) -> str:
        """Stop for good what the failover takes over from; say what."""
        ...

    def candidates(self) -> list[PostgresNode] | None:
        """The standbys to choose from; ``None`` for every standby."""
        return None

    @abc.abstractmethod
    def selected(self, chosen: StandbyState) -> str:
        """Describe the chosen standby."""
        ...

    def promoted(self, chosen: StandbyState) -> str:
        """Promote what else moves with PostgreSQL, after it; say what was promoted."""
        return f"{chosen.node.name} promoted"

    def before_repoint(self) -> None:
        """Steps between promotion and repointing, each recorded as its own phase; none here."""
        return None

    @abc.abstractmethod
    def repoint(self, chosen: StandbyState) -> str:
        """Point the endpoints (and replication) at the new primaries; say where."""
        ...

    @abc.abstractmethod
    def validate(self) -> str:
        """Write and read through the endpoints, as clients do; say what was checked."""
        ...

    @abc.abstractmethod
    def roll_back(self) -> str:
        """Put the endpoints back after a failed validation; say what is left."""
        ...

    @abc.abstractmethod
    def failure(self, chosen: StandbyState, exc: Exception) -> str:
        """The message of the :class:`FailoverFailed` a failed validation raises."""
        ...
