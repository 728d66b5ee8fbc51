"""The team's repmgr settings: both file syntaxes, per-node keys, the merge into repmgr.conf."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_drdrill.errors import RepmgrSettingsError
from pytest_drdrill.recovery.envelope import precheck, repmgr_envelope
from pytest_drdrill.topology.repmgr_settings import (
    check_settings,
    load_settings,
    parse_repmgr_conf,
)


def test_repmgr_conf_syntax_is_typed_as_repmgr_reads_it() -> None:
    text = "# c\nreconnect_attempts=4\nfailover='automatic'\nprimary_visibility_consensus=true\n"
    assert parse_repmgr_conf(text) == {
        "reconnect_attempts": 4,
        "failover": "automatic",
        "primary_visibility_consensus": True,
    }


def test_yaml_with_a_node_section(tmp_path: Path) -> None:
    path = tmp_path / "repmgr.yml"
    path.write_text("reconnect_interval: 2\nnodes:\n  pg-dr:\n    priority: 0\n")
    settings = load_settings(path)
    assert settings.nodes == {"*": {"reconnect_interval": 2}, "pg-dr": {"priority": 0}}
    assert settings.source == str(path)


def test_the_veto_rule_is_checked_per_node() -> None:
    with pytest.raises(RepmgrSettingsError, match=r"x\.yml: reconnect_attempts: .* = 2 s"):
        check_settings({"nodes": {"pg-sync": {"reconnect_attempts": 2}}}, source="x.yml")
    # Without the consensus there is no veto to outlast.
    check_settings({"reconnect_attempts": 1, "primary_visibility_consensus": False}, source="x.yml")


def test_bools_are_not_numbers() -> None:
    with pytest.raises(RepmgrSettingsError, match="bool True is not allowed"):
        check_settings({"reconnect_attempts": True}, source="x.yml")


def test_the_precheck_names_the_repmgr_settings() -> None:
    env = repmgr_envelope(
        "node_loss",
        {"failover": "automatic", "reconnect_attempts": 60, "reconnect_interval": 31,
         "monitor_interval_secs": 2},
    )  # fmt: skip
    message = precheck(env, 1800.0)
    assert message is not None
    assert "lower reconnect_attempts × reconnect_interval (now 1829 s)" in message
    assert "--drill-repmgr-config" in message and "Patroni" not in message
