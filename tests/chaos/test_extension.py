"""The Chaos Toolkit side without servers: running, judging journals, discovery, errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from chaoslib.experiment import run_experiment

import pytest_drdrill
from pytest_drdrill.chaostoolkit import actions, experiment, probes
from pytest_drdrill.chaostoolkit._context import NoDrillRunning


def stdlib_experiment(tmp_path: Path, *, probe: str) -> dict:
    """An experiment of standard-library providers.

    Its steady-state probe checks that a directory exists: ``tmp_path`` (``probe="met"``),
    a missing one (``"missed"``: a value outside the tolerance), or stats a missing file
    (``"error"``). The method fails (removing a missing file); the rollback creates
    ``rolled-back``.
    """
    provider = {
        "met": {"module": "os.path", "func": "isdir", "arguments": {"s": str(tmp_path)}},
        "missed": {"module": "os.path", "func": "isdir", "arguments": {"s": str(tmp_path / "x")}},
        "error": {"module": "os", "func": "stat", "arguments": {"path": str(tmp_path / "x")}},
    }[probe]
    return {
        "title": "rollbacks",
        "description": "does the rollback run?",
        "steady-state-hypothesis": {
            "title": "the file is there",
            "probes": [
                {
                    "type": "probe",
                    "name": "check-the-files",
                    "tolerance": True,
                    "provider": {"type": "python", **provider},
                }
            ],
        },
        "method": [
            {
                "type": "action",
                "name": "remove-a-missing-file",
                "provider": {"type": "python", "module": "os", "func": "remove",
                             "arguments": {"path": str(tmp_path / "missing")}},
            }
        ],
        "rollbacks": [
            {
                "type": "action",
                "name": "mark-rolled-back",
                "provider": {"type": "python", "module": "os", "func": "mkdir",
                             "arguments": {"path": str(tmp_path / "rolled-back")}},
            }
        ],
    }  # fmt: skip


def test_rollbacks_run_when_the_steady_state_fails(tmp_path: Path) -> None:
    """A failed steady state skips the method; the drill runner still plays the rollbacks."""
    document = stdlib_experiment(tmp_path, probe="error")
    journal = experiment.run(document)
    assert journal["status"] == "failed"
    assert journal["run"] == []
    assert [r["activity"]["name"] for r in journal["rollbacks"]] == ["mark-rolled-back"]
    assert (tmp_path / "rolled-back").is_dir()
    status, probe = experiment.problems(journal)
    assert status == "chaoslib ended the experiment with status 'failed'"
    assert probe.startswith("steady-state probe 'check-the-files' before the method failed: ")
    assert "FileNotFoundError" in probe


def test_chaoslib_default_strategy_would_skip_them(tmp_path: Path) -> None:
    """The same experiment under chaoslib's default strategy leaves the rollback unplayed."""
    document = stdlib_experiment(tmp_path, probe="error")
    journal = run_experiment(document, settings={})
    assert journal["status"] == "failed"
    assert journal["rollbacks"] == []
    assert not (tmp_path / "rolled-back").exists()


def test_a_failed_method_activity_is_a_problem_and_rollbacks_run(tmp_path: Path) -> None:
    """The method's action fails: chaoslib calls the run completed, the drill names the failure."""
    document = stdlib_experiment(tmp_path, probe="met")
    journal = experiment.run(document)
    assert journal["status"] == "completed"
    assert (tmp_path / "rolled-back").is_dir()
    (problem,) = experiment.problems(journal)
    assert problem.startswith("method activity 'remove-a-missing-file' failed: ")
    assert "FileNotFoundError" in problem


def test_a_steady_state_outside_its_tolerance_is_a_problem(tmp_path: Path) -> None:
    """A run whose gate was not met is "completed" to chaoslib, a problem to the drill."""
    document = stdlib_experiment(tmp_path, probe="missed")
    journal = experiment.run(document)
    assert (journal["status"], journal["deviated"], journal["run"]) == ("completed", False, [])
    assert experiment.problems(journal) == [
        "steady state before the method not met: probe 'check-the-files' returned False, "
        "outside its tolerance True"
    ]


def test_measurement_without_a_fault() -> None:
    """Nothing injected, nothing measured: the journal says so instead of inventing figures."""
    assert experiment.measurement(None) == {
        "verdict": None,
        "reason": "no fault was injected: nothing was measured",
    }


@pytest.mark.parametrize(
    "call",
    [
        lambda: actions.crash_primary("postgres"),
        lambda: actions.heal_all(),
        lambda: probes.writes_acknowledged(),
        lambda: probes.serving_node("redis"),
    ],
    ids=["crash_primary", "heal_all", "writes_acknowledged", "serving_node"],
)
def test_activities_outside_a_drill_say_how_to_get_one(call) -> None:
    """Called with no drill running, an activity names the control and pytest as remedies."""
    with pytest.raises(NoDrillRunning, match="no drill is running") as excinfo:
        call()
    assert "pytest_drdrill.chaostoolkit.control" in str(excinfo.value)
    assert "--drill=CADENCE" in str(excinfo.value)


def _activities(discovery: dict) -> dict[str, dict]:
    return {a["name"]: a for a in discovery["activities"]}


def test_discover_lists_every_exported_activity_with_types() -> None:
    """Chaos Toolkit's entry point lists actions and probes, typed, with their docstrings."""
    found = _activities(pytest_drdrill.discover(discover_system=False))
    assert set(found) == {*actions.__all__, *probes.__all__}
    assert {found[name]["type"] for name in actions.__all__} == {"action"}
    assert {found[name]["type"] for name in probes.__all__} == {"probe"}
    assert found["crash_node"]["arguments"] == [{"name": "node", "type": "string"}]
    assert found["add_latency"]["arguments"] == [
        {"name": "node", "type": "string"},
        {"name": "ms", "type": "number"},
        {"name": "jitter", "default": 0, "type": "number"},
    ]
    assert found["partition"]["arguments"][0] == {"name": "a", "type": "list"}
    assert found["writes_acknowledged"]["return_type"] == "boolean"
    assert found["replication_lag_bytes"]["return_type"] == "integer"
    assert found["measured_rto_seconds"]["return_type"] == "number"
    assert all(activity["doc"] for activity in found.values())


def test_chaos_discover_cli_lists_our_activities(tmp_path: Path, chaos_command) -> None:
    """`chaos discover --no-install pytest-drdrill` finds the extension in the environment."""
    out = tmp_path / "discovery.json"
    command = chaos_command(
        "discover", "--no-install", "--no-system-info", "--discovery-path", str(out),
        "pytest-drdrill",
    )  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    discovery = json.loads(out.read_text())
    assert discovery["extension"]["name"] == "pytest-drdrill"
    assert discovery["system"] is None
    found = _activities(discovery)
    assert found["crash_primary"]["mod"] == "pytest_drdrill.chaostoolkit.actions"
    assert found["lost_writes"]["mod"] == "pytest_drdrill.chaostoolkit.probes"
    assert found["service_available"]["return_type"] == "boolean"
