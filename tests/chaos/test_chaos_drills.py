"""Chaos Toolkit experiments run for real: by pytest as drills, and by `chaos run` alone.

Heavy: each drill starts the local two-region topology (run under the heavy-run lock).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "scenarios" / "experiments"
TARGETS = ROOT / "fixtures" / "targets.yaml"

pytestmark = pytest.mark.usefixtures("needs_postgres")

ACTIONS = "pytest_drdrill.chaostoolkit.actions"
PROBES = "pytest_drdrill.chaostoolkit.probes"


def activity(kind: str, name: str, func: str, **arguments: object) -> dict:
    """A python-provider activity of pytest-drdrill's."""
    module = ACTIONS if kind == "action" else PROBES
    provider = {"type": "python", "module": module, "func": func, "arguments": arguments}
    return {"type": kind, "name": name, "provider": provider}


def drill(scenario: str, method: list, *, probes: tuple = (), observe: str = "10s") -> dict:
    """A monthly tier-1 experiment drill whose rollback heals every fault."""
    document = {
        "title": scenario,
        "description": f"the {scenario} variant",
        "extensions": [{"name": "drdrill", "tier": "tier_1_critical", "scenario": scenario,
                        "observe": observe}],
        "method": method,
        "rollbacks": [activity("action", "heal-every-fault", "heal_all")],
    }  # fmt: skip
    if probes:
        document["steady-state-hypothesis"] = {"title": "steady", "probes": list(probes)}
    return document


CRASH_AND_WAIT = [
    activity("action", "kill-the-primary", "crash_primary", service="postgres"),
    activity("action", "wait", "await_recovery"),
]

# Recovery "disabled": the failover claims success for this one scenario and does nothing.
CLAIMS_WITHOUT_RECOVERING = """
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_drdrill_failover(service, topology, record, detection):
    if record.scenario == "chaos-no-recovery":
        print(f"HOOK: {service} failover claimed, nothing done")
        return "pg-sync"
    return None

@pytest.hookimpl(tryfirst=True)
def pytest_drdrill_region_failover(topology, record, detection):
    if record.scenario == "chaos-no-recovery":
        return "dr"
    return None
"""


def journal_of(pytester: pytest.Pytester, name: str) -> dict:
    """The journal kept in the run's report bundle for drill ``name``."""
    (path,) = (pytester.path / "reports").glob(f"*/journals/{name}.json")
    return json.loads(path.read_text())


def test_experiments_run_by_pytest_are_judged_on_measured_rto_and_rpo(
    pytester: pytest.Pytester, drill_args: list[str]
) -> None:
    """The shipped experiments pass as drills; broken variants fail, each for its own reason.

    - ``chaos-no-recovery``: chaoslib sees nothing wrong (no steady state to miss), but
      the failover only claims success: red on the RTO measured from the client.
    - ``chaos-broken-probe``: a steady-state probe errors, so the method never runs and
      the rollbacks run all the same.
    - ``chaos-missing-node``: the method's action fails; the rollbacks run.
    """
    for shipped in ("experiment-primary-crash.json", "experiment-clients-partitioned.yaml"):
        shutil.copy(EXPERIMENTS / shipped, pytester.path / shipped)
    variants = {
        "no-recovery": drill("chaos-no-recovery", CRASH_AND_WAIT, observe="3s"),
        "broken-probe": drill(
            "chaos-broken-probe",
            CRASH_AND_WAIT,
            probes=[
                {
                    **activity("probe", "lost-writes-of-nothing", "lost_writes", service="nope"),
                    "tolerance": 0,
                }
            ],
        ),  # fmt: skip
        "missing-node": drill(
            "chaos-missing-node",
            [activity("action", "kill-a-missing-node", "crash_node", node="pg-nope")],
        ),
    }
    for name, document in variants.items():
        (pytester.path / f"experiment-{name}.json").write_text(json.dumps(document))
    pytester.makeconftest(CLAIMS_WITHOUT_RECOVERING)

    result = pytester.runpytest("-s", *drill_args)

    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines_random(
        [
            "PASSED experiment-primary-crash.json::chaos-primary-crash",
            "PASSED experiment-clients-partitioned.yaml::chaos-clients-partitioned",
            "*HOOK: postgres failover claimed, nothing done*",
            "E   *TargetMissed: drill chaos-no-recovery FAILED: service did not recover: no "
            "lasting acknowledged write within the 3.00s observation window*",
            "E   *ExperimentFailed: Chaos Toolkit experiment experiment-broken-probe.json: "
            "chaoslib ended the experiment with status 'failed'; steady-state probe "
            "'lost-writes-of-nothing' before the method failed: *service='nope'*",
            "E   *ExperimentFailed: Chaos Toolkit experiment experiment-missing-node.json: "
            "method activity 'kill-a-missing-node' failed: *no node named 'pg-nope'*",
        ]
    )

    crash = journal_of(pytester, "chaos-primary-crash")
    assert (crash["status"], crash["deviated"]) == ("completed", False)
    fault = crash["run"][0]["output"]
    assert (fault["fault"], fault["target"]) == ("crash", "pg-primary")
    # the serving_node probe after failover: the synchronous standby that had received most
    assert crash["run"][2]["output"] in ("pg-sync", "pg-sync2")
    for when in ("before", "after"):
        state = crash["steady_states"][when]
        assert state["steady_state_met"] is True
        lost = next(
            p for p in state["probes"] if p["activity"]["name"] == "no-acknowledged-write-lost"
        )
        assert lost["output"] == 0
    assert crash["drdrill"]["verdict"] == "pass"
    assert crash["drdrill"]["faults"] == ["crash of pg-primary"]
    assert 0 < crash["drdrill"]["rto_seconds"] < 15 * 60
    assert crash["drdrill"]["lost_writes"] == 0
    assert crash["drdrill"]["result"]["scenario"] == "chaos-primary-crash"

    lag = journal_of(pytester, "chaos-clients-partitioned")["steady_states"]["after"]["probes"][2]
    assert lag["activity"]["name"] == "dr-standby-within-16mb"
    assert 0 <= lag["output"] <= 16 * 1024 * 1024

    # chaoslib is content; the measurement is not.
    liar = journal_of(pytester, "chaos-no-recovery")
    assert (liar["status"], liar["deviated"]) == ("completed", False)
    assert liar["drdrill"]["verdict"] == "fail"
    assert liar["drdrill"]["rto_seconds"] is None
    assert "did not recover" in liar["drdrill"]["reason"]

    for name in ("chaos-broken-probe", "chaos-missing-node"):
        journal = journal_of(pytester, name)
        rollbacks = [(r["activity"]["name"], r["status"]) for r in journal["rollbacks"]]
        assert rollbacks == [("heal-every-fault", "succeeded")], name
    assert journal_of(pytester, "chaos-broken-probe")["run"] == []

    (drill_json,) = (pytester.path / "reports").glob("*/drill.json")
    verdicts = {d["scenario"]: d["verdict"] for d in json.loads(drill_json.read_text())["drills"]}
    assert verdicts["chaos-primary-crash"] == "pass"
    assert verdicts["chaos-clients-partitioned"] == "pass"
    assert verdicts["chaos-no-recovery"] == "fail"
    sums = (drill_json.parent / "SHA256SUMS").read_text()
    assert "journals/chaos-primary-crash.json" in sums


def _with_control(tmp_path: Path, name: str, document: dict) -> Path:
    """Write ``document`` as ``experiment-<name>.json`` with the drdrill control added."""
    control = {"type": "python", "module": "pytest_drdrill.chaostoolkit.control",
               "arguments": {"targets": str(TARGETS)}}  # fmt: skip
    document["controls"] = [{"name": "drdrill", "provider": control}]
    experiment = tmp_path / f"experiment-{name}.json"
    experiment.write_text(json.dumps(document))
    return experiment


def _chaos_run(
    tmp_path: Path, chaos_command, experiment: Path
) -> tuple[subprocess.Popen[str], Path]:
    """Start ``chaos run`` on ``experiment`` in ``tmp_path``; returns it and its journal path."""
    journal_path = tmp_path / "journal.json"
    process = subprocess.Popen(
        chaos_command("run", "--journal-path", str(journal_path), str(experiment)),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, journal_path


def test_chaos_run_injects_our_fault_and_reports_the_measurement(
    tmp_path: Path, chaos_command, leftovers
) -> None:
    """`chaos run` on the shipped experiment: the control brings the drill up and down."""
    (tmp_path / "fixtures").mkdir()  # the control's default targets file
    shutil.copy(TARGETS, tmp_path / "fixtures" / "targets.yaml")
    experiment = EXPERIMENTS / "experiment-primary-crash.json"
    process, journal_path = _chaos_run(tmp_path, chaos_command, experiment)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert "pytest-drdrill: drill chaos-primary-crash: pass" in output

    journal = json.loads(journal_path.read_text())
    assert (journal["status"], journal["deviated"]) == ("completed", False)
    kill = journal["run"][0]
    assert kill["status"] == "succeeded"
    assert (kill["output"]["fault"], kill["output"]["target"]) == ("crash", "pg-primary")
    measured = journal["drdrill"]
    assert measured["verdict"] == "pass"
    assert measured["faults"] == ["crash of pg-primary"]
    assert 0 < measured["rto_seconds"] < 15 * 60
    assert measured["lost_writes"] == 0
    assert measured["result"]["target"]["name"] == "tier_1_critical"
    assert [r["status"] for r in journal["rollbacks"]] == ["succeeded"]
    assert leftovers(process.pid) == []


def test_chaos_run_exits_non_zero_when_the_drill_measured_nothing(
    tmp_path: Path, chaos_command, leftovers
) -> None:
    """A fault the clients never see: chaoslib's steady state holds, the drill is inconclusive."""
    slow = activity("action", "slow-the-dr-standby", "add_latency", node="pg-dr", ms=1)
    writes = {**activity("probe", "writes", "writes_acknowledged"), "tolerance": True}
    document = drill("chaos-unseen-latency", [slow], probes=[writes])
    experiment = _with_control(tmp_path, "unseen", document)
    process, journal_path = _chaos_run(tmp_path, chaos_command, experiment)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 1, output
    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "completed"
    assert journal["steady_states"]["after"]["steady_state_met"] is True
    assert journal["deviated"] is True  # set by the control, from the measurement
    assert journal["drdrill"]["verdict"] == "inconclusive"
    (fault,) = journal["drdrill"]["faults"]
    assert fault.startswith("latency of clients -> pg-dr")
    assert leftovers(process.pid) == []


def _wait_until_logged(log: Path, text: str, timeout: float = 10.0) -> None:
    """Wait until chaos's log file holds ``text``, and a moment more.

    chaoslib's SIGTERM handler logs before it raises. A signal that lands while the main
    thread is still writing the same line to ``chaos.log`` makes that write re-entrant;
    logging reports the error and swallows the handler's exception with it, so the
    interruption is lost and the run carries on. A user's Ctrl-C is a human's timing; the
    test waits for the log write to finish so that it sends the signal during the pause.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            break
        time.sleep(0.05)
    time.sleep(0.5)


def test_chaos_run_interrupted_still_measures_and_cleans_up(
    tmp_path: Path, chaos_command, leftovers
) -> None:
    """SIGTERM in the middle of the method: chaoslib stops, the control measures and tears down."""
    crash = activity("action", "kill-the-primary", "crash_primary", service="postgres")
    crash["pauses"] = {"after": 60}
    document = drill("chaos-interrupted", [crash])
    experiment = _with_control(tmp_path, "interrupted", document)
    process, journal_path = _chaos_run(tmp_path, chaos_command, experiment)
    try:
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "Pausing after activity" in line:
                _wait_until_logged(tmp_path / "chaos.log", "Pausing after activity")
                process.send_signal(signal.SIGTERM)
                break
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = "".join(lines) + output
    assert process.returncode == 1, output
    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "interrupted"
    assert journal["drdrill"]["faults"] == ["crash of pg-primary"]
    assert journal["drdrill"]["verdict"] in ("pass", "fail")  # measured, whatever it found
    assert "pytest-drdrill: topology stopped and removed" in output
    assert leftovers(process.pid) == []
