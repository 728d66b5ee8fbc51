"""No secret a drill is given reaches its evidence.

A restore drill runs with a known backup key (``DRDRILL_BACKUP_KEY``), a webhook whose
URL carries a token in its path, query and user info, and a database password and object
store credentials in the environment, as a game day's CI job would have them. Afterwards
every file under the report directory (drill.json, JUnit, HTML, the MTD document,
notifications, history, Prometheus figures, checksums, whatever else was kept) is read as
bytes and searched for each secret, in every encoding it could have been written in.
"""

from __future__ import annotations

import base64
import http.server
import threading
import urllib.parse
from collections.abc import Iterator

import pytest

KEY = bytes(range(7, 39))  # 32 bytes
WEBHOOK_TOKEN = "T0kenInThePath9f2c"
QUERY_TOKEN = "QueryT0ken7d1e"
USERINFO_PASSWORD = "Us3rinfoPass5a"
PG_PASSWORD = "PgPassw0rd81b7"
AWS_SECRET = "AwsS3cretKey4c0d"

DRILL = """
import pytest
from pytest_drdrill import timing

@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", data="critical_user_data",
                     scenario="secrets-restore")
def test_restore(drdrill, drdrill_backups):
    with drdrill.running():
        drdrill_backups.base_backup()
        assert drdrill.workload.wait_for_acks(50)
        anchor = timing.anchor()
        target = timing.wall()
        drdrill.faults.drop_table()
        incident = timing.wall()
        drdrill.declare_incident("ledger table dropped: restore to the moment before")
        drdrill_backups.archive_now()
    restored = drdrill.restore(drdrill_backups, target)
    try:
        drdrill.conclude_restore(restored, target=target, incident=incident, anchor=anchor)
    finally:
        restored.node.cleanup()
"""


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[bytes], list[str]]]:
    """A webhook on 127.0.0.1 whose URL holds tokens; yields the URL and the bodies received."""
    received: list[bytes] = []
    authorizations: list[str] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            authorizations.append(self.headers.get("Authorization", ""))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        yield (
            f"http://alerts:{USERINFO_PASSWORD}@127.0.0.1:{port}/hooks/{WEBHOOK_TOKEN}"
            f"?token={QUERY_TOKEN}",
            received,
            authorizations,
        )
    finally:
        server.shutdown()
        server.server_close()


def _encodings(secret: bytes) -> dict[str, bytes]:
    text = secret.decode("latin-1")
    return {
        "raw": secret,
        "base64": base64.b64encode(secret),
        "urlsafe base64": base64.urlsafe_b64encode(secret).rstrip(b"="),
        "hex": secret.hex().encode(),
        "HEX": secret.hex().upper().encode(),
        "url-quoted": urllib.parse.quote(text).encode(),
        "json-escaped": text.encode("unicode_escape"),
    }


def test_no_secret_reaches_the_reports(
    pytester: pytest.Pytester,
    drill_args: list[str],
    webhook: tuple[str, list[bytes], list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, received, authorizations = webhook
    monkeypatch.setenv("DRDRILL_BACKUP_KEY", base64.b64encode(KEY).decode())
    monkeypatch.setenv("PGPASSWORD", PG_PASSWORD)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    pytester.makepyfile(test_secrets=DRILL)
    result = pytester.runpytest_subprocess(*drill_args, f"--drill-notify={url}")
    result.assert_outcomes(passed=1)
    assert received, "the webhook got no notification: the drill did not exercise it"
    # The URL's user info reached the receiver as HTTP Basic authentication, not in a report.
    basic = base64.b64encode(f"alerts:{USERINFO_PASSWORD}".encode()).decode()
    assert set(authorizations) == {f"Basic {basic}"}, authorizations

    secrets = {
        "backup key": KEY,
        "webhook path token": WEBHOOK_TOKEN.encode(),
        "webhook query token": QUERY_TOKEN.encode(),
        "webhook user-info password": USERINFO_PASSWORD.encode(),
        "database password": PG_PASSWORD.encode(),
        "object store secret": AWS_SECRET.encode(),
    }
    files = [p for p in (pytester.path / "reports").rglob("*") if p.is_file()]
    assert any(p.name == "drill.json" for p in files), files
    found = [
        f"{what} ({encoding}) in {path.relative_to(pytester.path)}"
        for path in files
        for what, secret in secrets.items()
        for encoding, form in _encodings(secret).items()
        if form in path.read_bytes()
    ]
    terminal = "\n".join(result.outlines + result.errlines).encode()
    found += [
        f"{what} ({encoding}) in the terminal output"
        for what, secret in secrets.items()
        for encoding, form in _encodings(secret).items()
        if form in terminal
    ]
    assert not found, "secrets in the evidence:\n" + "\n".join(found)
