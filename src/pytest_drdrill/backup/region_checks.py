"""The weekly cross-region check over the three regions that keep backups.

The requirements' ``validate_cross_region_backups`` walks its three regions (primary,
DR, backup site) and returns one verdict per region; :func:`check_cross_region_backups`
does the same over the drill's catalogs, so a damaged copy in one region fails that
region's check, named, while the others pass. The daily checks and the two-region
predecessor live in :mod:`pytest_drdrill.backup.verification`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.backup.verification import CheckResult, _plural, _verify_all, _where

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pytest_drdrill.backup.catalog import Catalog
    from pytest_drdrill.backup.keys import BackupKey, KeyRing


def phase_name(region: str) -> str:
    """The drill phase one region's check is recorded as: ``cross-region-<region>``.

    Reports find the backup region's evidence by this name.

    .. versionadded:: 0.9
    """
    return f"cross-region-{region}"


#: What a region without a configured store is told to do.
_CONFIGURE = (
    "the local and Docker backends start its object store (s3-backup); on the stack "
    "backend name one in the stack file: an s3 node with region: {region}"
)


class CrossRegionValidation:
    """The weekly cross-region validation, step by step: copy, then one check per region.

    Split so a drill records the copy and each region's check as phases of their own
    (:func:`check_cross_region_backups` runs all of it at once).

    :param catalogs: each region's catalog by region (:meth:`BackupSite.catalogs`), or
        ``None`` for a region without a store.
    :param keys: the key ring.
    :param source: the region whose backups are copied to the others.
    :raises ValueError: when ``source`` has no catalog.

    .. versionadded:: 0.9
    """

    def __init__(
        self,
        catalogs: Mapping[str, Catalog | None],
        keys: KeyRing | BackupKey,
        *,
        source: str = "primary",
    ) -> None:
        origin = catalogs.get(source)
        if origin is None:
            raise ValueError(
                f"no catalog for the source region {source!r}; regions: {', '.join(catalogs)}"
            )
        self.catalogs = dict(catalogs)
        self.keys = keys
        self.source = source
        self._origin = origin
        self._copy_failed: dict[str, str] = {}

    @property
    def regions(self) -> list[str]:
        """Every region, the source first as given."""
        return list(self.catalogs)

    def copy(self) -> CheckResult:
        """Copy what each other region lacks from the source (:meth:`Catalog.copy_to`).

        Backups a region already lists are left as they are, so a damaged copy stays
        damaged and its region's :meth:`check` finds it.

        :returns: ``cross_region`` without a region; it fails when a copy stopped or a
            region is not configured, naming the region.
        """
        started = timing.monotonic()
        copied, problems = [], []
        for region, catalog in self.catalogs.items():
            if region == self.source:
                continue
            if catalog is None:
                problems.append(f"{region} region: not configured, nothing copied")
                continue
            try:
                reports = self._origin.copy_to(catalog, self.keys)
            except Exception as exc:  # a damaged source or an unreachable store stops the copy
                self._copy_failed[region] = f"copy from the {self.source} region stopped: {exc}"
                problems.append(f"{region} region ({_where(catalog)}): {exc}")
                continue
            copied.append(f"{_plural(len(reports), 'backup')} to the {region} region")
        done = "copied " + (", ".join(copied) or "nothing")
        detail = f"{done}; {' | '.join(problems)}" if problems else done
        return CheckResult("cross_region", not problems, timing.monotonic() - started, detail)

    def check(self, region: str) -> CheckResult:
        """Check one region: every backup any region lists is listed here and verifies.

        Verification authenticates each manifest and decrypts every file in full against
        its digest (intact and decryptable). A region without a store fails as "not
        configured": the backups are not where the requirements keep them, and a check
        that looked at nothing must not pass.

        :returns: ``cross_region`` for ``region``; its detail starts with the region's name.
        """
        started = timing.monotonic()

        def done(ok: bool, detail: str) -> CheckResult:  # noqa: FBT001
            return CheckResult(
                "cross_region", ok, timing.monotonic() - started, detail, region=region
            )

        catalog = self.catalogs[region]
        if catalog is None:
            return done(False, (
                f"{region} region: not configured (no object store keeps backups there), so "
                f"nothing was verified; {_CONFIGURE.format(region=region)}"
            ))  # fmt: skip
        where = f"{region} region ({_where(catalog)})"
        try:
            held = set(catalog.backup_ids())
            backups, files, found = _verify_all(catalog, self.keys)
        except Exception as exc:  # the store does not answer or refuses the listing
            return done(False, f"{where} is not available: {exc}")
        problems = [self._copy_failed[region]] if region in self._copy_failed else []
        missing = sorted(self._everywhere() - held)
        if missing:
            problems.append(
                f"{_plural(len(missing), 'backup')} held in another region not listed here: "
                + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            )  # fmt: skip
        problems += found
        if backups == 0 and not problems:
            problems.append("holds no backups, so nothing can be restored from it")
        counted = f"{_plural(backups, 'backup')}, {_plural(files, 'file')}"
        if problems:
            shown = " | ".join(problems[:3]) + (" | ..." if len(problems) > 3 else "")
            return done(False, f"{where}: {_plural(len(problems), 'problem')} ({counted}): {shown}")
        return done(True, (
            f"{where}: every backup available, intact and decryptable ({counted}; manifests "
            f"authenticated, every file decrypted and matching its digest)"
        ))  # fmt: skip

    def _everywhere(self) -> set[str]:
        """Every backup id any region that answers lists."""
        ids: set[str] = set()
        for catalog in self.catalogs.values():
            if catalog is None:
                continue
            try:
                ids |= set(catalog.backup_ids())
            except Exception:  # that region's own check says it is not available
                continue
        return ids


def check_cross_region_backups(
    catalogs: Mapping[str, Catalog | None],
    keys: KeyRing | BackupKey,
    *,
    source: str = "primary",
) -> list[CheckResult]:
    """Copy the source region's backups to every other region, then check each region.

    Weekly, one result per region, as the requirements' ``validate_cross_region_backups``
    returns one verdict per region (see :class:`CrossRegionValidation` for what each
    step does).

    :param catalogs: each region's catalog by region, ``None`` for a region without a store.
    :param keys: the key ring.
    :param source: the region whose backups are copied to the others.
    :returns: one ``cross_region`` result per region, in the order of ``catalogs``, its
        :attr:`~CheckResult.region` set and its detail starting with the region's name.
    :raises ValueError: when ``source`` has no catalog.

    .. versionadded:: 0.9
    """
    validation = CrossRegionValidation(catalogs, keys, source=source)
    validation.copy()
    return [validation.check(region) for region in validation.regions]
