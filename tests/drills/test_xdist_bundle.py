"""``-n 2``: drills in two xdist workers, each with its own topology, one bundle for the run.

A drill and a Chaos Toolkit experiment run in separate workers; the controller's bundle
must hold both results (drill.json, the drill JUnit file, the HTML and MTD documents),
the experiment's journal (lost before: the worker's journal writer never reached the
controller), and checksums covering all of it, in a single run directory.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest.importorskip("xdist", reason="pip install pytest-xdist (the test extra)")

ROOT = Path(__file__).resolve().parents[2]

DRILL = """
import pytest

@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", scenario="xdist-crash")
def test_crash(drdrill):
    with drdrill.running():
        drdrill.faults.crash(drdrill.topology.primary)
        drdrill.await_recovery()
    drdrill.conclude()
"""


def test_two_workers_write_one_complete_bundle(
    pytester: pytest.Pytester, drill_args: list[str]
) -> None:
    pytester.makepyfile(test_drill=DRILL)
    shutil.copy(ROOT / "scenarios" / "experiments" / "experiment-primary-crash.json", pytester.path)
    result = pytester.runpytest_subprocess(*drill_args, "-n", "2")
    result.assert_outcomes(passed=2)
    (run,) = (pytester.path / "reports").glob("*/drill.json")
    directory = run.parent
    document = json.loads(run.read_text())
    scenarios = sorted(d["scenario"] for d in document["drills"])
    assert scenarios == ["chaos-primary-crash", "xdist-crash"], scenarios
    assert all(d["verdict"] == "pass" for d in document["drills"])
    cases = ET.parse(directory / "drill-junit.xml").getroot().iter("testcase")
    assert len(list(cases)) == 2
    (journal,) = (directory / "journals").glob("*.json")
    assert json.loads(journal.read_text())["status"] == "completed"
    summed = (directory / "SHA256SUMS").read_text()
    assert f"journals/{journal.name}" in summed and "drill.json" in summed
    for name in ("report.html", "mtd-justification.md"):
        text = (directory / name).read_text()
        assert "xdist-crash" in text and "chaos-primary-crash" in text, name
