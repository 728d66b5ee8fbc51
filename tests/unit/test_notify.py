from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_drdrill import timing
from pytest_drdrill.notify import (
    DRILL_MARKER,
    TEMPLATE_NAMES,
    CommunicationPlan,
    DeliveryError,
    FileSink,
    Message,
    NotificationRecord,
    Notifier,
    NotifySettings,
    SinkSpecError,
    StdoutSink,
    TemplateError,
    WebhookSink,
    auto_approve,
    default_template_dir,
    judge,
    load_templates,
    never_approve,
    parse_sink,
    to_dict,
)
from pytest_drdrill.notify.templates import FIELDS, parse_template
from pytest_drdrill.targets import CommunicationStep, load_targets
from pytest_drdrill.timing import MockClock

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_TEMPLATES = ROOT / "fixtures" / "communication"
SCHEMA = ROOT / "src" / "pytest_drdrill" / "reporting" / "drill.schema.json"

INTERNAL = ("immediate_team", "extended_team", "management")
EXTERNAL = ("customers", "partners")


# --- a real HTTP receiver on loopback -----------------------------------------------------------


@dataclasses.dataclass
class Receiver:
    url: str
    requests: list[dict[str, Any]]
    release: threading.Event

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        return _poll(lambda: len(self.requests) >= count, timeout)


def _poll(condition: Callable[[], bool], timeout: float) -> bool:
    # Real time, not pytest_drdrill.timing: some tests install a MockClock, whose sleep
    # would only move the mocked time that the notifier is measuring.
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (the slow-receiver tests) breaks the pipe; that is expected.
        pass


@contextlib.contextmanager
def _serve(status: int, *, hold: bool = False) -> Iterator[Receiver]:
    requests: list[dict[str, Any]] = []
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            requests.append(
                {
                    "path": self.path,
                    "content_type": self.headers["Content-Type"],
                    "json": json.loads(self.rfile.read(length)),
                }
            )
            if hold:
                release.wait(30)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="test-receiver", daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook", requests, release)
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # urllib would send even loopback requests through a proxy named in the environment.
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ALL_PROXY", raising=False)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with _serve(200) as served:
        yield served


@pytest.fixture
def failing_receiver() -> Iterator[Receiver]:
    with _serve(500) as served:
        yield served


@pytest.fixture
def slow_receiver() -> Iterator[Receiver]:
    with _serve(200, hold=True) as served:
        yield served


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> MockClock:
    return MockClock().install(monkeypatch)


@pytest.fixture(scope="module")
def plan() -> CommunicationPlan:
    return CommunicationPlan.from_targets(load_targets(ROOT / "fixtures" / "targets.yaml"))


def _notifier_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("drdrill-notify-")]


def _wait_for_notifier_threads(timeout: float = 10.0) -> None:
    if not _poll(lambda: not _notifier_threads(), timeout):
        raise AssertionError(f"notifier worker threads still running: {_notifier_threads()}")


@pytest.fixture
def notifier_factory() -> Iterator[Callable[..., Notifier]]:
    """Build notifiers that are closed, and whose threads are gone, after the test."""
    made: list[Notifier] = []

    def make(*args: Any, **kwargs: Any) -> Notifier:
        notifier = Notifier(*args, **kwargs)
        made.append(notifier)
        return notifier

    yield make
    for notifier in made:
        notifier.close(timeout=10.0)
    _wait_for_notifier_threads()


def _by(records: tuple[NotificationRecord, ...], template: str) -> dict[str, NotificationRecord]:
    return {r.audience: r for r in records if r.template == template}


def _fields(**overrides: str) -> dict[str, str]:
    names = FIELDS["recovery_announcement"]
    fields = {name: f"<{name}>" for name in names}
    fields.update(overrides)
    return fields


def _message(audience: str = "immediate_team") -> Message:
    return Message(
        template="internal_alert",
        audience=audience,
        subject="[DRILL] alert",
        body="[DRILL] body ünïcode 🚨",
        incident_id="drill-1",
    )


# --- plan ---------------------------------------------------------------------------------------


def test_plan_from_the_shipped_matrix(plan: CommunicationPlan) -> None:
    """Internal audiences get alerts, dated external ones the customer notice, public nothing."""
    assert [s.audience for s in plan.alerts] == list(INTERNAL)
    assert [s.audience for s in plan.customer] == list(EXTERNAL)
    assert [s.audience for s in plan.not_rehearsed] == ["public"]
    assert [s.within for s in plan.alerts] == [300.0, 900.0, 1_800.0]
    assert [s.within for s in plan.customer] == [3_600.0, 7_200.0]


def test_judge_on_and_over_the_deadline() -> None:
    """A delivery at the deadline passes, just after it fails, and no deadline needs nothing."""
    assert judge(300.0, 300.0) == "pass"
    assert judge(300.001, 300.0) == "fail"
    assert judge(1e6, None) == "not_required"


# --- templates ----------------------------------------------------------------------------------


def test_shipped_templates_equal_the_fixture_copies() -> None:
    """The package's default templates are the same bytes as fixtures/communication/."""
    shipped = default_template_dir()
    for name in TEMPLATE_NAMES:
        fixture = (FIXTURE_TEMPLATES / f"{name}.txt").read_bytes()
        assert (shipped / f"{name}.txt").read_bytes() == fixture, name


def test_default_templates_render_every_placeholder_with_the_drill_marker() -> None:
    """Every placeholder is filled, and subject and body both say it is a drill."""
    templates = load_templates()
    for name, template in templates.items():
        rendered = template.render(_fields())
        text = rendered.subject + rendered.body
        assert rendered.subject.startswith(f"{DRILL_MARKER} "), name
        assert rendered.body.startswith(f"{DRILL_MARKER} This message was sent by a"), name
        assert "{" not in text and "}" not in text, name
        for placeholder in template.placeholders:
            assert f"<{placeholder}>" in text, (name, placeholder)
    customer = templates["customer_notification"].render(_fields(incident_id="drill-7"))
    assert customer.subject == "[DRILL] Service Disruption Notification - drill-7"
    assert "Subject:" not in customer.body
    alert = templates["internal_alert"].render(_fields())
    assert alert.subject == "[DRILL] 🚨 DISASTER RECOVERY ALERT 🚨"


def test_user_template_directory_is_used(tmp_path: Path) -> None:
    """Templates come from a user's directory when one is given."""
    for name in TEMPLATE_NAMES:
        (tmp_path / f"{name}.txt").write_text(
            f"Subject: {name} {{incident_id}}\nbraces {{{{ok}}}}\n"
        )
    rendered = load_templates(tmp_path)["internal_alert"].render({"incident_id": "x-1"})
    assert rendered.subject == "[DRILL] internal_alert x-1"
    assert rendered.body.endswith("braces {ok}")


def _user_dir(tmp_path: Path, name: str, text: str) -> Path:
    for template in TEMPLATE_NAMES:
        (tmp_path / f"{template}.txt").write_text(
            (FIXTURE_TEMPLATES / f"{template}.txt").read_text()
        )
    (tmp_path / f"{name}.txt").write_text(text)
    return tmp_path


def test_unknown_placeholder_names_file_line_and_fix(tmp_path: Path) -> None:
    """A misspelt placeholder is refused with the file, its line and a suggestion."""
    directory = _user_dir(tmp_path, "internal_alert", "ALERT\n\nIncident: {incident_idd}\n")
    with pytest.raises(TemplateError) as info:
        load_templates(directory)
    message = str(info.value)
    assert f"{directory / 'internal_alert.txt'}, line 3" in message
    assert "unknown placeholder {incident_idd}" in message
    assert "did you mean {incident_id}?" in message
    assert "{severity}" in message  # lists what may be used


def test_recovery_placeholder_in_an_alert_is_refused(tmp_path: Path) -> None:
    """A placeholder known only after recovery cannot appear in the alert sent before it."""
    directory = _user_dir(tmp_path, "customer_notification", "Cause: {root_cause}\n")
    with pytest.raises(TemplateError, match=r"customer_notification.txt, line 1") as info:
        load_templates(directory)
    assert "only known once recovery is measured" in str(info.value)
    assert "recovery_announcement.txt only" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id {incident_id", "line 1: expected '}' before end of string"),
        ("{0}", "is not a plain name"),
        ("{incident_id.__class__}", "is not a plain name"),
        ("{severity:{incident_id}}", "nests another placeholder"),
    ],
)
def test_malformed_placeholders_are_refused(text: str, expected: str) -> None:
    """Broken braces, positional fields and attribute access are refused with the source."""
    with pytest.raises(TemplateError, match="my.txt") as info:
        parse_template("internal_alert", text, source="my.txt")
    assert expected in str(info.value)


def test_missing_template_file_is_named(tmp_path: Path) -> None:
    """A template directory without one of the files says which and how to fix it."""
    (tmp_path / "internal_alert.txt").write_text("x\n")
    with pytest.raises(TemplateError, match="has no customer_notification.txt") as info:
        load_templates(tmp_path)
    assert "--drill-notify-templates" in str(info.value)
    with pytest.raises(TemplateError, match="does not exist"):
        load_templates(tmp_path / "nowhere")


def test_missing_value_names_the_template_file_and_placeholder() -> None:
    """Rendering without a value for a placeholder names the file and the placeholder."""
    template = load_templates()["recovery_announcement"]
    fields = _fields()
    del fields["root_cause"]
    with pytest.raises(TemplateError) as info:
        template.render(fields)
    message = str(info.value)
    assert "recovery_announcement.txt" in message
    assert "{root_cause}" in message
    assert "{incident_id}" not in message


# --- sinks --------------------------------------------------------------------------------------


def test_parse_sink_accepted_forms(tmp_path: Path) -> None:
    """stdout, file:PATH and http(s) URLs give the matching sink with the same spec."""
    assert isinstance(parse_sink("stdout"), StdoutSink)
    file_sink = parse_sink(f"file:{tmp_path}/n.jsonl")
    assert isinstance(file_sink, FileSink)
    assert file_sink.path == tmp_path / "n.jsonl"
    assert file_sink.spec == f"file:{tmp_path}/n.jsonl"
    hook = parse_sink("https://hooks.example/abc", timeout=2.5)
    assert isinstance(hook, WebhookSink)
    assert (hook.spec, hook.timeout) == ("https://hooks.example/abc", 2.5)


@pytest.mark.parametrize("spec", ["slack", "file:", "ftp://host/x", "http://", "Stdout2"])
def test_bad_sink_spec_lists_the_accepted_forms(spec: str) -> None:
    """A bad sink spec is a ValueError naming it, the accepted forms and the option."""
    with pytest.raises(ValueError) as info:
        parse_sink(spec)
    assert isinstance(info.value, SinkSpecError)
    message = str(info.value)
    assert repr(spec) in message
    for form in ("'stdout'", "'file:PATH'", "'http://...'", "--drill-notify", "drill_notify"):
        assert form in message


def test_file_sink_appends_one_json_line_per_message(tmp_path: Path, clock: MockClock) -> None:
    """Each message becomes one JSON line with audience, template, subject, body and time."""
    path = tmp_path / "sub" / "notifications.jsonl"
    path.parent.mkdir()
    path.write_text('{"earlier": true}\n')
    sink = FileSink(path)
    assert sink.deliver(_message("immediate_team")) == f"appended to {path}"
    clock.advance(2.5)
    sink.deliver(_message("management"))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"earlier": True}
    first, second = (json.loads(line) for line in lines[1:])
    assert first["audience"] == "immediate_team"
    assert first["template"] == "internal_alert"
    assert first["subject"] == "[DRILL] alert"
    assert first["body"] == "[DRILL] body ünïcode 🚨"
    assert first["sent_at"] == "2027-01-15T08:16:40.000000+00:00"
    assert second["audience"] == "management"
    assert second["sent_at"] == "2027-01-15T08:16:42.500000+00:00"


def test_file_sink_fsyncs_every_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each message is fsynced before deliver() returns, so a crash loses nothing sent."""
    synced: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    sink = FileSink(tmp_path / "n.jsonl")
    sink.deliver(_message())
    sink.deliver(_message())
    assert len(synced) == 2


def test_file_sink_error_names_the_path(tmp_path: Path) -> None:
    """A file that cannot be written raises DeliveryError naming it and the option."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DeliveryError) as info:
        FileSink(blocker / "n.jsonl").deliver(_message())
    assert str(blocker / "n.jsonl") in str(info.value)
    assert "--drill-notify=file:PATH" in str(info.value)


def test_stdout_sink_prints_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    """The stdout sink prints the template, audience, subject and body."""
    assert StdoutSink().deliver(_message("extended_team")) == "printed to stdout"
    out = capsys.readouterr().out
    assert "internal_alert -> extended_team (drill-1)" in out
    assert "Subject: [DRILL] alert\n" in out
    assert "[DRILL] body ünïcode 🚨" in out


def test_webhook_posts_the_message_as_json(receiver: Receiver) -> None:
    """The webhook sink POSTs JSON to the URL and reports the 2xx status."""
    assert WebhookSink(receiver.url).deliver(_message("partners")) == "HTTP 200"
    [request] = receiver.requests
    assert request["path"] == "/hook"
    assert request["content_type"].startswith("application/json")
    assert request["json"]["audience"] == "partners"
    assert request["json"]["body"] == "[DRILL] body ünïcode 🚨"
    assert request["json"]["drill"] is True


def test_webhook_500_names_url_and_status(failing_receiver: Receiver) -> None:
    """A 500 answer is a DeliveryError with the URL and the status."""
    with pytest.raises(DeliveryError) as info:
        WebhookSink(failing_receiver.url).deliver(_message())
    assert f"webhook {failing_receiver.url} answered HTTP 500" in str(info.value)
    assert len(failing_receiver.requests) == 1


def test_webhook_timeout_is_a_delivery_error(slow_receiver: Receiver) -> None:
    """A receiver that does not answer in time is a DeliveryError naming the timeout."""
    with pytest.raises(DeliveryError, match=r"did not answer .* within 0\.2s"):
        WebhookSink(slow_receiver.url, timeout=0.2).deliver(_message())


def test_webhook_unreachable_names_the_url() -> None:
    """A refused connection is a DeliveryError naming the URL."""
    with _serve(200) as served:
        url = served.url
    with pytest.raises(DeliveryError, match=f"could not reach webhook {url}"):
        WebhookSink(url, timeout=2.0).deliver(_message())


# --- notifier -----------------------------------------------------------------------------------


def test_timings_are_measured_from_the_incident_and_judged(
    notifier_factory: Callable[..., Notifier],
    plan: CommunicationPlan,
    clock: MockClock,
    tmp_path: Path,
    receiver: Receiver,
) -> None:
    """Each delivery's delay from the first fault is measured and judged per audience."""
    path = tmp_path / "notifications.jsonl"
    notifier = notifier_factory(
        plan,
        [FileSink(path), WebhookSink(receiver.url)],
        incident_id="drill-timing",
        approver=auto_approve,
        estimated_recovery=900.0,
    )
    start = clock.now
    notifier.incident_started(start, affected_services=["postgres"], severity="critical")
    # Detected 6 minutes in: past immediate_team's 5 minutes, within everyone else's.
    clock.advance(360.0)
    notifier.detected(clock.now, detail="automated failover to pg-sync")
    clock_at_detection = clock.now
    assert receiver.wait_for(5)
    clock.advance(40.0)
    notifier.recovered(
        clock.now, rto_seconds=400.0, root_cause="crash of pg-primary", services=["postgres"]
    )
    notifier.close(timeout=10.0)
    records = notifier.results()

    alerts = [r for r in records if r.template == "internal_alert"]
    assert [(r.audience, r.sink) for r in alerts] == [
        (a, s) for a in INTERNAL for s in (f"file:{path}", receiver.url)
    ]
    for record in alerts:
        assert record.delivered
        assert record.sent_at == clock_at_detection
        assert record.seconds_after_incident == 360.0
        assert record.approval is None
    verdicts = {(r.audience, r.verdict) for r in alerts}
    assert verdicts == {
        ("immediate_team", "fail"),
        ("extended_team", "pass"),
        ("management", "pass"),
    }
    late = next(r for r in alerts if r.audience == "immediate_team")
    assert late.within_seconds == 300.0
    assert "6m00s after the incident, over the 5m00s deadline" in late.detail

    customer = [r for r in records if r.template == "customer_notification"]
    assert [(r.audience, r.verdict) for r in customer if r.sink] == [
        ("customers", "pass"),
        ("customers", "pass"),
        ("partners", "pass"),
        ("partners", "pass"),
    ]
    assert {r.approval for r in customer if r.sink} == {"auto-approved by the drill"}
    [public] = [r for r in customer if not r.sink]
    assert (public.audience, public.verdict, public.delivered) == ("public", "not_required", False)
    assert public.detail == "not rehearsed: as_appropriate, approval ceo_level"

    recovery = [r for r in records if r.template == "recovery_announcement"]
    assert sorted({r.audience for r in recovery}) == sorted(INTERNAL + EXTERNAL)
    assert all(r.delivered and r.verdict == "not_required" for r in recovery)
    assert all(r.within_seconds is None and r.seconds_after_incident == 400.0 for r in recovery)
    assert len(records) == 3 * 2 + 2 * 2 + 1 + 5 * 2

    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 3 + 2 + 5
    assert all(line["subject"].startswith("[DRILL] ") for line in lines)
    sent_alert = next(line for line in lines if line["template"] == "internal_alert")
    assert "Actions Being Taken: automated failover to pg-sync" in sent_alert["body"]
    assert "Severity: critical" in sent_alert["body"]
    assert "Start Time: 2027-01-15T08:16:40.000000+00:00" in sent_alert["body"]
    assert "(RTO target 15m00s)" in sent_alert["body"]
    announcement = next(line for line in lines if line["template"] == "recovery_announcement")
    assert "Root Cause: crash of pg-primary" in announcement["body"]
    assert "Total Duration: 6m40s" in announcement["body"]
    assert len(receiver.requests) == 10


def test_to_dict_matches_the_report_schema(
    notifier_factory: Callable[..., Notifier],
    plan: CommunicationPlan,
    clock: MockClock,
    tmp_path: Path,
) -> None:
    """to_dict gives exactly the drill.json notification keys, offsets from the drill start."""
    drill_started_at = clock.now
    clock.advance(5.0)
    notifier = notifier_factory(plan, [FileSink(tmp_path / "n.jsonl")], incident_id="drill-dict")
    notifier.incident_started(clock.now, affected_services=["postgres"], severity="high")
    clock.advance(1.5)
    notifier.detected(clock.now, detail="")
    notifier.close(timeout=10.0)
    rows = [to_dict(r, drill_started_at) for r in notifier.results()]
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(
        {"$ref": "#/$defs/notification", "$defs": schema["$defs"]}
    )
    for row in rows:
        validator.validate(row)
        assert list(row) == [
            "template",
            "audience",
            "sink",
            "sent_offset_seconds",
            "seconds_after_incident",
            "within_seconds",
            "delivered",
            "approval",
            "verdict",
            "detail",
        ]
    sent = [row for row in rows if row["delivered"]]
    assert {row["sent_offset_seconds"] for row in sent} == {6.5}
    assert {row["seconds_after_incident"] for row in sent} == {1.5}


def test_approval_withheld_fails_the_customer_notification(
    notifier_factory: Callable[..., Notifier],
    plan: CommunicationPlan,
    clock: MockClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without approval customers and partners get nothing, and the drill says so."""
    notifier = notifier_factory(
        plan, [StdoutSink()], incident_id="drill-withheld", approver=never_approve
    )
    notifier.incident_started(clock.now, affected_services=["redis"], severity="high")
    clock.advance(10.0)
    notifier.detected(clock.now, detail="promote redis-replica")
    notifier.recovered(clock.now, rto_seconds=10.0, root_cause="crash", services=["redis"])
    notifier.close(timeout=10.0)
    records = notifier.results()

    customer = _by(records, "customer_notification")
    for audience, deadline in (("customers", "1h00m00s"), ("partners", "2h00m00s")):
        record = customer[audience]
        assert (record.verdict, record.delivered, record.approval) == ("fail", False, "withheld")
        assert record.detail.startswith(f"no approval within the deadline ({deadline})")
        assert "never_approve withheld the customer_notification" in record.detail
    recovery = _by(records, "recovery_announcement")
    assert recovery["customers"].verdict == "not_required"
    assert not recovery["customers"].delivered
    assert recovery["immediate_team"].delivered
    out = capsys.readouterr().out
    assert "customer_notification ->" not in out
    assert "recovery_announcement -> customers" not in out
    assert out.count("internal_alert ->") == 3


def test_slow_approval_counts_against_the_deadline(
    notifier_factory: Callable[..., Notifier],
    plan: CommunicationPlan,
    clock: MockClock,
    tmp_path: Path,
) -> None:
    """The time an approver takes is part of the delay; approved too late fails."""

    def duty_manager(step: CommunicationStep) -> str:
        clock.advance(3_000.0)
        return f"approved by the duty manager for {step.audience}"

    notifier = notifier_factory(
        plan, [FileSink(tmp_path / "n.jsonl")], incident_id="drill-slow", approver=duty_manager
    )
    notifier.incident_started(clock.now, affected_services=["s3"], severity="high")
    clock.advance(700.0)
    notifier.detected(clock.now, detail="switch to the DR bucket")
    notifier.close(timeout=10.0)
    customer = _by(notifier.results(), "customer_notification")
    # customers: 700 + 3000 = 3700s > 1h; partners: 700 + 6000 = 6700s < 2h.
    assert customer["customers"].seconds_after_incident == 3_700.0
    assert customer["customers"].verdict == "fail"
    assert customer["partners"].seconds_after_incident == 6_700.0
    assert customer["partners"].verdict == "pass"
    assert customer["partners"].approval == "approved by the duty manager for partners"


def test_approver_error_is_a_failed_record(
    notifier_factory: Callable[..., Notifier], plan: CommunicationPlan, tmp_path: Path
) -> None:
    """An approver that raises fails that notification without stopping the others."""

    def broken(step: CommunicationStep) -> str:
        raise RuntimeError("approval service down")

    notifier = notifier_factory(
        plan, [FileSink(tmp_path / "n.jsonl")], incident_id="drill-broken", approver=broken
    )
    notifier.incident_started(timing.monotonic(), affected_services=["s3"], severity="high")
    notifier.detected(timing.monotonic(), detail="")
    notifier.close(timeout=10.0)
    records = notifier.results()
    customer = _by(records, "customer_notification")
    assert customer["customers"].verdict == "fail"
    assert "approval service down" in customer["customers"].detail
    assert all(r.delivered for r in records if r.template == "internal_alert")


def test_webhook_500_fails_each_notification_with_the_status(
    notifier_factory: Callable[..., Notifier],
    plan: CommunicationPlan,
    failing_receiver: Receiver,
    tmp_path: Path,
) -> None:
    """A receiver answering 500 fails its records, naming the status; the file sink still works."""
    notifier = notifier_factory(
        plan,
        [WebhookSink(failing_receiver.url), FileSink(tmp_path / "n.jsonl")],
        incident_id="drill-500",
    )
    notifier.incident_started(timing.monotonic(), affected_services=["postgres"], severity="high")
    notifier.detected(timing.monotonic(), detail="failover")
    notifier.close(timeout=10.0)
    records = [r for r in notifier.results() if r.sink]
    hook = [r for r in records if r.sink == failing_receiver.url]
    assert len(hook) == 5
    for record in hook:
        assert (record.verdict, record.delivered, record.sent_at) == ("fail", False, None)
        assert f"webhook {failing_receiver.url} answered HTTP 500" in record.detail
    assert all(r.delivered for r in records if r.sink.startswith("file:"))


def test_slow_webhook_does_not_block_the_event_call(
    notifier_factory: Callable[..., Notifier], plan: CommunicationPlan, slow_receiver: Receiver
) -> None:
    """detected() returns while the webhook is still holding the first delivery."""
    notifier = notifier_factory(
        plan, [WebhookSink(slow_receiver.url)], incident_id="drill-nonblock"
    )
    notifier.incident_started(timing.monotonic(), affected_services=["postgres"], severity="high")
    before = timing.monotonic()
    notifier.detected(timing.monotonic(), detail="failover")
    took = timing.monotonic() - before
    assert slow_receiver.wait_for(1)
    # The receiver holds the request until released, so a blocking call could not be here yet.
    assert not slow_receiver.release.is_set()
    assert took < 1.0
    slow_receiver.release.set()
    notifier.close(timeout=10.0)
    assert all(r.delivered for r in notifier.results() if r.sink)


def test_close_records_undelivered_messages_as_failed(
    notifier_factory: Callable[..., Notifier], plan: CommunicationPlan, slow_receiver: Receiver
) -> None:
    """Whatever is still queued or in flight when close() gives up is recorded as failed."""
    notifier = notifier_factory(plan, [WebhookSink(slow_receiver.url)], incident_id="drill-close")
    notifier.incident_started(timing.monotonic(), affected_services=["postgres"], severity="high")
    notifier.detected(timing.monotonic(), detail="failover")
    assert slow_receiver.wait_for(1)
    notifier.close(timeout=0.2)
    records = notifier.results()
    sent = [r for r in records if r.sink]
    assert [(r.template, r.audience) for r in sent] == [("internal_alert", a) for a in INTERNAL] + [
        ("customer_notification", a) for a in EXTERNAL
    ]
    for record in sent:
        assert (record.verdict, record.delivered) == ("fail", False)
        assert "close(timeout=0.20s) gave up" in record.detail
    slow_receiver.release.set()
    _wait_for_notifier_threads()
    # Nothing more was sent or recorded after close() gave up.
    assert notifier.results() == records
    assert len(slow_receiver.requests) == 1
    notifier.detected(timing.monotonic(), detail="again")
    assert notifier.results() == records


def test_no_detection_fails_every_planned_notification(
    notifier_factory: Callable[..., Notifier],
    plan: CommunicationPlan,
    clock: MockClock,
    tmp_path: Path,
) -> None:
    """An incident that was never reported as detected leaves failed, unsent records."""
    notifier = notifier_factory(
        plan, [FileSink(tmp_path / "n.jsonl")], incident_id="drill-undetected"
    )
    notifier.incident_started(clock.now, affected_services=["postgres"], severity="high")
    notifier.close(timeout=1.0)
    records = notifier.results()
    failed = [(r.template, r.audience) for r in records if r.verdict == "fail"]
    assert failed == [("internal_alert", a) for a in INTERNAL] + [
        ("customer_notification", a) for a in EXTERNAL
    ]
    assert all("never reported detecting" in r.detail for r in records if r.verdict == "fail")
    assert not (tmp_path / "n.jsonl").exists()


def test_settings_fill_the_commander_and_urls(
    notifier_factory: Callable[..., Notifier],
    plan: CommunicationPlan,
    clock: MockClock,
    tmp_path: Path,
) -> None:
    """NotifySettings values reach the messages; defaults say no real incident stands behind."""
    path = tmp_path / "n.jsonl"
    settings = NotifySettings(incident_commander="Ada (game day)", update_interval=600.0)
    notifier = notifier_factory(
        plan, [FileSink(path)], incident_id="drill-settings", settings=settings
    )
    notifier.incident_started(clock.now, affected_services=["postgres", "redis"], severity="high")
    notifier.detected(clock.now, detail="")
    notifier.close(timeout=10.0)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    alert = next(line["body"] for line in lines if line["template"] == "internal_alert")
    assert "Incident Commander: Ada (game day)" in alert
    assert "Communication Channel: drill: no real incident channel" in alert
    assert "Next Update: 2027-01-15T08:26:40.000000+00:00" in alert
    assert "Affected Services: postgres, redis" in alert
    assert "Actions Being Taken: automated failover" in alert
    assert "not estimated" in alert
    notice = next(line["body"] for line in lines if line["template"] == "customer_notification")
    assert "status page: drill: no real status page" in notice


def test_notifier_needs_a_sink(plan: CommunicationPlan) -> None:
    """A notifier without sinks is refused, naming the option that sets them."""
    with pytest.raises(ValueError, match="--drill-notify / drill_notify"):
        Notifier(plan, [], incident_id="drill-none")
