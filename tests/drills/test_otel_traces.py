"""A real drill exported as an OpenTelemetry trace over OTLP/HTTP, decoded where it lands.

The receiver is a plain HTTP server on a loopback port that keeps every request body;
the bodies are decoded with opentelemetry-proto's ``ExportTraceServiceRequest``, so what
is checked is what a collector would receive from the SDK's OTLP exporter. The same
drill's record is also exported to the SDK's in-memory exporter and the spans compared.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

pytest.importorskip("opentelemetry.sdk", reason="pip install 'pytest-drdrill[otel]'")

DRILL = """
import pytest

@pytest.mark.drdrill(cadence="daily", tier="tier_1_critical", scenario="traced-crash")
def test_traced_crash(drdrill):
    with drdrill.running():
        drdrill.faults.crash(drdrill.topology.primary)
        drdrill.await_recovery()
    drdrill.conclude()
"""


@pytest.fixture
def collector() -> Iterator[tuple[str, list[bytes]]]:
    """An OTLP/HTTP endpoint on 127.0.0.1 that keeps the bodies posted to /v1/traces."""
    bodies: list[bytes] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/traces":
                bodies.append(body)
            self.send_response(200 if self.path == "/v1/traces" else 404)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", bodies
    finally:
        server.shutdown()
        server.server_close()


def _spans(bodies: list[bytes]) -> list[object]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    spans = []
    for body in bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                spans.extend(scope.spans)
    return spans


def test_a_drill_is_a_trace_of_its_phases_and_faults(
    pytester: pytest.Pytester, drill_args: list[str], collector: tuple[str, list[bytes]]
) -> None:
    url, bodies = collector
    pytester.makepyfile(test_traced=DRILL)
    args = [a.replace("--drill=monthly", "--drill=daily") for a in drill_args]
    # In a subprocess: an in-process run drops the modules it imported afterwards, and a
    # re-imported opentelemetry.context no longer matches the SDK's (new context keys).
    result = pytester.runpytest_subprocess(*args, f"--drill-otlp-endpoint={url}")
    result.assert_outcomes(passed=1)
    (report,) = (pytester.path / "reports").glob("*/drill.json")
    (drill,) = json.loads(report.read_text())["drills"]

    spans = _spans(bodies)
    by_name = {span.name: span for span in spans}
    root = by_name["drill traced-crash"]
    attributes = {a.key: a.value for a in root.attributes}
    assert attributes["drdrill.verdict"].string_value == drill["verdict"] == "pass"
    assert attributes["drdrill.rto_seconds"].double_value == pytest.approx(drill["rto"]["seconds"])
    children = [s for s in spans if s.parent_span_id == root.span_id]
    assert {s.trace_id for s in children} == {root.trace_id}
    phases = {s.name.removeprefix("phase ") for s in children if s.name.startswith("phase ")}
    assert phases == {p["name"] for p in drill["phases"]}, phases
    (fault,) = [s for s in children if s.name.startswith("fault ")]
    assert fault.name == f"fault {drill['faults'][0]['kind']}"
    assert root.start_time_unix_nano <= fault.start_time_unix_nano <= fault.end_time_unix_nano
    assert fault.end_time_unix_nano <= root.end_time_unix_nano


def test_the_in_memory_exporter_sees_the_same_spans() -> None:
    """export_run on a recorded run: one root per drill, phases and faults beneath it."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from pytest_drdrill import timing
    from pytest_drdrill.reporting.otel import export_run
    from pytest_drdrill.results import DrillResult, FaultRecord, Phase, RunInfo, Verdict

    anchor = timing.anchor()
    t = anchor.mono
    drill = DrillResult(
        name="test_x", scenario="x", backend="local", cadence="daily",
        fault=FaultRecord("crash", "pg-primary", t + 1, t + 3), phases=(
            Phase("detection", t + 1.2, t + 1.5), Phase("failover", t + 1.5, t + 2.0)),
        verdict=Verdict.FAIL, reason="RTO over target", rto=None, rpo=None, target=None,
        started_at=t, ended_at=t + 4, faults=(FaultRecord("crash", "pg-primary", t + 1, t + 3),),
    )  # fmt: skip
    run = RunInfo(run_id="r1", anchor=anchor, git_sha=None, versions={}, backend="local",
                  cadence="daily")  # fmt: skip
    memory = InMemorySpanExporter()
    assert export_run(run, [drill], memory) == 4
    spans = {span.name: span for span in memory.get_finished_spans()}
    assert set(spans) == {"drill x", "phase detection", "phase failover", "fault crash"}
    root = spans["drill x"]
    assert root.attributes["drdrill.verdict"] == "fail"
    assert all(s.parent.span_id == root.context.span_id for n, s in spans.items() if n != "drill x")
    assert spans["fault crash"].end_time - spans["fault crash"].start_time == pytest.approx(
        2e9, rel=1e-6
    )
