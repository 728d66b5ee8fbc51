"""A real drill's figures pushed to a real Pushgateway and read back from its /metrics.

The Pushgateway is Debian's ``prometheus-pushgateway`` (installed by scripts/bootstrap),
started on a free loopback port with its own persistence file. Without the binary the
tests are skipped, unless ``DRDRILL_REQUIRE_PUSHGATEWAY=1`` (CI) turns the skip into a
failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

REQUIRE_ENV = "DRDRILL_REQUIRE_PUSHGATEWAY"
BINARY = "prometheus-pushgateway"

DRILL = """
import pytest

@pytest.mark.drdrill(cadence="daily", tier="tier_1_critical", scenario="pushed-crash")
def test_pushed_crash(drdrill):
    with drdrill.running():
        drdrill.faults.crash(drdrill.topology.primary)
        drdrill.await_recovery()
    drdrill.conclude()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode("utf-8"))


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """A real Pushgateway on 127.0.0.1, killed at teardown; yields its URL."""
    binary = shutil.which(BINARY)
    if binary is None:
        message = (
            f"{BINARY} is not installed: apt-get install -y prometheus-pushgateway "
            "(scripts/bootstrap installs it)"
        )
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message} ({REQUIRE_ENV}=1 forbids skipping)", pytrace=False)
        pytest.skip(message)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "pushgateway.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--web.listen-address=127.0.0.1:{port}",
            f"--persistence.file={tmp_path / 'pushgateway.db'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                _get(f"{url}/-/ready")
                break
            except (urllib.error.URLError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    output = (tmp_path / "pushgateway.log").read_text(errors="replace")
                    pytest.fail(f"{BINARY} did not become ready on {url}:\n{output}")
                time.sleep(0.05)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _the_run(pytester: pytest.Pytester) -> tuple[Path, dict]:
    (run_dir,) = [p for p in (pytester.path / "reports").iterdir() if p.is_dir()]
    return run_dir, json.loads((run_dir / "drill.json").read_text())


def test_drill_figures_read_back_from_the_pushgateway(pytester, drill_args, pushgateway):
    """The RTO the Pushgateway serves is the one in drill.json, under job drdrill."""
    pytester.makepyfile(test_drill=DRILL)
    result = pytester.runpytest(*drill_args, f"--drill-pushgateway={pushgateway}")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*could not push*")
    run_dir, document = _the_run(pytester)
    (drill,) = document["drills"]
    assert drill["rto_seconds"] is not None and drill["rto_seconds"] > 0

    samples = [
        sample
        for family in text_string_to_metric_families(_get(f"{pushgateway}/metrics"))
        for sample in family.samples
    ]
    rto = [s for s in samples if s.name == "drdrill_drill_rto_seconds"]
    assert len(rto) == 1
    assert rto[0].labels == {
        "job": "drdrill",
        "instance": "",
        "cadence": "monthly",
        "backend": "local",
        "drill": drill["name"],
        "scenario": "pushed-crash",
        "tier": "tier_1_critical",
    }
    assert rto[0].value == drill["rto_seconds"]
    by_name = {(s.name, s.labels.get("phase"), s.labels.get("verdict")): s.value for s in samples}
    assert by_name["drdrill_drill_verdict", None, drill["verdict"]] == 1
    detection = next(p["seconds"] for p in drill["phases"] if p["name"] == "detection")
    assert by_name["drdrill_phase_duration_seconds", "detection", None] == detection
    # This run passed tier_1_critical: its last pass is the run's start.
    since = next(s for s in samples if s.name == "drdrill_tier_since_last_pass_seconds")
    assert since.labels["tier"] == "tier_1_critical"
    assert 0 < since.value < 600
    # The pushed figures are the bundle's drdrill.prom, which the checksums cover.
    assert "drdrill.prom" in (run_dir / "SHA256SUMS").read_text()


def test_unreachable_pushgateway_warns_and_loses_no_report(pytester, drill_args):
    """A Pushgateway that refuses: a warning naming URL and option, every report written."""
    url = f"http://127.0.0.1:{_free_port()}"
    pytester.makepyfile(test_drill=DRILL)
    result = pytester.runpytest(*drill_args, f"--drill-pushgateway={url}")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            f"drdrill: WARNING: could not push the run's figures to the Pushgateway at {url} "
            "(--drill-pushgateway / ini drill_pushgateway): *refused*",
        ]
    )
    run_dir, document = _the_run(pytester)
    names = {p.name for p in run_dir.iterdir()}
    assert {"drill.json", "drill-junit.xml", "report.html", "drdrill.prom", "SHA256SUMS"} <= names
    assert (pytester.path / "reports" / "history.jsonl").is_file()
    assert document["drills"][0]["verdict"] == "pass"
