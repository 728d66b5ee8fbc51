"""Function probes: read from the targets file with errors naming the key; sent; measured."""

from __future__ import annotations

import http.server
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from pytest_drdrill.errors import InvalidTargets
from pytest_drdrill.measure.function_probes import measure_probe_rto, send, unreachable_before
from pytest_drdrill.measure.history import History, ProbeOp
from pytest_drdrill.targets.loader import load_targets
from pytest_drdrill.targets.model import FunctionProbe

ROOT = Path(__file__).resolve().parents[2]


def _load(tmp_path: Path, probes: object, **extra: object) -> object:
    data = yaml.safe_load((ROOT / "fixtures" / "targets.yaml").read_text())
    data["business_functions"]["video_upload"].update({"probes": probes, **extra})
    path = tmp_path / "targets.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_targets(path).business_functions["video_upload"]


def test_probes_of_each_kind_are_read(tmp_path: Path) -> None:
    function = _load(
        tmp_path,
        [
            {"name": "upload", "http": {"url": "http://app/upload", "method": "post",
                                        "status": 201, "body": "{}"}},
            {"sql": {"dsn_env": "APP_DSN", "query": "SELECT 1", "expect": 1}},
            {"command": {"argv": ["true"], "timeout": "5s"}},
        ],
        probe_interval="250ms",
    )  # fmt: skip
    probes = function.probes  # type: ignore[attr-defined]
    assert [p.name for p in probes] == ["upload", "sql-2", "command-3"]
    assert probes[0].settings["method"] == "POST" and probes[0].timeout == 2.0
    assert probes[2].timeout == 5.0
    assert function.probe_interval == 0.25  # type: ignore[attr-defined]
    assert probes[1].describe() == "sql on $APP_DSN: SELECT 1"


@pytest.mark.parametrize(
    ("probes", "key", "problem"),
    [
        ([], "probes", "expected a list of probes"),
        ([{"name": "x"}], r"probes\[0\]", "exactly one of http, sql or command; this one has none"),
        ([{"http": {"url": "ftp://x"}}], r"probes\[0\].http.url", "is not an http\\(s\\) URL"),
        ([{"http": {"url": "http://x", "status": 999}}], r"probes\[0\].http.status", "HTTP status"),
        ([{"http": {"url": "http://x", "verb": "GET"}}], r"probes\[0\].http.verb", "unknown key"),
        ([{"sql": {"dsn_env": "app dsn", "query": "SELECT 1"}}], r"probes\[0\].sql.dsn_env",
         "not an environment variable"),
        ([{"command": {"argv": []}}], r"probes\[0\].command.argv", "a list of arguments"),
        ([{"command": {"argv": ["true"], "timeout": "0s"}}], r"probes\[0\].command.timeout",
         "above 0"),
        ([{"name": "a", "command": {"argv": ["true"]}}, {"name": "a", "sql": {
            "dsn_env": "X", "query": "q"}}], "probes", "two probes are named 'a'"),
    ],
)  # fmt: skip
def test_mistakes_name_the_key(tmp_path: Path, probes: object, key: str, problem: str) -> None:
    with pytest.raises(
        InvalidTargets, match=rf"business_functions.video_upload.{key}: .*{problem}"
    ):
        _load(tmp_path, probes)


def test_send_answers_none_only_for_the_expected_answer() -> None:
    ok = FunctionProbe("ok", "command", {"argv": [sys.executable, "-c", "pass"]}, 5.0)
    bad = FunctionProbe("bad", "command", {"argv": [sys.executable, "-c", "exit(3)"]}, 5.0)
    assert send(ok) is None
    assert send(bad) == "exit status 3"

    class App(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200 if self.path == "/up" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        up = {"url": f"{base}/up", "method": "GET", "status": 200, "body": None, "headers": {}}
        assert send(FunctionProbe("up", "http", up, 2.0)) is None
        down = {**up, "url": f"{base}/down"}
        assert send(FunctionProbe("down", "http", down, 2.0)) == "HTTP 503, expected 200"
    finally:
        server.shutdown()
        server.server_close()


def test_a_probe_that_outlives_its_timeout_fails_although_every_read_was_quick() -> None:
    # The server answers slowly but never pauses long enough for a socket timeout: like a
    # query on a server frozen after it accepted the connection, only a deadline on the
    # whole round trip shows the outage (it used to wait out the stall and succeed).
    class Trickle(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.3)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        slow = {"url": url, "method": "GET", "status": 200, "body": None, "headers": {}}
        started = time.monotonic()
        assert send(FunctionProbe("slow", "http", slow, 1.0)) == "no answer within 1s"
        assert time.monotonic() - started < 2.0
    finally:
        server.shutdown()
        server.server_close()


def test_rto_counts_from_the_fault_to_the_first_success_after_the_last_failure() -> None:
    history = History()
    for invoked, ok in [(0.0, True), (1.0, True), (2.0, False), (3.0, True), (4.0, False),
                        (5.0, True), (6.0, True)]:  # fmt: skip
        history.record_probe(ProbeOp(invoked, invoked + 0.1, ok, "" if ok else "refused"))
    assert unreachable_before(history, 1.5) is None
    rto = measure_probe_rto(history, 1.5)
    assert rto.effect_seen and rto.seconds == pytest.approx(5.1 - 1.5)
    assert unreachable_before(History(), 1.5) == "its probes sent no request before the fault"
