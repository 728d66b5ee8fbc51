"""Barman's generated configuration and the retention read back from it."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from pytest_drdrill.backup.tools import make_tool
from pytest_drdrill.backup.tools.barman_config import (
    LOCAL_RETENTION,
    SERVER,
    render,
    window_days,
)


def test_render_is_a_streaming_postgres_backup_server():
    """No ssh: pg_basebackup backups and pg_receivewal on a slot, with the binaries' path."""
    text = render(
        user="postgres", home=Path("/d/h"), host="127.0.0.1", port=5999,
        bindir=Path("/usr/lib/postgresql/15/bin"), retention=LOCAL_RETENTION, slot="s",
    )  # fmt: skip
    parsed = configparser.ConfigParser()
    parsed.read_string(text)
    assert parsed["barman"]["barman_home"] == "/d/h"
    server = parsed[SERVER]
    assert server["backup_method"] == "postgres"
    assert server["streaming_archiver"] == "on"
    assert server["slot_name"] == "s"
    assert "port=5999" in server["conninfo"] and "port=5999" in server["streaming_conninfo"]
    assert server["retention_policy"] == LOCAL_RETENTION


@pytest.mark.parametrize(
    ("policy", "days"),
    [
        ("RECOVERY WINDOW OF 30 DAYS", 30.0),
        ("recovery window of 2 weeks", 14.0),
        ("RECOVERY WINDOW OF 1 MONTH", 31.0),
        ("REDUNDANCY 3", None),
        ("", None),
    ],
)
def test_window_days(policy, days):
    """Only a recovery window is a number of days; a redundancy count is not."""
    assert window_days(policy) == days


def test_make_tool_names_barman():
    """``make_tool("barman")`` is the Barman module."""
    assert make_tool("barman").name == "barman"
