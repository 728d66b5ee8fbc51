"""pgBackRest as the backup tool of restore drills (``--drill-backup-tool=pgbackrest``).

The drill's PostgreSQL servers archive with ``pgbackrest archive-push`` (set with
``ALTER SYSTEM`` on every server, the standbys included, so a promoted standby archives
too), into two repositories: ``repo1`` in the primary region's data root and ``repo2`` in
the DR region's, each encrypted with pgBackRest's own ``aes-256-cbc`` (what it offers; the
requirements ask for AES-256-GCM, which the built-in tool uses). Full backups go to both;
a restore is ``pgbackrest restore --type=time`` into a new data directory, from ``repo1``
or, when its directory is gone with the primary region, from ``repo2`` alone.

Posix repositories, not S3: Debian 12's pgBackRest 2.45 speaks to S3 only over TLS, and the
drills' object stores (moto) serve plain HTTP; each region's repository lives in that
region's directory instead, so losing the region's storage loses its repository too.

pgBackRest connects to PostgreSQL over a Unix socket unless ``PGHOST`` says otherwise; the
drill's servers listen on TCP only, so every command runs with ``PGHOST=127.0.0.1``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from pytest_drdrill import timing
from pytest_drdrill.backup.tools._protocol import Finding, Retention, ToolBackup
from pytest_drdrill.errors import ExecutableMissing, TopologyError
from pytest_drdrill.results import Phase

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pytest_drdrill.backup.pitr import RestoreResult
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.servers.processes import RunAs
    from pytest_drdrill.topology._protocol import Topology

#: The stanza every drill's cluster is backed up under.
STANZA = "drill"
#: The repositories and the region each lives in.
REPOS = {1: "primary", 2: "dr"}
_REPO_OF = {region: n for n, region in REPOS.items()}
#: Days each repository keeps full backups and the WAL to restore from them
#: (``repoN-retention-full`` with ``repoN-retention-full-type=time``): the requirements'
#: 30 days in the primary region and a year offsite.
RETENTION_DAYS = {1: 30, 2: 365}


def find_pgbackrest() -> str:
    """The ``pgbackrest`` program; raises ExecutableMissing with the remedy."""
    found = shutil.which("pgbackrest")
    if found is None:
        raise ExecutableMissing(
            "--drill-backup-tool=pgbackrest needs pgBackRest: apt-get install pgbackrest "
            "(scripts/bootstrap installs it)"
        )
    return found


class PgBackRestTool:
    """pgBackRest, configured per drill.

    .. versionadded:: 0.7
    """

    name = "pgbackrest"

    def versions(self) -> Mapping[str, str]:
        """PgBackRest's version."""
        out = subprocess.run(
            [find_pgbackrest(), "version"], capture_output=True, text=True, check=False
        ).stdout
        return {"pgbackrest": out.split()[-1] if out.split() else "unknown"}

    def open(self, topology: Topology, workdir: Path, record: DrillRecord) -> PgBackRestBackups:
        """Write the configuration, point every server's archiving at it, create the stanza."""
        return PgBackRestBackups(topology, workdir, record).start()


class PgBackRestBackups:
    """pgBackRest running against one drill's topology.

    .. versionadded:: 0.7
    """

    tool = "pgbackrest"

    def __init__(self, topology: Topology, workdir: Path, record: DrillRecord) -> None:
        self.topology = topology
        self.workdir = workdir
        self.record = record
        from pytest_drdrill.topology.postgres import LocalPostgresNode

        primary = topology.primary
        run_as: RunAs | None = getattr(primary, "run_as", None)
        if not all(isinstance(n, LocalPostgresNode) for n in topology.pg_nodes.values()):
            raise TopologyError(
                "--drill-backup-tool=pgbackrest runs beside the reference topology's servers: "
                "use --drill-backend=local with --drill-postgres-failover=reference (in Docker "
                "or under Patroni, archive_command is the container's or Patroni's to set)"
            )
        self.run_as = run_as
        self.program = find_pgbackrest()
        self.repos = {n: workdir / f"repo{n}-{region}" for n, region in REPOS.items()}
        self.config = workdir / "pgbackrest.conf"
        self._backups = 0

    # --- set up -------------------------------------------------------------------------

    def start(self) -> PgBackRestBackups:
        """Write the configuration, switch every server's archiving to it, create the stanza."""
        for directory in (self.workdir, *self.repos.values(), self.workdir / "log",
                          self.workdir / "spool", self.workdir / "lock"):  # fmt: skip
            directory.mkdir(parents=True, exist_ok=True)
        primary = self.topology.primary
        lines = ["[global]"]
        for n, path in self.repos.items():
            lines += [
                f"repo{n}-path={path}",
                f"repo{n}-cipher-type=aes-256-cbc",
                f"repo{n}-cipher-pass={secrets.token_urlsafe(24)}",
                f"repo{n}-retention-full-type=time",
                f"repo{n}-retention-full={RETENTION_DAYS[n]}",
            ]
        lines += [
            f"log-path={self.workdir / 'log'}",
            f"lock-path={self.workdir / 'lock'}",
            f"spool-path={self.workdir / 'spool'}",
            "archive-async=y",
            "start-fast=y",
            # What pgBackRest's users run for speed: zstd and two processes (gz and one
            # process, its defaults, backed up at 6 MB/s here: bench/bench_backup_tools.py).
            "compress-type=zst",
            "process-max=2",
            "log-level-console=warn",
            f"[{STANZA}]",
            f"pg1-path={primary.datadir}",  # type: ignore[attr-defined]
            f"pg1-port={primary.port}",
            "pg1-user=postgres",
        ]
        self.config.write_text("\n".join(lines) + "\n")
        self.config.chmod(0o600)
        if self.run_as is not None:
            self.run_as.own(self.workdir)
        for node in self.topology.pg_nodes.values():
            command = (
                f"{self.program} --config={self.config} --stanza={STANZA} "
                f"--pg1-path={node.datadir} archive-push %p"  # type: ignore[attr-defined]
            )
            with psycopg.connect(node.dsn(app="drdrill-pgbackrest"), autocommit=True) as conn:
                conn.execute(f"ALTER SYSTEM SET archive_command = '{command}'")
                conn.execute("SELECT pg_reload_conf()")
        self.run("stanza-create")
        self.record.note(
            "backups by pgBackRest: repo1 in the primary region, repo2 in the DR region, "
            "each encrypted with aes-256-cbc (pgBackRest's cipher)"
        )
        return self

    def run(self, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        """Run ``pgbackrest ARGS`` for the stanza as the server account.

        :raises TopologyError: on a non-zero exit, with pgBackRest's own message.
        """
        argv = [self.program, f"--config={self.config}", f"--stanza={STANZA}", *args]
        if self.run_as is not None:
            argv = ["runuser", "-u", self.run_as.user, "--", *argv]
        done = subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=timeout,
            env={**os.environ, "PGHOST": "127.0.0.1"},
        )  # fmt: skip
        if done.returncode != 0:
            raise TopologyError(
                f"pgbackrest {' '.join(args)} failed (exit {done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-1500:]}; logs in {self.workdir / 'log'}"
            )
        return done

    # --- backing up ---------------------------------------------------------------------

    def base_backup(self) -> list[ToolBackup]:
        """A full backup of the current primary into each repository."""
        self._point_at(self.topology.primary)
        for n in self.repos:
            self.run("backup", "--type=full", f"--repo={n}")
        self._backups += 1
        return list(self.backups())

    def _point_at(self, node: Any) -> None:
        """Back up whichever server is primary now (after a failover, the promoted one)."""
        text = self.config.read_text()
        lines = [
            f"pg1-path={node.datadir}" if line.startswith("pg1-path=") else
            f"pg1-port={node.port}" if line.startswith("pg1-port=") else line
            for line in text.splitlines()
        ]  # fmt: skip
        self.config.write_text("\n".join(lines) + "\n")

    def archive_now(self, timeout: float = 60.0) -> str:
        """Commit a marker, switch WAL, and wait until pgBackRest holds the segment.

        ``pgbackrest check`` switches the WAL segment and waits for it in the archive.
        """
        self._point_at(self.topology.primary)
        with psycopg.connect(self.topology.primary.dsn(app="drdrill-backup"), autocommit=True) as c:
            c.execute("SELECT txid_current()")
        done = self.run(
            "check", f"--archive-timeout={max(1, round(timeout))}", "--log-level-console=info",
            timeout=timeout + 30,
        )  # fmt: skip
        found = [word for word in done.stdout.split() if len(word) == 24 and word.isalnum()]
        return found[-1] if found else "checked"

    def replicate(self) -> Sequence[object]:
        """Nothing to copy: pgBackRest writes every backup and segment to both repositories."""
        return [_Copied(n, ok=bool(list(self._info(n)))) for n in self.repos]

    # --- the catalogue ------------------------------------------------------------------

    def _info(self, repo: int | None = None) -> list[dict[str, Any]]:
        args = ["info", "--output=json"] + ([f"--repo={repo}"] if repo else [])
        stanzas = json.loads(self.run(*args).stdout or "[]")
        return [b for stanza in stanzas for b in stanza.get("backup", [])]

    def backups(self) -> Sequence[ToolBackup]:
        """Every full backup in both repositories, oldest first (``info --output=json``)."""
        found = [
            ToolBackup(
                backup_id=str(b["label"]),
                started=_utc(b["timestamp"]["start"]),
                ended=_utc(b["timestamp"]["stop"]),
                location=f"repo{b['database']['repo-key']}",
                region=REPOS[int(b["database"]["repo-key"])],
                size=int(b.get("info", {}).get("repository", {}).get("delta", 0)),
            )
            for b in self._info()
        ]
        return sorted(found, key=lambda b: b.ended)

    def newest_restorable(self, region: str | None = None) -> dt.datetime | None:
        """The newest backup stop or archived WAL segment in the region's repositories.

        ``info`` names each repository's newest segment but not when it was pushed; the
        segment file's modification time in the repository is that moment.
        """
        stamps = [b.ended for b in self.backups() if region in (None, b.region)]
        args = ["info", "--output=json"]
        for stanza in json.loads(self.run(*args).stdout or "[]"):
            for archive in stanza.get("archive", []):
                n = int(archive.get("database", {}).get("repo-key", 0))
                newest = archive.get("max")
                if n not in self.repos or not newest or region not in (None, REPOS[n]):
                    continue
                pattern = f"archive/{STANZA}/*/{newest[:16]}/{newest}-*"
                stamps += [
                    dt.datetime.fromtimestamp(found.stat().st_mtime, tz=dt.UTC)
                    for found in self.repos[n].glob(pattern)
                ]
        return max(stamps, default=None)

    def verify(self) -> Sequence[Finding]:
        """``pgbackrest verify`` of each repository; each problem it names is a finding."""
        findings = []
        for n in self.repos:
            argv = ["verify", f"--repo={n}", "--log-level-console=detail"]
            try:
                done = self.run(*argv)
                text = done.stdout + done.stderr
            except TopologyError as exc:
                text = str(exc)
            for line in text.splitlines():
                if "invalid" in line.lower() or "missing" in line.lower() or "ERROR" in line:
                    findings.append(Finding(f"repo{n}", _path_in(line), line.strip()))
        return findings

    def retention(self) -> Retention:
        """``repoN-retention-full`` of the configuration file, in days (type ``time``)."""
        settings = dict(
            line.split("=", 1) for line in self.config.read_text().splitlines() if "=" in line
        )

        def days(n: int) -> float | None:
            if settings.get(f"repo{n}-retention-full-type") != "time":
                return None  # a count of backups says nothing about how long they are kept
            value = settings.get(f"repo{n}-retention-full")
            return float(value) if value else None

        local, offsite = (days(n) for n in REPOS)
        full, remote = (f"repo{n}-retention-full" for n in REPOS)
        return Retention(
            full_days=local, offsite_days=offsite, incremental_days=None, pitr_days=local,
            settings={
                "full": f"{full} (with {full}-type=time) in {self.config}",
                "offsite": f"{remote} (with {remote}-type=time) in {self.config}",
                "incremental": "none: the drills take full backups only (pgBackRest expires "
                "differential and incremental backups with their full backup)",
                "pitr": f"{full}: WAL is kept as long as the full backups it restores from",
            },
        )  # fmt: skip

    # --- restoring ----------------------------------------------------------------------

    def repository(self, region: str) -> Path:
        """``repoN-path`` of the region's repository."""
        return self.repos[_REPO_OF[region]]

    def restore(
        self, target: dt.datetime, workdir: Path, record: DrillRecord, *, region: str | None = None
    ) -> RestoreResult:
        """``pgbackrest restore --type=time`` into a new server, timed by phase."""
        from pytest_drdrill.backup.pitr import RestoreResult, wait_promoted
        from pytest_drdrill.topology.postgres import LocalPostgresNode

        if region is not None:
            repo = _REPO_OF[region]
        else:
            repo = 1 if self.repos[1].exists() and any(self.repos[1].iterdir()) else 2
        # pgBackRest keeps backup times in whole seconds and wants one that stopped before
        # the target's second.
        usable = [
            b
            for b in self.backups()
            if b.location == f"repo{repo}" and b.ended + dt.timedelta(seconds=1) <= target
        ]
        if not usable:
            raise TopologyError(
                f"pgBackRest repo{repo} holds no full backup that stopped at least a second "
                f"before {target.isoformat()}: take one (base_backup) before the target"
            )
        datadir = workdir / "data"
        workdir.mkdir(parents=True, exist_ok=True)
        datadir.mkdir(mode=0o700)
        if self.run_as is not None:
            self.run_as.own(workdir)
        phases: list[Phase] = []
        started = timing.monotonic()
        stamp = target.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "+00"
        self.run(
            "restore", f"--repo={repo}", f"--pg1-path={datadir}", "--type=time",
            f"--target={stamp}", "--target-action=promote",
        )  # fmt: skip
        detail = f"pgbackrest restore from repo{repo} ({REPOS[repo]} region)"
        phases.append(Phase("restore", started, timing.monotonic(), ok=True, detail=detail))
        primary = self.topology.primary
        node = LocalPostgresNode(
            "pg-restored", REPOS[repo], datadir, primary.install,  # type: ignore[attr-defined]
            self.run_as, log=workdir / "pg-restored.log",
        )  # fmt: skip
        started = timing.monotonic()
        node.start(timeout=300, extra={"archive_mode": "off"})
        phases.append(Phase("start", started, timing.monotonic(), ok=True,
                            detail="accepting connections in archive recovery"))  # fmt: skip
        started = timing.monotonic()
        wait_promoted(node, target, timeout=300)
        phases.append(Phase("replay", started, timing.monotonic(), ok=True,
                            detail=f"replayed to {target.isoformat()} and promoted"))  # fmt: skip
        size = sum(f.stat().st_size for f in self.repos[repo].rglob("*") if f.is_file())
        return RestoreResult(
            node, usable[-1], 0, size, _tree_size(datadir), tuple(phases),
            source=f"pgbackrest repo{repo} ({self.repos[repo]})",
        )  # fmt: skip

    def close(self) -> None:
        """Nothing runs between commands; the repositories go with the drill's data root."""


class _Copied:
    """What :meth:`PgBackRestBackups.replicate` reports per repository."""

    def __init__(self, repo: int, *, ok: bool) -> None:
        self.repo = repo
        self.ok = ok

    def __repr__(self) -> str:
        return f"<repo{self.repo} holds backups: {self.ok}>"


def _utc(stamp: int | float) -> dt.datetime:
    return dt.datetime.fromtimestamp(stamp, tz=dt.UTC)


def _path_in(line: str) -> str:
    """The first path-like word of a pgBackRest message, or the whole line."""
    words = [w.strip("'\",:") for w in line.split() if "/" in w]
    return words[0] if words else line.strip()


def _tree_size(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
