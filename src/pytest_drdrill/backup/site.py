"""The backup side of a drill topology: a catalog per region, WAL shipping, base backups.

Backups of the primary region go to a bucket of its object store; a cross-region copy
goes to the same bucket in the DR region's store, so either region can restore alone,
and another to the backup region's store (the requirements' third site), so the backups
outlive the loss of both serving regions.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.backup.catalog import Catalog
from pytest_drdrill.backup.postgres import WalShipper, take_base_backup
from pytest_drdrill.clients.s3 import ensure_bucket, s3_client
from pytest_drdrill.topology._protocol import BACKUP_REGION, BackupRegion, WalArchived

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_drdrill.backup.catalog import VerifyReport
    from pytest_drdrill.backup.keys import KeyRing
    from pytest_drdrill.backup.manifest import Manifest
    from pytest_drdrill.topology._protocol import Topology

#: The bucket backups are kept in, in each region's object store.
BACKUP_BUCKET = "drdrill-backups"


class BackupSite:
    """Backups of one drill topology, in every region that keeps them.

    :param topology: the running topology (its WAL spool and object stores).
    :param keys: the key ring; its current key encrypts.
    :param workdir: scratch space the server account can reach (under the data root).

    .. versionadded:: 0.3
    .. versionchanged:: 0.9 a third catalog, :attr:`backup_catalog`, in the backup region.
    """

    def __init__(self, topology: Topology, keys: KeyRing, workdir: Path) -> None:
        self.topology = topology
        self.keys = keys
        self.workdir = workdir
        primary, dr = topology.s3_nodes["s3-primary"], topology.s3_nodes["s3-dr"]
        self.catalog = self._catalog(primary.endpoint_url)
        self.dr_catalog = self._catalog(dr.endpoint_url)
        # Found by region, not by name: a team's stack file names its stores its own way.
        store = (
            topology.backup_store()
            if isinstance(topology, BackupRegion)
            else next((n for n in topology.s3_nodes.values() if n.region == BACKUP_REGION), None)
        )
        #: The backup region's catalog; ``None`` when the topology has no store there,
        #: which the weekly verification reports as a failed, not configured region.
        self.backup_catalog = None if store is None else self._catalog(store.endpoint_url)
        spool = topology.wal_spool if isinstance(topology, WalArchived) else None
        if spool is None:
            raise ValueError(f"{topology!r} archives no WAL: it was built without a WAL spool")
        self.shipper = WalShipper(
            spool, self.catalog, keys.current, source="postgres cluster (primary)"
        )
        self._bases = 0

    @staticmethod
    def _catalog(endpoint_url: str) -> Catalog:
        client = s3_client(endpoint_url, timeout=30.0)
        ensure_bucket(client, BACKUP_BUCKET)
        return Catalog(client, BACKUP_BUCKET)

    def start(self) -> BackupSite:
        """Start shipping WAL."""
        self.shipper.start()
        return self

    def close(self) -> None:
        """Stop shipping WAL (idempotent)."""
        self.shipper.stop()

    def base_backup(self) -> Manifest:
        """Take and store a base backup of the current primary."""
        self._bases += 1
        workdir = self.workdir / f"base-{self._bases}"
        return take_base_backup(self.topology.primary, self.catalog, self.keys.current, workdir)  # type: ignore[arg-type]

    def archive_now(self, timeout: float = 60.0) -> str:
        """Commit a marker, close the current WAL segment, wait until it is shipped.

        Afterwards every time up to the call can be restored to.

        :returns: the segment's name.
        """
        with psycopg.connect(self.topology.primary.dsn(app="drdrill-backup"), autocommit=True) as c:
            # A commit stamped now: recovery to any earlier time ends only when it reads a
            # commit past its target, and an idle moment would leave the archive without one.
            c.execute("SELECT txid_current()")
            row = c.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        assert row is not None
        segment = str(row[0])
        if not self.shipper.wait_for(segment, timeout=timeout):
            raise TimeoutError(
                f"WAL segment {segment} was not shipped to {self.catalog.location} within "
                f"{timeout:.0f}s; shipping errors: {self.shipper.errors or 'none'}"
            )
        return segment

    def restore_catalog(self) -> Catalog:
        """The catalog a restore reads: the primary region's, or a copy when it is gone.

        The primary region's object store is asked for the bucket (one try, 2 s); when it
        does not answer, as after a region outage or a storage loss, the DR region's copy
        is used, so the restore depends on nothing in the lost region. With a backup
        region, the DR store is asked too, and the backup region's copy is the last resort.

        .. versionadded:: 0.4
        .. versionchanged:: 0.9 the backup region's copy when the DR region's does not
            answer either.
        """
        fallbacks = [self.catalog, self.dr_catalog]
        if self.backup_catalog is not None:
            fallbacks.append(self.backup_catalog)
        for catalog in fallbacks[:-1]:
            probe = s3_client(catalog.client.meta.endpoint_url, timeout=2.0)
            try:
                probe.head_bucket(Bucket=BACKUP_BUCKET)
            except Exception:  # refused, timed out, or the bucket is gone with the store's data
                continue
            return catalog
        return fallbacks[-1]

    def catalogs(self) -> dict[str, Catalog | None]:
        """Each region's catalog by region, the source first; ``None`` where none is configured.

        .. versionadded:: 0.9
        """
        return {"primary": self.catalog, "dr": self.dr_catalog, BACKUP_REGION: self.backup_catalog}

    def replicate(self) -> list[VerifyReport]:
        """Copy every backup to the DR and backup regions' stores and verify it there.

        .. versionchanged:: 0.9 also to the backup region, when the topology has one.
        """
        reports = self.catalog.copy_to(self.dr_catalog, self.keys)
        if self.backup_catalog is not None:
            reports += self.catalog.copy_to(self.backup_catalog, self.keys)
        return reports

    def newest_restorable(self, catalog: Catalog | None = None) -> dt.datetime | None:
        """When the newest stored backup or WAL segment was written, or ``None`` for none."""
        stamps = [
            dt.datetime.fromisoformat(m.created_at)
            for m in (catalog or self.catalog).list_backups()
            if m.kind in ("postgres-base", "postgres-wal")
        ]
        return max(stamps, default=None)

    def staleness(self) -> float | None:
        """Seconds since the newest restorable point; ``None`` when there is none."""
        newest = self.newest_restorable()
        return None if newest is None else timing.wall() - newest.timestamp()
