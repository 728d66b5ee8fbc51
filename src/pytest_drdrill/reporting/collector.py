"""The drill reporter: collects every drill's result and writes the run's report bundle.

A stateful plugin object kept in ``config.stash`` (as pytest's own ``LogXML``), created
only on the controller, never on xdist workers.
"""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
import uuid
from importlib import metadata
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.config import backend_name
from pytest_drdrill.durations import format_duration
from pytest_drdrill.results import RunInfo, Verdict

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from pytest_drdrill.config import DrillConfig
    from pytest_drdrill.results import DrillResult, RpoResult, RtoResult


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


class DrillReporter:
    """Collects :class:`DrillResult` objects and writes ``drill.json`` and the drill JUnit file.

    :param config: the pytest config.
    :param drill_config: the validated drill settings.
    """

    def __init__(self, config: pytest.Config, drill_config: DrillConfig) -> None:
        self.config = config
        self.drill_config = drill_config
        self.anchor = timing.anchor()
        stamp = dt.datetime.fromtimestamp(self.anchor.wall, tz=dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        self.run_id = f"{stamp}-{uuid.uuid4().hex[:6]}"
        self.results: list[DrillResult] = []
        self.versions: dict[str, str] = {
            "pytest-drdrill": _version("pytest-drdrill"),
            "python": platform.python_version(),
            "pytest": _version("pytest"),
            "psycopg": _version("psycopg"),
        }
        self.written: list[tuple[str, Path]] = []
        self.reaped: list[str] = []

    def add(self, result: DrillResult) -> None:
        """Add one drill's result to the run."""
        self.results.append(result)

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

    def pytest_sessionfinish(self) -> None:
        """Write the report bundle when at least one drill produced a result."""
        if not self.results:
            return
        from pytest_drdrill.reporting.json import write_json
        from pytest_drdrill.reporting.junit import write_junit

        directory = self.drill_config.report_dir / self.run_id
        directory.mkdir(parents=True, exist_ok=True)
        run = self.run_info()
        self.written = [
            ("json", write_json(directory, run, self.results)),
            ("junit", write_junit(directory, run, self.results)),
        ]

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Print each drill's verdict and the paths of the reports."""
        for line in self.reaped:
            terminalreporter.write_line(
                f"drdrill: removed leftover of a killed run: {line}", yellow=True
            )
        if not self.results:
            terminalreporter.write_sep("-", "drdrill: no drill produced a result")
            return
        terminalreporter.write_sep("-", f"drdrill run {self.run_id}")
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
            }[r.verdict]
            terminalreporter.write(f"{r.verdict.value.upper():<13}", bold=True, **markup)
            terminalreporter.write_line(
                f"{r.scenario:<{width}}  RTO {rto:<9} lost {lost:<5} target {target}"
                + ("  [negative control]" if r.negative_control else "")
            )
            if r.verdict is not Verdict.PASS:
                terminalreporter.write_line(f"             {r.reason}")
            for line in _detail_lines(r):
                terminalreporter.write_line(line)
        for kind, path in self.written:
            terminalreporter.write_line(f"generated drdrill {kind}: {path}")
