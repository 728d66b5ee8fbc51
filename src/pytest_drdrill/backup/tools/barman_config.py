"""Barman's configuration for a drill: one file and one home per region.

No ssh runs on a drill machine, so Barman backs up over the replication protocol
(``backup_method = postgres``, pg_basebackup) and receives WAL with ``pg_receivewal``
through a replication slot (``streaming_archiver = on``). ``barman-wal-archive`` would
need ssh to reach Barman from the server's ``archive_command``, and Barman's
geo-redundancy (``primary_ssh_command``) needs ssh too; ``barman-cloud-*`` needs an S3
endpoint with TLS. The DR region's copy is therefore a second Barman with its own home,
fed by copying the primary Barman's server directory (see :meth:`BarmanBackups.replicate`).
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

#: The Barman server name, in both regions' configurations.
SERVER = "pg"

#: The requirements' retention: 30 days in the primary region, a year offsite.
LOCAL_RETENTION = "RECOVERY WINDOW OF 30 DAYS"
OFFSITE_RETENTION = "RECOVERY WINDOW OF 365 DAYS"

_WINDOW = re.compile(r"RECOVERY WINDOW OF (\d+) (DAY|WEEK|MONTH)S?", re.IGNORECASE)
_UNIT_DAYS = {"DAY": 1.0, "WEEK": 7.0, "MONTH": 31.0}


@dataclasses.dataclass(frozen=True)
class BarmanSite:
    """One region's Barman: its configuration file and home.

    :param region: ``primary`` or ``dr``.
    :param home: ``barman_home``; the server's backups and WAL are under ``home/SERVER``.
    :param config: the file passed as ``barman -c``.
    """

    region: str
    home: Path
    config: Path

    @property
    def server_dir(self) -> Path:
        """Where Barman keeps this server's ``base/``, ``wals/`` and ``streaming/``."""
        return self.home / SERVER


def render(
    *,
    user: str,
    home: Path,
    host: str,
    port: int,
    bindir: Path,
    retention: str,
    slot: str,
) -> str:
    """Barman's configuration text for one region.

    :param user: the account Barman runs as (it refuses any other).
    :param home: ``barman_home``.
    :param host: the primary's address.
    :param port: its port.
    :param bindir: where ``pg_basebackup``, ``pg_receivewal`` and ``pg_verifybackup`` are.
    :param retention: ``retention_policy``.
    :param slot: the replication slot ``pg_receivewal`` holds.
    """
    conninfo = f"host={host} port={port} user=postgres dbname=postgres"
    return "\n".join(
        [
            "[barman]",
            f"barman_user = {user}",
            f"barman_home = {home}",
            f"log_file = {home}/barman.log",
            "log_level = INFO",
            "",
            f"[{SERVER}]",
            "description = drdrill primary PostgreSQL",
            f"conninfo = {conninfo} application_name=barman",
            f"streaming_conninfo = {conninfo} application_name=barman_receive_wal",
            "backup_method = postgres",
            "streaming_archiver = on",
            "archiver = off",
            f"slot_name = {slot}",
            f"path_prefix = {bindir}",
            f"retention_policy = {retention}",
            "wal_retention_policy = main",
            "minimum_redundancy = 0",
            "",
        ]
    )


def window_days(policy: str) -> float | None:
    """Days a ``RECOVERY WINDOW OF …`` policy keeps; ``None`` for a redundancy policy."""
    match = _WINDOW.search(policy)
    if match is None:
        return None
    return int(match.group(1)) * _UNIT_DAYS[match.group(2).upper()]
