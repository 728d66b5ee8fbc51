"""Barman as the drill's backup tool (``--drill-backup-tool=barman``).

A real Barman runs against the drill's primary as the server account: base backups with
``barman backup`` (pg_basebackup), WAL with ``barman receive-wal`` (pg_receivewal on a
replication slot), and restores with ``barman recover --target-time``. Everything it
says about what it holds comes from its own catalogue (``list-backups``, ``show-backup``,
its ``xlog.db``); what the restored server holds is judged by the drill, not by Barman.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import getpass
import json
import os
import shutil
import signal
import subprocess
from typing import TYPE_CHECKING

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.backup.errors import CorruptBackup, MissingWalSegment, NoSuchBackup
from pytest_drdrill.backup.tools._protocol import Finding, Retention, ToolBackup
from pytest_drdrill.backup.tools.barman_config import (
    LOCAL_RETENTION,
    OFFSITE_RETENTION,
    SERVER,
    BarmanSite,
    render,
    window_days,
)
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.servers import processes
from pytest_drdrill.topology.postgres import LocalPostgresNode

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from pytest_drdrill.backup.pitr import RestoreResult
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.topology._protocol import Topology

_MISSING = (
    "Barman is not installed: apt-get install barman barman-cli (scripts/bootstrap does), "
    "or choose another --drill-backup-tool"
)


def _stamp(text: str) -> dt.datetime:
    """A Barman time (``2026-12-05 06:20:01.123+00:00`` or ISO) as an aware datetime."""
    value = dt.datetime.fromisoformat(text.strip())
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True)
class CopyReport:
    """One backup copied to the DR region's Barman and verified there."""

    backup_id: str
    ok: bool
    detail: str


class BarmanTool:
    """Barman, installed from Debian's ``barman`` package.

    .. versionadded:: 0.7
    """

    name = "barman"

    def versions(self) -> Mapping[str, str]:
        """``barman --version``'s first word."""
        program = shutil.which("barman")
        if program is None:
            raise TopologyError(_MISSING)
        done = subprocess.run([program, "--version"], capture_output=True, text=True, check=False)
        return {"barman": (done.stdout or done.stderr).split()[0] if done.returncode == 0 else "?"}

    def open(self, topology: Topology, workdir: Path, record: DrillRecord) -> BarmanBackups:
        """Configure Barman in both regions and start receiving WAL."""
        return BarmanBackups(topology, workdir).start()


class BarmanBackups:
    """Barman backing up one drill topology: a Barman per region.

    :param topology: the running topology; its primary must be a local server.
    :param workdir: scratch space the server account can reach.

    .. versionadded:: 0.7
    """

    tool = "barman"

    def __init__(self, topology: Topology, workdir: Path) -> None:
        program = shutil.which("barman")
        if program is None:
            raise TopologyError(_MISSING)
        primary = topology.primary
        if not isinstance(primary, LocalPostgresNode):
            raise TopologyError(
                f"--drill-backup-tool=barman needs a local PostgreSQL primary "
                f"(--drill-backend=local); {primary!r} is not one"
            )
        self.program = program
        self.topology = topology
        self.workdir = workdir
        self.node = primary
        self.run_as = primary.run_as
        self.sites = {r: self._configure(r, workdir / f"barman-{r}") for r in ("primary", "dr")}
        self.receiver: subprocess.Popen[bytes] | None = None

    def _configure(self, region: str, home: Path) -> BarmanSite:
        home.mkdir(parents=True, exist_ok=True)
        site = BarmanSite(region, home, home / "barman.conf")
        user = self.run_as.user if self.run_as is not None else getpass.getuser()
        retention = LOCAL_RETENTION if region == "primary" else OFFSITE_RETENTION
        site.config.write_text(
            render(
                user=user, home=home, host=self.node.host, port=self.node.port,
                bindir=self.node.install.bindir, retention=retention, slot="drdrill_barman",
            )
        )  # fmt: skip
        if self.run_as is not None:
            self.run_as.own(home)
        return site

    # --- running Barman -----------------------------------------------------------------------

    def run_barman(
        self, site: BarmanSite, *args: str, timeout: float = 300.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``barman -c`` with ``site``'s configuration as the server account.

        :param check: raise :class:`TopologyError` with Barman's output on failure;
            otherwise return the failure as exit status 1.
        """
        argv = [self.program, "-c", str(site.config), *args]
        if check:
            return processes.run(
                argv, run_as=self.run_as, timeout=timeout, what="barman " + args[0]
            )
        try:
            return processes.run(argv, run_as=self.run_as, timeout=timeout, what=args[0])
        except TopologyError as err:
            return subprocess.CompletedProcess(argv, 1, "", str(err))

    def _json(self, site: BarmanSite, *args: str) -> dict[str, object]:
        done = self.run_barman(site, "-f", "json", *args)
        data = json.loads(done.stdout or "{}")
        assert isinstance(data, dict)
        return data

    def start(self) -> BarmanBackups:
        """Create the replication slot and start ``barman receive-wal`` in the background."""
        site = self.sites["primary"]
        self.run_barman(site, "receive-wal", "--create-slot", SERVER, check=False)
        self.receiver = processes.spawn(
            [self.program, "-c", str(site.config), "receive-wal", SERVER],
            log=site.home / "receive-wal.log", run_as=self.run_as,
        )  # fmt: skip
        self._wait_streaming(site)
        # Barman refuses a first backup until its archive holds a segment ("WAL archive").
        # Our own switch rather than `barman switch-wal --archive`, which waited 12 s on an
        # idle server for pg_receivewal to close the segment (see archive_now).
        self.archive_now()
        return self

    def _wait_streaming(self, site: BarmanSite, timeout: float = 30.0) -> None:
        """Wait until pg_receivewal holds the slot.

        pg_receivewal starts at the server's current segment: a WAL switch before it has
        connected closes a segment it never streams, and Barman would wait for it forever.
        """
        deadline = timing.monotonic() + timeout
        while True:
            with psycopg.connect(
                self.node.dsn(app="drdrill-barman"), autocommit=True, connect_timeout=3
            ) as conn:
                row = conn.execute(
                    "SELECT active FROM pg_replication_slots WHERE slot_name = 'drdrill_barman'"
                ).fetchone()
            if row is not None and row[0]:
                return
            if self.receiver is not None and self.receiver.poll() is not None:
                raise TopologyError(
                    f"barman receive-wal exited ({self.receiver.returncode}) before streaming: "
                    f"see {site.home / 'receive-wal.log'} and {site.home / 'barman.log'}"
                )
            if timing.monotonic() > deadline:
                raise TopologyError(
                    f"pg_receivewal did not take slot drdrill_barman within {timeout:.0f}s: "
                    f"see {site.home / 'receive-wal.log'} and {site.home / 'barman.log'}"
                )
            timing.sleep(0.1)

    def close(self) -> None:
        """Stop ``receive-wal`` and its pg_receivewal, and drop the slot (idempotent)."""
        if self.receiver is not None and self.receiver.poll() is None:
            # SIGINT to the whole process group: Barman and its pg_receivewal stop together.
            # `receive-wal --stop` signals Barman alone, which then waited 10 s for its child
            # and reported it could not terminate it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.receiver.pid, signal.SIGINT)
            try:
                self.receiver.wait(timeout=10)
            except subprocess.TimeoutExpired:
                processes.kill_tree(self.receiver.pid)
                self.receiver.wait(timeout=10)
        self.receiver = None
        try:
            with psycopg.connect(
                self.node.dsn(app="drdrill-barman"), autocommit=True, connect_timeout=3
            ) as conn:
                conn.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                    "WHERE slot_name = 'drdrill_barman' AND NOT active"
                )
        except psycopg.Error:
            pass  # the primary is gone with its slot

    def archive_wal(self, site: BarmanSite) -> None:
        """Move what pg_receivewal finished into Barman's WAL archive (``barman cron``'s job)."""
        self.run_barman(site, "archive-wal", SERVER, check=False)

    # --- backing up ---------------------------------------------------------------------------

    def base_backup(self) -> ToolBackup:
        """``barman backup --wait``: a full backup whose WAL is archived on return."""
        site = self.sites["primary"]
        done = self.run_barman(
            site, "backup", "--wait", "--wait-timeout", "120", SERVER, timeout=400, check=False
        )
        if done.returncode != 0:
            check = self.run_barman(site, "check", SERVER, check=False)
            raise TopologyError(
                f"barman backup failed: {done.stderr}\nbarman check:\n{check.stdout}"
            )
        return self.backups("primary")[-1]

    def archive_now(self, timeout: float = 60.0) -> str:
        """Commit a marker, switch WAL, wait until Barman's archive holds the segment."""
        with psycopg.connect(self.node.dsn(app="drdrill-backup"), autocommit=True) as conn:
            # A commit stamped now: a time-targeted recovery stops only past a commit.
            conn.execute("SELECT txid_current()")
            row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
            # pg_receivewal closes a segment only when WAL past its end arrives; on an idle
            # server that waited for the next background record (10-12 s here). A commit
            # after the switch is that WAL.
            conn.execute("SELECT txid_current()")
        assert row is not None
        segment = str(row[0])
        site = self.sites["primary"]
        deadline = timing.monotonic() + timeout
        while not (site.server_dir / "wals" / segment[:16] / segment).exists():
            if timing.monotonic() > deadline:
                raise TimeoutError(
                    f"Barman did not archive WAL segment {segment} within {timeout:.0f}s; "
                    f"see {site.home / 'receive-wal.log'} and {site.home / 'barman.log'}"
                )
            self.archive_wal(site)
            timing.sleep(0.2)
        return segment

    def replicate(self) -> Sequence[CopyReport]:
        """Copy the primary Barman's backups and WAL to the DR Barman and verify each there.

        rsync as the server account, because no ssh-based Barman geo-redundancy runs here.
        """
        src, dst = self.sites["primary"], self.sites["dr"]
        self.archive_wal(src)
        processes.run(
            ["mkdir", "-p", str(dst.server_dir)], run_as=self.run_as, timeout=30, what="mkdir"
        )
        for part in ("base", "wals"):
            if (src.server_dir / part).is_dir():
                processes.run(
                    ["rsync", "-a", "--delete",
                     f"{src.server_dir / part}/", f"{dst.server_dir / part}/"],
                    run_as=self.run_as, timeout=600, what="rsync to the DR Barman",
                )  # fmt: skip
        reports = []
        for backup in self.backups("dr"):
            findings = self._verify_backup(dst, backup.backup_id)
            detail = "; ".join(f"{f.path}: {f.problem}" for f in findings) or "verified"
            reports.append(CopyReport(backup.backup_id, not findings, detail))
        return reports

    # --- the catalogue ------------------------------------------------------------------------

    def backups(self, region: str | None = None) -> Sequence[ToolBackup]:
        """Every finished backup Barman lists, oldest first (``list-backups``, ``show-backup``)."""
        found: list[ToolBackup] = []
        for site in self._sites(region):
            if not site.config.exists():
                continue
            listed = self._json(site, "list-backups", SERVER).get(SERVER, [])
            assert isinstance(listed, list)
            for entry in listed:
                if entry.get("status") != "DONE":
                    continue
                shown = self._json(site, "show-backup", SERVER, entry["backup_id"])[SERVER]
                assert isinstance(shown, dict)
                base = shown.get("base_backup_information", {})
                found.append(
                    ToolBackup(
                        backup_id=entry["backup_id"],
                        started=_stamp(base["begin_time"]),
                        ended=_stamp(base["end_time"]),
                        location=f"barman {SERVER} ({site.home})",
                        region=site.region,
                        size=int(base.get("disk_usage_bytes", 0)),
                    )
                )
        return sorted(found, key=lambda b: (b.ended, b.region))

    def _sites(self, region: str | None) -> list[BarmanSite]:
        return [s for r, s in self.sites.items() if region is None or r == region]

    def newest_restorable(self, region: str | None = None) -> dt.datetime | None:
        """The newest backup end or archived WAL segment, from Barman's catalogue.

        A segment's time is the one Barman records in its ``xlog.db`` (the file's time
        when archived): a restore reaches the last commit in it.
        """
        stamps = [b.ended for b in self.backups(region)]
        for site in self._sites(region):
            stamps.extend(stamp for _, stamp in self.archived(site))
        return max(stamps, default=None)

    def archived(self, site: BarmanSite) -> list[tuple[str, dt.datetime]]:
        """The WAL segments Barman's ``xlog.db`` lists, with the time it records for each."""
        xlog = site.server_dir / "wals" / "xlog.db"
        if not xlog.exists():
            return []
        listed = []
        for line in xlog.read_text().splitlines():
            fields = line.split("\t")
            if len(fields) >= 3 and len(fields[0]) == 24:
                listed.append((fields[0], dt.datetime.fromtimestamp(float(fields[2]), tz=dt.UTC)))
        return listed

    def missing_wal(self, site: BarmanSite) -> list[Path]:
        """Segments Barman's catalogue lists whose file is gone from its archive."""
        wals = site.server_dir / "wals"
        paths = [wals / name[:16] / name for name, _ in self.archived(site)]
        return [path for path in paths if not path.exists()]

    def verify(self) -> Sequence[Finding]:
        """``barman check`` on the primary region, ``barman verify-backup`` on every backup."""
        findings: list[Finding] = []
        site = self.sites["primary"]
        self.archive_wal(site)
        done = self.run_barman(site, "check", SERVER, check=False)
        for line in (done.stdout + done.stderr).splitlines():
            if "FAILED" in line and "receive-wal running" not in line:
                findings.append(Finding(f"barman {SERVER}", str(site.config), line.strip()))
        for backup in self.backups():
            findings.extend(self._verify_backup(self.sites[backup.region], backup.backup_id))
        for each in self.sites.values():
            findings.extend(
                Finding(f"barman {SERVER} ({each.region})", str(path), "WAL segment missing")
                for path in self.missing_wal(each)
            )
        return findings

    def _verify_backup(self, site: BarmanSite, backup_id: str) -> list[Finding]:
        """``barman verify-backup`` (pg_verifybackup against the backup manifest)."""
        done = self.run_barman(site, "verify-backup", SERVER, backup_id, check=False)
        if done.returncode == 0 and "error" not in (done.stdout + done.stderr).lower():
            return []
        datadir = site.server_dir / "base" / backup_id / "data"
        location = f"barman {SERVER} ({site.region})"
        findings = []
        for line in (done.stdout + done.stderr).splitlines():
            if '"' in line and ("error" in line or "mismatch" in line or "missing" in line):
                name = line.split('"')[1]
                findings.append(Finding(location, str(datadir / name), line.strip()))
        return findings or [Finding(location, str(datadir), (done.stdout + done.stderr).strip())]

    def retention(self) -> Retention:
        """``retention_policy`` of each region's Barman, read back with ``show-server``."""
        policies = {}
        for region, site in self.sites.items():
            shown = self._json(site, "show-server", SERVER)[SERVER]
            assert isinstance(shown, dict)
            policies[region] = str(shown.get("retention_policy", ""))
        local = window_days(policies["primary"])
        primary, dr = self.sites["primary"].config, self.sites["dr"].config
        return Retention(
            full_days=local,
            offsite_days=window_days(policies["dr"]),
            incremental_days=None,  # backup_method = postgres takes full backups only
            pitr_days=local,
            settings={
                "full": f"retention_policy = {policies['primary']} ({primary})",
                "offsite": f"retention_policy = {policies['dr']} ({dr})",
                "incremental": "none: backup_method = postgres takes only full backups",
                "pitr": f"retention_policy = {policies['primary']}, wal_retention_policy = main",
            },
        )

    # --- restoring ----------------------------------------------------------------------------

    def restore_site(self) -> BarmanSite:
        """The primary region's Barman, or the DR region's when the primary's is gone."""
        site = self.sites["primary"]
        if site.config.exists() and (site.server_dir / "base").is_dir():
            done = self.run_barman(site, "-f", "json", "list-backups", SERVER, check=False)
            if done.returncode == 0 and json.loads(done.stdout or "{}").get(SERVER):
                return site
        return self.sites["dr"]

    def repository(self, region: str) -> Path:
        """The region's ``barman_home``."""
        return self.sites[region].home

    def restore(
        self, target: dt.datetime, workdir: Path, record: DrillRecord, *, region: str | None = None
    ) -> RestoreResult:
        """Verify, ``barman recover --target-time``, start, replay to the target and promote."""
        from pytest_drdrill.backup.tools.barman_restore import restore_with_barman

        return restore_with_barman(self, target, workdir, source=region)

    def choose(self, site: BarmanSite, target: dt.datetime) -> ToolBackup:
        """The newest backup in ``site`` that ended before ``target``."""
        held = self.backups(site.region)
        usable = [b for b in held if b.ended < target]
        if not usable:
            raise NoSuchBackup(
                f"a Barman backup ended before {target.isoformat()}",
                str(site.server_dir),
                [f"{b.backup_id} (ended {b.ended.isoformat()})" for b in held],
            )
        return usable[-1]

    def check_backup(self, site: BarmanSite, backup: ToolBackup) -> None:
        """Raise naming the first file ``verify-backup`` rejects or the first WAL file gone."""
        findings = self._verify_backup(site, backup.backup_id)
        if findings:
            raise CorruptBackup(findings[0].path, "; ".join(f.problem for f in findings))
        missing = self.missing_wal(site)
        if missing:
            raise MissingWalSegment(
                missing[0].name,
                f"WAL from backup {backup.backup_id} on (Barman's xlog.db lists "
                f"{len(missing)} segment(s) whose file is gone)",
                str(site.server_dir / "wals"),
            )
