"""The application tier's pure parts: settings, configurations and request outcomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_drdrill.app.schema import AppSettings
from pytest_drdrill.app.service import password_digest
from pytest_drdrill.measure.app_functions import (
    AppFunctionClient,
    FrontDoor,
    Refused,
    Unanswered,
)
from pytest_drdrill.measure.history import History, Outcome
from pytest_drdrill.topology.app_tier import http_balancer_config
from pytest_drdrill.topology.dnsmasq import dnsmasq_command

SETTINGS = AppSettings("host=a", "host=b", "redis://r", "http://s", "videos", "dr")


def test_settings_travel_through_the_environment():
    assert AppSettings.from_environment(SETTINGS.environment()) == SETTINGS


def test_a_missing_setting_is_named_with_where_it_comes_from():
    env = SETTINGS.environment()
    del env["DRDRILL_APP_REDIS"]
    with pytest.raises(KeyError, match="DRDRILL_APP_REDIS is not set.*redis setting"):
        AppSettings.from_environment(env)


def test_password_digest_is_salted():
    assert password_digest("pw", b"a" * 16) != password_digest("pw", b"b" * 16)
    assert password_digest("pw", b"a" * 16) == password_digest("pw", b"a" * 16)


def test_balancer_checks_health_of_every_replica():
    config = http_balancer_config("127.0.10.2", 8080, [("app-1", "127.0.0.1:1"), ("app-2", "h:2")])
    assert "bind 127.0.10.2:8080" in config
    assert "option httpchk GET /health" in config
    assert "http-check expect status 200" in config
    assert config.count(" check\n") == 2
    assert "server app-2 h:2 check" in config


def test_dnsmasq_reads_nothing_of_the_system():
    argv = dnsmasq_command("dnsmasq", 5353, Path("/w/h"), ttl=1, domain="drdrill.test")
    assert "--conf-file=/dev/null" in argv and "--no-resolv" in argv and "--no-hosts" in argv
    assert "--local-ttl=1" in argv and "--port=5353" in argv
    assert "--listen-address=127.0.0.1" in argv and "--addn-hosts=/w/h" in argv


class _Session:
    """Answers one request as told: a status and reply, or an exception."""

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.token: str | None = "t"
        self.door = FrontDoor("n", "127.0.0.1", 1, 2)
        self.timeout = 1.0

    def call(self, method: str, path: str, body: object = None) -> object:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def log_in(self, user: str, password: str) -> None:
        self.token = "t"


def _outcome(function: str, answer: object) -> Outcome:
    client = AppFunctionClient(function, FrontDoor("n", "127.0.0.1", 1, 2), History())
    client.session = _Session(answer)  # type: ignore[assignment]
    return client.once(1)[0]


@pytest.mark.parametrize(
    ("function", "answer", "expected"),
    [
        ("video_upload", (201, {}), Outcome.OK),
        ("video_upload", Refused("no healthy replica"), Outcome.FAIL),
        ("video_upload", Unanswered("reset"), Outcome.INFO),
        ("video_upload", (503, {"error": "x"}), Outcome.INFO),
        ("video_upload", (401, None), Outcome.FAIL),
        ("annotation_system", (400, None), Outcome.FAIL),
        ("reporting_and_analytics", Unanswered("reset"), Outcome.FAIL),
        ("reporting_and_analytics", (503, {"error": "x"}), Outcome.FAIL),
        ("user_authentication", (200, {"token": "x"}), Outcome.OK),
    ],
)
def test_what_each_answer_proves(function: str, answer: object, expected: Outcome):
    """A write without an answer may have applied; a read without one simply failed."""
    assert _outcome(function, answer) is expected


def test_a_lost_session_makes_the_client_log_in_again():
    client = AppFunctionClient("video_upload", FrontDoor("n", "127.0.0.1", 1, 2), History())
    session = _Session((401, None))
    client.session = session  # type: ignore[assignment]
    assert client.once(1) == (Outcome.FAIL, "HTTP 401: session no longer known")
    assert session.token is None


def test_a_region_without_replicas_is_refused_with_the_counts(tmp_path: Path):
    from pytest_drdrill.errors import TopologyError
    from pytest_drdrill.topology.app_tier import AppTier

    with pytest.raises(TopologyError, match=r"\{'primary': 2, 'dr': 0\}.*at least 1"):
        AppTier(tmp_path, SETTINGS, replicas={"primary": 2, "dr": 0})
