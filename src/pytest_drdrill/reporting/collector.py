"""The drill reporter: collects every drill's result and writes the run's report bundle.

A stateful plugin object kept in ``config.stash`` (as pytest's own ``LogXML``). Under
pytest-xdist every worker has one too, which collects its drills' results and hands them
(and writers such as Chaos Toolkit journals) to the controller's at the end; only the
controller writes the bundle, one for the whole run.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import functools
import pickle
import platform
import subprocess
import uuid
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pytest

from pytest_drdrill import timing
from pytest_drdrill.config import backend_name
from pytest_drdrill.durations import format_duration
from pytest_drdrill.results import RunInfo, Verdict

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pytest_drdrill.config import DrillConfig
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.reporting.live import LiveProgress
    from pytest_drdrill.reporting.writer import ReportWriter
    from pytest_drdrill.results import DrillResult, RpoResult, RtoResult
    from pytest_drdrill.targets import Targets


def _git_sha(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) == 40 else None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def _detail_lines(result: DrillResult) -> list[str]:
    """Lines under a drill's summary line: services hit by the fault, functions not passing.

    A service the fault left alone (no outage, nothing lost) gets no line: a drill aimed
    at one service adds one line, not one per service in the topology.
    """
    rows: list[tuple[str, RtoResult | None, RpoResult | None, Verdict]] = [
        (s.service, s.rto, s.rpo, s.verdict)
        for s in result.services
        if (s.rto is not None and s.rto.effect_seen) or (s.rpo is not None and s.rpo.lost_writes)
    ]
    rows += [
        (f"function {f.function}", f.rto, f.rpo, f.verdict)
        for f in result.functions
        if f.verdict is not Verdict.PASS
    ]
    if not rows:
        return []
    width = max(len(label) for label, *_ in rows)
    lines = []
    for label, rto, rpo, verdict in rows:
        seconds = None if rto is None else rto.seconds
        if seconds is not None:
            rto_text = format_duration(seconds)
        elif rto is not None and rto.effect_seen:
            rto_text = "not recovered"
        else:
            rto_text = "-"
        lost = "-" if rpo is None else str(rpo.lost_writes)
        suffix = "" if verdict is Verdict.PASS else f"  {verdict.value.upper()}"
        lines.append(f"    {label:<{width}}  RTO {rto_text}  lost {lost}{suffix}")
    return lines


#: ``workerinput`` key: the controller's run id, given to every xdist worker.
WORKER_RUN_ID = "drdrill_run_id"
#: ``workeroutput`` key: a worker's drill results and extra writers, pickled.
WORKER_RESULTS = "drdrill_results"


class DrillReporter:
    """Collects :class:`DrillResult` objects and has every report writer write the bundle.

    :param config: the pytest config.
    :param drill_config: the validated drill settings.
    :param targets: the targets the run is judged against (for the MTD justification).
    """

    def __init__(
        self, config: pytest.Config, drill_config: DrillConfig, targets: Targets | None = None
    ) -> None:
        self.config = config
        self.drill_config = drill_config
        self.targets = targets
        self.anchor = timing.anchor()
        stamp = dt.datetime.fromtimestamp(self.anchor.wall, tz=dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        # An xdist worker's drills belong to its controller's run (its notifications file,
        # its incident ids); the controller writes the one bundle.
        given = getattr(config, "workerinput", {}).get(WORKER_RUN_ID)
        self.run_id = given or f"{stamp}-{uuid.uuid4().hex[:6]}"
        self.results: list[DrillResult] = []
        self.versions: dict[str, str] = {
            "pytest-drdrill": _version("pytest-drdrill"),
            "python": platform.python_version(),
            "pytest": _version("pytest"),
            "psycopg": _version("psycopg"),
        }
        self.written: list[tuple[str, Path]] = []
        self.reaped: list[str] = []
        self.regressions: list[dict[str, object]] = []
        self.history_problems: list[str] = []
        self.cadence_problems: list[str] = []
        #: What a writer could not deliver (a Pushgateway down, say), shown as warnings.
        self.delivery_problems: list[str] = []
        #: Writers registered by extensions, run with the bundle's own in rank order.
        self.writers: list[ReportWriter] = []

    @functools.cached_property
    def live(self) -> LiveProgress | None:
        """Live drill progress when pytest writes to a terminal, else ``None``."""
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is None or not terminal.isatty or self.config.get_verbosity() < 0:
            return None
        from rich.console import Console

        from pytest_drdrill.reporting.live import LiveProgress

        capture = self.config.pluginmanager.get_plugin("capturemanager")

        @contextlib.contextmanager
        def guard() -> Iterator[None]:
            suspended = (
                capture.global_and_fixture_disabled()
                if capture is not None
                else contextlib.nullcontext()
            )
            with suspended:
                terminal.ensure_newline()
                yield

        return LiveProgress(Console(force_terminal=True), guard)

    def watch(self, record: DrillRecord) -> None:
        """Show ``record``'s faults and phases live, when the output is a terminal."""
        if self.live is not None:
            self.live.watch(record)

    def add(self, result: DrillResult) -> None:
        """Add one drill's result to the run."""
        self.results.append(result)

    def add_writer(self, writer: ReportWriter) -> None:
        """Have ``writer`` write its files into the run's bundle, with the bundle's own.

        .. versionadded:: 0.5
        """
        self.writers.append(writer)

    def run_info(self) -> RunInfo:
        """The run's metadata for reports."""
        return RunInfo(
            run_id=self.run_id,
            anchor=self.anchor,
            git_sha=_git_sha(self.config.rootpath),
            versions=dict(self.versions),
            backend=backend_name(self.drill_config),
            cadence=self.drill_config.cadence,
        )

    # --- pytest-xdist: workers measure, the controller writes one bundle ---------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Give a starting xdist worker this run's id."""
        node.workerinput[WORKER_RUN_ID] = self.run_id

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """Take a finished worker's results and writers (journals) into the run."""
        payload = getattr(node, "workeroutput", {}).get(WORKER_RESULTS)
        if not payload:
            return
        # Pickled by this plugin's own worker in this same run; never read from elsewhere.
        results, writers = pickle.loads(base64.b64decode(payload))  # noqa: S301
        self.results.extend(results)
        self.writers.extend(writers)
        # CLOCK_MONOTONIC is the machine's: every worker's stamps share the controller's
        # anchor, so the drills keep the order they ran in.
        self.results.sort(key=lambda result: result.started_at)

    def _hand_to_controller(self) -> bool:
        """On an xdist worker, pass results and writers to the controller; ``True`` there."""
        output = getattr(self.config, "workeroutput", None)
        if output is None:
            return False
        output[WORKER_RESULTS] = base64.b64encode(
            pickle.dumps((self.results, self.writers))
        ).decode("ascii")
        return True

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the report bundle, update the run history, check the drill cadence.

        Every :class:`~pytest_drdrill.reporting.writer.ReportWriter` writes from the same
        :class:`~pytest_drdrill.reporting.writer.RunResults`, in order of importance (the
        writers' ranks), so that a failure of a later writer (the HTML renderer, say)
        never costs the measurements: ``drill.json`` first, the drill JUnit file, the
        journals of experiment drills, the HTML report, the MTD justification, the
        notifications, the history line, and last the checksums of everything written.
        """
        if self._hand_to_controller():
            return
        if not self.results:
            if self.drill_config.enforce_cadence:
                self._check_cadence(session, [])
            return
        from pytest_drdrill.reporting import evidence
        from pytest_drdrill.reporting.history import HISTORY_FILENAME
        from pytest_drdrill.reporting.writer import RunResults
        from pytest_drdrill.reporting.writers import default_writers

        directory = self.drill_config.report_dir / self.run_id
        directory.mkdir(parents=True, exist_ok=True)
        run = self.run_info()
        results = RunResults(
            directory=directory,
            run=run,
            drills=tuple(self.results),
            document=self._document(run),
            history_file=self.drill_config.report_dir / HISTORY_FILENAME,
            targets=self.targets,
            monitor={
                "interval": self.drill_config.health_interval,
                "timeout": self.drill_config.health_timeout,
                "threshold": self.drill_config.failure_threshold,
            },
        )
        self.written = []
        configured = default_writers(
            pushgateway=self.drill_config.pushgateway,
            otlp_endpoint=self.drill_config.otlp_endpoint,
        )
        writers = [*configured, *self.writers]
        for writer in sorted(writers, key=lambda w: w.rank):
            self.written += writer.write(results)
            self.delivery_problems += getattr(writer, "problems", [])
        self.history_problems = list(results.earlier.problems)
        self.regressions = list(results.trend["regressions"])
        names = [
            path.relative_to(directory).as_posix()
            for _, path in self.written
            if path.is_relative_to(directory)
        ]
        self.written.append(("checksums", evidence.write_checksums(directory, names)))
        if self.drill_config.enforce_cadence:
            self._check_cadence(session, results.entries)

    def _document(self, run: RunInfo) -> dict[str, Any]:
        """The run's ``drill.json`` document: the results, the run's config and versions."""
        from pytest_drdrill.reporting import evidence
        from pytest_drdrill.reporting.drill_json import run_to_dict

        document = run_to_dict(run, self.results)
        document["run"]["config_hash"] = self.config_hash()
        packages = evidence.package_versions(
            ["pluggy", "redis", "boto3", "moto", "junit-xml", "jinja2", "matplotlib"]
        )
        # "redis" already names the Redis server's version; the client library is redis-py.
        packages["redis-py"] = packages.pop("redis")
        document["run"]["versions"].update(packages)
        document["run"]["repeat"] = self.drill_config.repeat
        dc = self.drill_config
        document["run"]["postgres_failover"] = dc.postgres_failover
        settings = {
            "patroni": dc.patroni_config,
            "repmgr": dc.repmgr_config,
            "pg_auto_failover": dc.pg_auto_failover_config,
        }.get(dc.postgres_failover)
        document["run"]["postgres_failover_settings"] = str(settings) if settings else None
        document["run"]["backup_tool"] = dc.backup_tool
        return document

    def config_hash(self) -> str:
        """A hash of what decides a run's verdicts: the targets file and the drill options."""
        from pytest_drdrill.reporting.evidence import config_hash

        options = {
            key: value
            for key, value in dataclasses.asdict(self.drill_config).items()
            if key not in ("report_dir", "targets", "notify")
        }
        files = [self.drill_config.targets] if self.drill_config.targets.is_file() else []
        return config_hash(files, options)

    def _check_cadence(self, session: pytest.Session, entries: list[dict[str, object]]) -> None:
        from pytest_drdrill.reporting import history, trend

        if self.targets is None or not self.targets.drill_schedule:
            self.cadence_problems = [
                "--drill-enforce-cadence: the targets file has no drill_schedule section; add "
                "one such as 'drill_schedule: {tier_1_critical: monthly}'"
            ]
        else:
            if not entries:
                path = self.drill_config.report_dir / history.HISTORY_FILENAME
                entries = list(history.load_history(path).entries)
            violations = trend.check_cadence(
                entries, self.targets.drill_schedule, now=timing.wall()
            )
            self.cadence_problems = [v.message for v in violations]
        if self.cadence_problems:
            from pytest import ExitCode

            session.exitstatus = ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Print each drill's verdict and the paths of the reports."""
        for line in self.reaped:
            terminalreporter.write_line(
                f"drdrill: removed leftover of a killed run: {line}", yellow=True
            )
        for problem in self.cadence_problems:
            terminalreporter.write_line(f"drdrill: CADENCE: {problem}", red=True, bold=True)
        if not self.results:
            if not self.drill_config.dry_run:  # a dry run printed its plan instead
                terminalreporter.write_sep("-", "drdrill: no drill produced a result")
            return
        terminalreporter.write_sep("-", f"drdrill run {self.run_id}")
        if self.live is not None:
            self.live.summary(self.results)
        width = max(len(r.scenario) for r in self.results)
        for r in self.results:
            rto = format_duration(r.rto.seconds) if r.rto and r.rto.seconds is not None else "-"
            lost = str(r.rpo.lost_writes) if r.rpo is not None else "-"
            target = r.target.name if r.target else "-"
            markup = {
                Verdict.PASS: {"green": True},
                Verdict.WARN: {"yellow": True},
                Verdict.FAIL: {"red": True},
                Verdict.INCONCLUSIVE: {"purple": True},
                Verdict.ABORTED: {"red": True},
            }[r.verdict]
            label = r.verdict.value.upper()
            if r.negative_control:
                # Red is the expected, good outcome of a negative control.
                markup = {"green": True} if r.as_expected else {"red": True}
                label = "RED (ok)" if r.as_expected else "NOT RED"
            details = [] if r.negative_control else _detail_lines(r)
            reason = not r.negative_control and r.verdict is not Verdict.PASS
            if self.live is not None:
                # The table above has the verdict line; only details follow, if any.
                if details or reason:
                    terminalreporter.write_line(f"{r.scenario}:")
            else:
                terminalreporter.write(f"{label:<13}", bold=True, **markup)
                terminalreporter.write_line(
                    f"{r.scenario:<{width}}  RTO {rto:<9} lost {lost:<5} target {target}"
                    + ("  [negative control: must go red]" if r.negative_control else "")
                )
            if reason:
                terminalreporter.write_line(f"             {r.reason}")
            for line in details:
                terminalreporter.write_line(line)
        for kind, path in self.written:
            terminalreporter.write_line(f"generated drdrill {kind}: {path}")
        for regression in self.regressions:
            terminalreporter.write_line(
                f"drdrill: RTO regression in {regression['scenario']}: {regression['detail']}",
                yellow=True,
                bold=True,
            )
        for problem in self.history_problems:
            terminalreporter.write_line(f"drdrill: history: {problem}", yellow=True)
        for problem in self.delivery_problems:
            terminalreporter.write_line(f"drdrill: WARNING: {problem}", red=True, bold=True)
