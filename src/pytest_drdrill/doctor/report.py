"""Run every check, print what was found with its fix, and say whether drills can run.

The exit status is 0 when everything the default drills need (the local backend and the
reference failover) is there, and 1 otherwise; optional parts that are missing are
reported with their fix but never fail the check.

.. versionadded:: 0.6
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from typing import TYPE_CHECKING

from pytest_drdrill.doctor import backup_tools, docker, extras, ha, local
from pytest_drdrill.doctor.finding import Finding, Settings

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import TextIO


@dataclasses.dataclass(frozen=True)
class Section:
    """A group of checks, and whether the default drills need it.

    :param title: what the group is for.
    :param required: whether a missing part stops the default drills.
    :param checks: each returns one or more findings.
    """

    title: str
    required: bool
    checks: Sequence[Callable[[], Finding | list[Finding]]]


def sections(settings: Settings) -> list[Section]:
    """Every check the doctor runs, grouped as the report prints them."""
    return [
        Section(
            "needed by the default drills (local backend, reference failover)",
            True,
            [
                lambda: local.postgres(settings),
                lambda: local.redis(settings),
                lambda: local.account(settings),
                local.s3,
                local.ipcrm,
                local.fault_proxy,
            ],
        ),
        Section(
            "HA stacks (optional: --drill-redis-failover=sentinel, the Patroni cluster)",
            False,
            [lambda: ha.sentinel(settings), ha.patroni_stack],
        ),
        Section(
            "Docker backend (optional: --drill-backend=docker or auto)",
            False,
            [lambda: docker.daemon_and_images(settings)],
        ),
        Section("backup tools (optional)", False, [backup_tools.tools]),
        Section(
            "tests and integrations (optional)",
            False,
            [extras.browser, extras.pushgateway, extras.hypothesis],
        ),
    ]


def _run(check: Callable[[], Finding | list[Finding]]) -> list[Finding]:
    try:
        found = check()
    except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
        name = getattr(check, "__name__", "check")
        return [Finding(name, ok=False, detail=f"the check itself failed: {exc!r}")]
    return found if isinstance(found, list) else [found]


def diagnose(settings: Settings) -> list[tuple[Section, list[Finding]]]:
    """Run every check, side by side (most wait on a subprocess or the Docker daemon).

    :returns: each section with its findings, in the report's order.
    """
    groups = sections(settings)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = [[pool.submit(_run, check) for check in group.checks] for group in groups]
        return [
            (group, [finding for future in checks for finding in future.result()])
            for group, checks in zip(groups, futures, strict=True)
        ]


def write_report(results: list[tuple[Section, list[Finding]]], out: TextIO) -> int:
    """Print the findings and the verdict; return the exit status (0: default drills can run)."""
    width = max(len(f.name) for _, findings in results for f in findings)
    blocking: list[str] = []
    optional: list[str] = []
    out.write("pytest-drdrill doctor\n")
    for section, findings in results:
        out.write(f"\n{section.title}:\n")
        for finding in findings:
            status = "OK" if finding.ok else "MISSING"
            out.write(f"  {status:<8} {finding.name:<{width}}  {finding.detail}\n")
            if not finding.ok:
                (blocking if section.required else optional).append(finding.name)
                if finding.fix:
                    out.write(f"  {'':<8} {'':<{width}}  fix: {finding.fix}\n")
    out.write("\n")
    also = f"; optional parts missing: {', '.join(optional)}" if optional else ""
    if blocking:
        out.write(
            f"doctor: the default drills cannot run here: {', '.join(blocking)} missing "
            f"(run the fixes above){also}\n"
        )
        return 1
    out.write(f"doctor: the default drills can run here (pytest --drill=monthly){also}\n")
    return 0
