"""repmgr's failover envelope from repmgr.conf settings, and the repmgr.conf the drill writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_drdrill.recovery.envelope import precheck, repmgr_envelope
from pytest_drdrill.topology.repmgr import FAST_REPMGRD, RepmgrMember

BIN = Path("/usr/lib/postgresql/15/bin")


def test_node_loss_envelope_sums_monitor_interval_reconnects_and_promotion() -> None:
    """The reconnect window: repmgrd sleeps between attempts, not after the last (5 for 6)."""
    env = repmgr_envelope(
        "node_loss",
        {"failover": "automatic", "reconnect_attempts": 6, "reconnect_interval": 10,
         "monitor_interval_secs": 2},
    )  # fmt: skip
    assert env.worst_case_seconds == 2 + (6 - 1) * 10 + 2.0
    assert env.best_case_seconds == 50
    assert "reconnect_attempts" in env.describe()
    assert precheck(env, 30.0) is not None  # repmgr's defaults cannot meet a 30 s tier


def test_defaults_fill_missing_keys_and_manual_failover_has_no_bound() -> None:
    assert repmgr_envelope("node_loss", {"failover": "automatic"}).worst_case_seconds == 54.0
    manual = repmgr_envelope("node_loss", {**FAST_REPMGRD, "failover": "manual"})
    assert manual.worst_case_seconds is None
    assert "not automatic" in manual.reason


def test_faults_repmgr_does_not_bound_are_refused() -> None:
    with pytest.raises(ValueError, match="dcs_partition"):
        repmgr_envelope("dcs_partition", FAST_REPMGRD)


def test_config_routes_peers_through_the_link_and_keeps_team_settings(tmp_path: Path) -> None:
    if not (BIN / "repmgrd").exists():
        pytest.skip("postgresql-15-repmgr is not installed")
    member = RepmgrMember(
        "pg-sync", 2, "primary", tmp_path / "n", bin_dir=BIN, log=tmp_path / "l.log",
        settings={"priority": 100, "reconnect_attempts": 4},
    )  # fmt: skip
    member.connect_address = "127.0.0.1:4242"
    member.write_config()
    text = member.config_file.read_text()
    assert "conninfo='host=127.0.0.1 port=4242 " in text
    assert "reconnect_attempts=4\n" in text
    assert "failover='automatic'\n" in text
    assert "primary_visibility_consensus=true\n" in text
    assert "--upstream-node-id=%n" in text
