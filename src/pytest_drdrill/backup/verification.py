"""The backup validation schedule of the requirements (section 4.1), as checks.

Daily: :func:`check_backup_checksums` (every stored file decrypts and matches its
manifest), :func:`check_database_integrity` (``pg_amcheck`` over every database) and
:func:`check_freshness` (the newest restorable point of each data category is within its
RPO target). Weekly:
:func:`~pytest_drdrill.backup.region_checks.check_cross_region_backups` (every backup is
available, intact and decryptable in each of the three regions, one result per region);
:func:`check_cross_region` is its two-region predecessor. The weekly sample restore is
the point-in-time restore drill (:mod:`pytest_drdrill.backup.pitr`).

Each check returns a :class:`CheckResult` and never raises for what it finds: a damaged
backup, an unreachable store or a corrupt table is a failed check whose ``detail`` says
what, where, and what to do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import TYPE_CHECKING, Literal, Protocol

from pytest_drdrill import timing
from pytest_drdrill.backup.errors import BackupError
from pytest_drdrill.durations import format_duration
from pytest_drdrill.errors import DrillError
from pytest_drdrill.servers import processes

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_drdrill.backup.catalog import Catalog
    from pytest_drdrill.backup.keys import BackupKey, KeyRing
    from pytest_drdrill.backup.manifest import Manifest
    from pytest_drdrill.targets import Targets
    from pytest_drdrill.topology.postgres import LocalPostgresNode

#: How often each check is meant to run, as the requirements' validation schedule says.
SCHEDULE: dict[str, Literal["daily", "weekly"]] = {
    "backup_checksums": "daily",
    "database_integrity": "daily",
    "freshness": "daily",
    "cross_region": "weekly",
}
_PROGRESS = ("pg_amcheck: checking", "pg_amcheck: including", "pg_amcheck: in database")
_CHECKING = re.compile(r'checking (heap table|btree index) "([^".]+)\.')


class CheckOutcome(Protocol):
    """What a verification check returns for ``Drill.check``; :class:`CheckResult` is one.

    .. versionadded:: 0.3 (in ``pytest_drdrill.drill`` until 0.5)
    """

    @property
    def ok(self) -> bool:
        """Whether the check passed."""
        ...

    @property
    def detail(self) -> str:
        """What was checked and found."""
        ...


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of one validation check.

    :param name: the check, a key of :data:`SCHEDULE`.
    :param ok: whether it passed.
    :param seconds: how long it took.
    :param detail: what was checked and, when it failed, the first problem and its fix.
    :param region: the region a per-region check looked at; ``None`` for the others.

    .. versionadded:: 0.3
    .. versionchanged:: 0.9 ``region``.
    """

    name: str
    ok: bool
    seconds: float
    detail: str
    region: str | None = None


def _timed(name: str, check: Callable[[], tuple[bool, str]]) -> CheckResult:
    started = timing.monotonic()
    ok, detail = check()
    return CheckResult(name, ok, timing.monotonic() - started, detail)


def _where(catalog: Catalog) -> str:
    """The catalog and its store's endpoint: both regions use the same bucket name."""
    return f"{catalog.location} at {catalog.client.meta.endpoint_url}"


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _verify_all(catalog: Catalog, ring: KeyRing | BackupKey) -> tuple[int, int, list[str]]:
    """Verify every listed backup; return backups, files checked and one line per problem."""
    backups = files = 0
    problems = []
    # One backup at a time, so a damaged manifest spoils only its own backup.
    for backup_id in sorted(catalog.backup_ids()):
        backups += 1
        try:
            report = catalog.verify(backup_id, ring)
        except BackupError as exc:
            problems.append(f"backup {backup_id}: {exc}")
            continue
        files += len(report.files)
        problems += [f"backup {backup_id}: {error}" for error in report.errors]
    return backups, files, problems


def check_backup_checksums(catalog: Catalog, keys: KeyRing | BackupKey) -> CheckResult:
    """Verify every backup in ``catalog``: manifests, sizes, digests, full decryption.

    Daily. An empty catalog fails: there is nothing to restore from.

    :param catalog: the catalog to check.
    :param keys: the key ring (every key a kept backup was written with).
    :returns: ``backup_checksums``; its detail counts backups and files and names the
        first problem.

    .. versionadded:: 0.3
    """

    def check() -> tuple[bool, str]:
        try:
            backups, files, problems = _verify_all(catalog, keys)
        except Exception as exc:  # the store itself is unreachable or refuses the listing
            return False, f"cannot read the backups of {_where(catalog)}: {exc}"
        if backups == 0:
            return False, (
                f"{_where(catalog)} holds no backups, so nothing can be restored from it; "
                f"check that backups are being taken and stored there"
            )
        if problems:
            return False, (
                f"{_plural(len(problems), 'problem')} in {_plural(backups, 'backup')} of "
                f"{_where(catalog)}; first: {problems[0]}"
            )
        return True, (
            f"{_plural(backups, 'backup')} ({_plural(files, 'file')}) in {_where(catalog)} "
            f"verified: manifests authenticated, every file decrypted and matching its digest"
        )

    return _timed("backup_checksums", check)


def check_database_integrity(node: LocalPostgresNode, *, timeout: float = 600.0) -> CheckResult:
    """Check every database of a PostgreSQL node with ``pg_amcheck``.

    Daily. Runs ``pg_amcheck --all --install-missing --heapallindexed``: every heap table
    and B-tree index of every connectable database, each index also checked to hold
    exactly the table's tuples. ``--install-missing`` creates the ``amcheck`` extension
    where it is missing; on a standby it must already exist (created on its primary).

    :param node: a running local node.
    :param timeout: seconds the check may take.
    :returns: ``database_integrity``; its detail counts the databases, tables and indexes
        checked, or quotes the first corruption found.

    .. versionadded:: 0.3
    """

    def check() -> tuple[bool, str]:
        argv = [
            node.install.tool("pg_amcheck"), "-h", node.host, "-p", str(node.port),
            "-U", "postgres", "--all", "--install-missing", "--heapallindexed", "--verbose",
        ]  # fmt: skip
        try:
            done = processes.run(
                argv, run_as=node.run_as, timeout=timeout, what=f"pg_amcheck of {node.name}"
            )
        except DrillError as exc:
            text = str(exc)
            found = "exit 2" in text.split("\n", 1)[0]
            lines = [line for line in text.splitlines()[1:] if line.strip()]
            report = [line for line in lines if not line.startswith(_PROGRESS)]
            first = "\n".join(report[:6]) or text[:600]
            if found:
                return False, (
                    f"pg_amcheck found corruption on {node.name} ({node.address}):\n{first}\n"
                    f"Restore the damaged relations from a backup or a healthy standby."
                )
            return False, f"pg_amcheck could not check {node.name} ({node.address}):\n{first}"
        checked = _CHECKING.findall(done.stderr)
        databases = sorted({database for _, database in checked})
        tables = sum(1 for kind, _ in checked if kind == "heap table")
        indexes = _plural(len(checked) - tables, "B-tree index", "B-tree indexes")
        return True, (
            f"pg_amcheck on {node.name}: no corruption in {_plural(tables, 'heap table')} and "
            f"{indexes} (heapallindexed) of "
            f"{_plural(len(databases), 'database')} ({', '.join(databases)})"
        )

    return _timed("database_integrity", check)


def check_cross_region(
    primary_catalog: Catalog, dr_catalog: Catalog, keys: KeyRing | BackupKey
) -> CheckResult:
    """Copy backups to the DR region, then check both regions hold every one intact.

    Weekly. :meth:`Catalog.copy_to` copies what the DR catalog lacks; then every backup
    of each region is verified with the key ring (restorable: manifest authenticated,
    every file decrypted), and every primary backup must be listed in DR.

    :param primary_catalog: the primary region's catalog.
    :param dr_catalog: the DR region's catalog.
    :param keys: the key ring.
    :returns: ``cross_region``; its detail counts per region and names the first problem.

    .. versionadded:: 0.3
    """

    def check() -> tuple[bool, str]:
        problems = []
        try:
            primary_catalog.copy_to(dr_catalog, keys)
        except Exception as exc:  # a damaged source or an unreachable store stops the copy
            problems.append(f"copy to the DR region ({_where(dr_catalog)}) stopped: {exc}")
        counts = []
        ids: dict[str, set[str]] = {}
        for region, catalog in (("primary", primary_catalog), ("dr", dr_catalog)):
            try:
                backups, files, found = _verify_all(catalog, keys)
                ids[region] = set(catalog.backup_ids())
            except Exception as exc:
                problems.append(f"{region} region ({_where(catalog)}) is not available: {exc}")
                continue
            counts.append(f"{region}: {_plural(backups, 'backup')}, {_plural(files, 'file')}")
            endpoint = catalog.client.meta.endpoint_url
            problems += [f"{region} region ({endpoint}): {problem}" for problem in found]
        missing = sorted(ids.get("primary", set()) - ids.get("dr", set()))
        if "dr" in ids and missing:
            # Availability first: it is what a DR region without these backups lacks.
            problems.insert(
                0,
                f"{_plural(len(missing), 'backup')} of the primary region not listed in the "
                f"DR region ({_where(dr_catalog)}): {', '.join(missing[:5])}"
                + (" ..." if len(missing) > 5 else ""),
            )
        verified = "; ".join(counts) or "nothing verified"
        if problems:
            shown = " | ".join(problems[:3]) + (" | ..." if len(problems) > 3 else "")
            return False, f"{_plural(len(problems), 'problem')} ({verified}): {shown}"
        return True, f"every backup available, intact and restorable in each region ({verified})"

    return _timed("cross_region", check)


def _point(manifest: Manifest) -> float:
    """The epoch time of the newest data a backup restores."""
    return dt.datetime.fromisoformat(manifest.time_end or manifest.created_at).timestamp()


def check_freshness(
    catalog: Catalog, targets: Targets, *, now: float | dt.datetime | None = None
) -> CheckResult:
    """Compare the newest restorable point of each data category with its RPO target.

    Daily. A backup's restorable point is its ``time_end`` (the moment its data was
    consistent) or, for WAL segments, when it was stored. Listed backups count as
    restorable (the catalog lists a backup only once all of it is stored); whether their
    bytes are intact is :func:`check_backup_checksums`'s question.

    :param catalog: the catalog to look at.
    :param targets: the drill targets (:func:`pytest_drdrill.targets.load_targets`).
    :param now: the time to measure ages at (epoch seconds or an aware datetime); now
        by default.
    :returns: ``freshness``; fails when a category's newest point is older than its
        target, when a category is not in the targets file, or when there are no backups.

    .. versionadded:: 0.3
    """
    if now is None:
        when = timing.wall()
    elif isinstance(now, dt.datetime):
        when = now.timestamp()
    else:
        when = float(now)

    def check() -> tuple[bool, str]:
        try:
            manifests = catalog.list_backups()
        except Exception as exc:
            return False, f"cannot list the backups of {_where(catalog)}: {exc}"
        newest: dict[str, float] = {}
        for manifest in manifests:
            point = _point(manifest)
            newest[manifest.data_category] = max(point, newest.get(manifest.data_category, point))
        if not newest:
            return False, f"{_where(catalog)} holds no backups: no data category is protected"
        stale, fresh = [], []
        for category, point in sorted(newest.items()):
            age = format_duration(max(0.0, when - point))
            spec = targets.data_categories.get(category)
            if spec is None:
                stale.append(
                    f"backups of data category {category!r} have no RPO target: add it under "
                    f"data_categories in {targets.source}, or store them under one of "
                    f"{', '.join(sorted(targets.data_categories))}"
                )
            elif when - point > spec.target:
                stale.append(
                    f"newest {category} backup is {age} old; the RPO target is "
                    f"{format_duration(spec.target)}"
                )
            else:
                fresh.append(f"{category} ({age} old, target {format_duration(spec.target)})")
        if stale:
            return False, "; ".join(stale) + (
                f" (within target: {', '.join(fresh)})" if fresh else ""
            )
        return True, f"newest backups within their RPO targets: {', '.join(fresh)}"

    return _timed("freshness", check)
