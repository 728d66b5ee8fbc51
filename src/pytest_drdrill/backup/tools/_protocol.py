"""What a backup tool provides to a restore drill: one protocol, one module per tool.

A tool (the built-in encrypted backups, pgBackRest, Barman) is configured against the
drill's running topology, archives WAL continuously, takes base backups, lists what it
holds with its own catalogue, verifies its repository and restores to a point in time into
an isolated server. The drill trusts none of what it says about the restored data: the
restored server's ledger is judged against the client's history, as for every tool.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from pytest_drdrill.backup.pitr import RestoreResult
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.topology._protocol import Topology


@dataclasses.dataclass(frozen=True)
class ToolBackup:
    """One base backup as the tool's own catalogue lists it.

    :param backup_id: the tool's label for it (``20261205-101500F``, a Barman backup id).
    :param started: when the backup started (timezone-aware).
    :param ended: when it finished; the earliest time it can restore to.
    :param location: the repository holding it (``repo1``, ``repo2``, a Barman server).
    :param region: the region that repository lives in.
    :param size: bytes stored in the repository.

    .. versionadded:: 0.7
    """

    backup_id: str
    started: dt.datetime
    ended: dt.datetime
    location: str
    region: str
    size: int = 0


@dataclasses.dataclass(frozen=True)
class Finding:
    """A problem the tool's verification found, naming the file it concerns.

    .. versionadded:: 0.7
    """

    location: str
    path: str
    problem: str


@dataclasses.dataclass(frozen=True)
class Retention:
    """The retention a tool is configured with, in days; ``None`` where it sets none.

    .. versionadded:: 0.7
    """

    full_days: float | None
    offsite_days: float | None
    incremental_days: float | None
    pitr_days: float | None
    #: The tool's own setting behind each figure, for messages (``repo1-retention-full``).
    settings: Mapping[str, str] = dataclasses.field(default_factory=dict)


@runtime_checkable
class Backups(Protocol):
    """A backup tool running against one drill's topology.

    .. versionadded:: 0.7
    """

    #: The ``--drill-backup-tool`` value that selected it.
    tool: str
    topology: Topology
    #: Scratch space the server account can reach; restores get a directory under it.
    workdir: Path

    def base_backup(self) -> object:
        """Take a full backup of the current primary into every repository the tool keeps."""
        ...

    def archive_now(self, timeout: float = 60.0) -> str:
        """Commit a marker, switch WAL, and wait until the tool holds the segment.

        Afterwards every time up to the call can be restored to.

        :returns: the segment's name.
        """
        ...

    def replicate(self) -> Sequence[object]:
        """Make the DR region's repository hold every backup; each report has ``ok``."""
        ...

    def backups(self) -> Sequence[ToolBackup]:
        """Every base backup in every repository, oldest first, from the tool's catalogue."""
        ...

    def newest_restorable(self, region: str | None = None) -> dt.datetime | None:
        """The newest point a restore can reach, from the tool's catalogue.

        :param region: one region's repository only; ``None`` for any.
        :returns: ``None`` when nothing is restorable.
        """
        ...

    def verify(self) -> Sequence[Finding]:
        """Run the tool's own verification of its repositories; empty when all is sound."""
        ...

    def retention(self) -> Retention:
        """The retention the tool is configured with."""
        ...

    def repository(self, region: str) -> Path:
        """Where ``region``'s repository lives on this machine: what a storage loss takes."""
        ...

    def restore(
        self, target: dt.datetime, workdir: Path, record: DrillRecord, *, region: str | None = None
    ) -> RestoreResult:
        """Restore to ``target`` into a new server under ``workdir``, timed by phase.

        Reads ``region``'s repository when given (the weekly sample restore from the DR
        copy); otherwise the primary region's, or the DR region's when the primary's is
        gone. The server is running and promoted on return; the caller stops it.
        """
        ...

    def close(self) -> None:
        """Stop archiving and any process the tool started (idempotent)."""
        ...


@runtime_checkable
class BackupTool(Protocol):
    """A backup tool the drills can use (``--drill-backup-tool``).

    .. versionadded:: 0.7
    """

    name: str

    def versions(self) -> Mapping[str, str]:
        """Versions of the tool's programs, for the run header and ``drill.json``."""
        ...

    def open(self, topology: Topology, workdir: Path, record: DrillRecord) -> Backups:
        """Configure the tool against the running ``topology`` and start archiving WAL.

        :raises TopologyError: when the tool is missing or cannot reach the servers,
            naming the flag or package to fix it.
        """
        ...
