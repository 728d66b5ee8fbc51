"""One real drill run writes the whole evidence bundle, and pytest's --junitxml carries RTO/RPO."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
import xml.etree.ElementTree as ET

import jsonschema
import pytest
import xmlschema

from drill_helpers import ROOT
from pytest_drdrill.reporting.drill_json import load_schema

XSD = ROOT / "tests" / "data" / "junit-xunit2.xsd"


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, object]]

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook():
    """A real HTTP receiver on 127.0.0.1 recording every notification posted to it."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_monthly_drill_writes_every_report(pytester, drill_args, webhook):
    """drill.json, both JUnit files, report.html, the MTD document, history and checksums."""
    scenario = ROOT / "scenarios" / "test_postgres_failover.py"
    url = f"http://127.0.0.1:{webhook.server_address[1]}/hook"
    junitxml = pytester.path / "pytest-junit.xml"
    result = pytester.runpytest(
        f"{scenario}::test_losing_the_primary_fails_over_to_the_sync_standby[crash]",
        f"{scenario}::test_negative_control_broken_failover_goes_red",
        f"--rootdir={ROOT}",
        f"--junitxml={junitxml}",
        f"--drill-notify={url}",
        *drill_args,
    )
    result.assert_outcomes(passed=2)
    (run_dir,) = [p for p in (pytester.path / "reports").iterdir() if p.is_dir()]
    names = {p.name for p in run_dir.iterdir()}
    assert {
        "drill.json",
        "drill-junit.xml",
        "report.html",
        "mtd-justification.md",
        "mtd-justification.html",
        "SHA256SUMS",
    } <= names
    checked = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=run_dir, check=False)
    assert checked.returncode == 0

    # pytest's own JUnit file: valid xunit2, with the drill's measured figures.
    xmlschema.XMLSchema(XSD).validate(junitxml)
    properties = {
        p.get("name"): p.get("value") for p in ET.parse(junitxml).getroot().iter("property")
    }
    crash = "[crash]"
    rto = next(v for k, v in properties.items() if crash in k and k.endswith("].rto_seconds"))
    document = json.loads((run_dir / "drill.json").read_text())
    # The document a real run writes, not one built in a unit test, matches the schema.
    validator = jsonschema.Draft202012Validator(
        load_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    assert [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)] == []
    assert document["run"]["postgres_failover"] == "reference"
    assert document["run"]["backup_tool"] == "builtin"
    versions = document["run"]["versions"]
    from importlib import metadata

    assert versions["redis-py"] == metadata.version("redis")
    assert versions["redis"] != versions["redis-py"]  # the server's own version
    assert len(document["run"]["config_hash"]) == 64
    measured = next(d for d in document["drills"] if d["name"].endswith(crash))
    assert float(rto) == pytest.approx(measured["rto_seconds"], abs=1e-6)
    lost = next(v for k, v in properties.items() if crash in k and k.endswith("].rpo_lost_writes"))
    assert lost == "0"

    # The communication plan reached the receiver, and each delivery was judged.
    received = {(m["template"], m["audience"]) for m in webhook.received}
    assert ("internal_alert", "immediate_team") in received
    assert ("recovery_announcement", "immediate_team") in received
    alert = next(
        n
        for n in measured["notifications"]
        if n["template"] == "internal_alert" and n["audience"] == "immediate_team"
    )
    assert alert["delivered"] is True and alert["verdict"] == "pass"
    assert 0 < alert["seconds_after_incident"] < 300

    # The MTD justification answers the three acceptance criteria with this run's numbers.
    mtd = (run_dir / "mtd-justification.md").read_text()
    assert "MTD is met by every drill of this run" in mtd
    for criterion in ("US 7.4.2.1", "US 7.4.2.2", "US 7.4.2.3"):
        assert criterion in mtd
    assert "went red, as it must" in mtd
    assert "pg-primary → pg-sync (streaming)" in mtd

    history = (pytester.path / "reports" / "history.jsonl").read_text().splitlines()
    assert len(history) == 1
    assert json.loads(history[0])["run_id"] == run_dir.name
