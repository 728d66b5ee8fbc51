"""The daily verification of a backup tool, from the tool's own catalogue and settings.

The built-in backups are checked by :mod:`pytest_drdrill.backup.verification`; a team's
tool (pgBackRest, Barman) by these three checks, each a
:class:`~pytest_drdrill.backup.verification.CheckResult` that never raises for what it
finds:

* :func:`check_tool_verification`: the tool's own verification of every repository
  (``pgbackrest verify``, ``barman check`` and ``verify-backup``), naming each file it
  finds damaged or missing;
* :func:`check_tool_freshness`: each region's newest restorable point, as the tool's
  catalogue lists it, against the RPO of every data category PostgreSQL holds;
* :func:`check_tool_retention`: the retention the tool is configured with against the
  targets file's ``backup_retention``, naming the tool's setting to change.

The requirements' retention is a minimum: keeping backups longer costs storage, not
recoverability, so only a shorter retention fails.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.backup.verification import CheckResult
from pytest_drdrill.durations import format_duration

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_drdrill.backup.tools._protocol import Backups
    from pytest_drdrill.targets import Targets

#: The regions each tool keeps a repository in.
REGIONS = ("primary", "dr")
_DAY = 86_400.0


def _timed(name: str, check: Callable[[], tuple[bool, str]]) -> CheckResult:
    started = timing.monotonic()
    try:
        ok, detail = check()
    except Exception as exc:  # noqa: BLE001 - a tool that fails to answer fails the check
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return CheckResult(name, ok, timing.monotonic() - started, detail)


def check_tool_verification(backups: Backups) -> CheckResult:
    """The tool's own verification of every repository; fails naming each damaged file.

    .. versionadded:: 0.7
    """

    def check() -> tuple[bool, str]:
        findings = backups.verify()
        if findings:
            named = "; ".join(f"{f.location}: {f.path or '?'}: {f.problem}" for f in findings)
            return False, (
                f"{backups.tool} verification found {len(findings)} problem(s): {named}. "
                "Take a new full backup into that repository and find what damaged it"
            )
        listed = backups.backups()
        where = ", ".join(sorted({b.location for b in listed})) or "no repository"
        return True, f"{backups.tool} verified {len(listed)} backup(s) in {where}"

    return _timed("tool-verification", check)


def check_tool_copies(backups: Backups) -> CheckResult:
    """Bring the DR region's repository up to date and check that it holds every backup.

    .. versionadded:: 0.7
    """

    def check() -> tuple[bool, str]:
        copies = backups.replicate()
        bad = [str(c) for c in copies if not getattr(c, "ok", False)]
        if not copies or bad:
            return False, (
                f"the DR region's {backups.tool} repository is incomplete: "
                f"{'; '.join(bad) or 'nothing was copied'}"
            )
        held = [b for b in backups.backups() if b.region == "dr"]
        return True, f"the DR region's repository holds {len(held)} verified backup(s)"

    return _timed("cross-region", check)


def check_tool_freshness(
    backups: Backups, targets: Targets, *, now: float | dt.datetime | None = None
) -> CheckResult:
    """Each region's newest restorable point against the RPO of PostgreSQL's data categories.

    The categories are those whose business functions depend on ``postgres`` through
    the targets file's ``service_map`` (:meth:`Targets.categories_in`).

    :param now: when to measure ages at (epoch seconds or an aware datetime); now by default.

    .. versionadded:: 0.7
    """
    when = (
        timing.wall()
        if now is None
        else now.timestamp()
        if isinstance(now, dt.datetime)
        else float(now)
    )

    def check() -> tuple[bool, str]:
        categories = [targets.data_categories[c] for c in targets.categories_in("postgres")]
        if not categories:
            return False, (
                f"no data category of {targets.source} is held by postgres: map a "
                "business process's dependency to it under service_map (for example "
                "'database: [postgres]') so backup freshness has an RPO to meet"
            )
        stale, fresh = [], []
        for region in REGIONS:
            newest = backups.newest_restorable(region)
            if newest is None:
                stale.append(f"the {region} region's repository holds nothing restorable")
                continue
            age = max(0.0, when - newest.timestamp())
            over = [c for c in categories if age > c.target]
            if over:
                stale.append(
                    f"the {region} region's newest restorable point is "
                    f"{format_duration(age)} old ({newest.isoformat(timespec='seconds')}), "
                    + ", ".join(
                        f"over {c.name}'s RPO target {format_duration(c.target)}" for c in over
                    )
                )
            else:
                fresh.append(f"{region} {format_duration(age)} old")
        strictest = categories[0]
        if stale:
            return False, (
                "; ".join(stale) + f". Check that {backups.tool} archives WAL continuously "
                "(archive_command, its logs) and that backups reach every region"
            )
        return True, (
            f"newest restorable points {', '.join(fresh)}, within "
            f"{strictest.name}'s RPO target {format_duration(strictest.target)}"
        )

    return _timed("tool-freshness", check)


def check_tool_retention(backups: Backups, targets: Targets) -> CheckResult:
    """The tool's configured retention against the targets file's ``backup_retention``.

    .. versionadded:: 0.7
    """

    def check() -> tuple[bool, str]:
        wanted = targets.backup_retention
        if wanted is None:
            return False, (
                f"{targets.source} sets no backup_retention: add 'backup_retention: "
                "{full_local: 30_days, full_offsite: 365_days, incremental: 7_days, "
                "pitr: 30_days}' (the requirements' section 4.1)"
            )
        have = backups.retention()
        pairs = (
            ("full", "full_local", have.full_days, wanted.full_local),
            ("offsite", "full_offsite", have.offsite_days, wanted.full_offsite),
            ("incremental", "incremental", have.incremental_days, wanted.incremental),
            ("pitr", "pitr", have.pitr_days, wanted.pitr),
        )
        short, kept = [], []
        for what, key, days, need in pairs:
            setting = have.settings.get(what, what)
            if days is None:
                if setting.startswith("none:"):
                    kept.append(f"{key} not applicable ({setting[5:].strip()})")
                else:
                    short.append(
                        f"backup_retention.{key} wants {format_duration(need)}, but "
                        f"{backups.tool} sets no time-based retention: set {setting}"
                    )
            elif days * _DAY < need:
                short.append(
                    f"backup_retention.{key} wants {format_duration(need)}, but "
                    f"{backups.tool} keeps {format_duration(days * _DAY)}: raise {setting}"
                )
            else:
                kept.append(f"{key} {format_duration(days * _DAY)}")
        if short:
            return False, "; ".join(short)
        return True, f"{backups.tool} keeps {', '.join(kept)}"

    return _timed("tool-retention", check)
