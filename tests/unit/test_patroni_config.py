"""Configuration of the Patroni cluster's servers, without starting any."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_drdrill.errors import TopologyError
from pytest_drdrill.topology.etcd import EtcdMember
from pytest_drdrill.topology.haproxy import haproxy_config
from pytest_drdrill.topology.patroni import FAST_DCS, PatroniMember, check_timings


def _member(tmp_path: Path, **kw: object) -> PatroniMember:
    return PatroniMember(
        "pg-1", "primary", tmp_path / "pg-1", scope="s", etcd_hosts=["127.0.0.1:1"],
        bin_dir=Path("/usr/lib/postgresql/15/bin"), log=tmp_path / "pg-1.log", **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_fast_timings_meet_patronis_rule() -> None:
    check_timings(FAST_DCS)
    assert FAST_DCS["loop_wait"] + 2 * FAST_DCS["retry_timeout"] <= FAST_DCS["ttl"] <= 10


def test_timings_breaking_the_rule_are_refused_with_the_fix() -> None:
    with pytest.raises(TopologyError, match=r"1 \+ 2 \* 5 > 10.*at least 11"):
        check_timings({"ttl": 10, "loop_wait": 1, "retry_timeout": 5})


def test_patroni_config_has_the_drill_settings(tmp_path: Path) -> None:
    member = _member(tmp_path, tags={"nosync": True}, dcs={"ttl": 20})
    member.connect_address = "127.0.0.1:5"
    member.prepare()
    config = json.loads(member.config_file.read_text())
    dcs = config["bootstrap"]["dcs"]
    assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"]) == (20, 1, 4)
    assert dcs["synchronous_mode"] is True
    assert dcs["postgresql"]["use_pg_rewind"] is True
    assert dcs["postgresql"]["parameters"]["wal_log_hints"] == "on"
    assert dcs["postgresql"]["parameters"]["wal_retrieve_retry_interval"] == "100ms"
    assert config["tags"]["nosync"] is True and config["tags"]["nofailover"] is False
    assert config["etcd3"] == {"hosts": ["127.0.0.1:1"], "use_proxies": True, "protocol": "http"}
    pg = config["postgresql"]
    assert pg["listen"] == member.address and pg["connect_address"] == "127.0.0.1:5"
    assert pg["data_dir"] == str(member.datadir)
    assert len(pg["parameters"]["unix_socket_directories"]) < 90
    assert config["restapi"]["listen"] == member.rest_address
    assert "method" not in config["bootstrap"]


def test_patroni_config_bootstraps_from_a_template(tmp_path: Path) -> None:
    member = _member(tmp_path, template=tmp_path / "template")
    bootstrap = member.config()["bootstrap"]
    method = bootstrap[bootstrap["method"]]
    assert method["command"] == f"cp -a {tmp_path / 'template'} {member.datadir}"
    assert method["no_params"] is True


def test_a_bad_timing_override_is_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="loop_wait"):
        _member(tmp_path, dcs={"retry_timeout": 10})


def test_haproxy_checks_patronis_primary_endpoint() -> None:
    config = haproxy_config(5000, [("pg-1", "127.0.0.1:10", "127.0.0.1:11")])
    assert "bind 127.0.0.1:5000" in config
    assert "option httpchk GET /primary" in config
    assert "http-check expect status 200" in config
    assert "inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions" in config
    assert "server pg-1 127.0.0.1:10 check addr 127.0.0.1 port 11" in config


def test_etcd_command_names_the_static_cluster(tmp_path: Path) -> None:
    member = EtcdMember("etcd-1", "primary", tmp_path / "e", log=tmp_path / "e.log")
    member.initial_cluster = "etcd-1=http://127.0.0.1:1,etcd-2=http://127.0.0.1:2"
    argv = member.command()
    assert argv[argv.index("--initial-cluster") + 1] == member.initial_cluster
    assert argv[argv.index("--listen-client-urls") + 1] == member.client_url
    assert argv[argv.index("--listen-peer-urls") + 1] == member.peer_url
    assert "--enable-v2=true" in argv


def test_a_lost_port_race_moves_both_ports_and_the_config(tmp_path: Path) -> None:
    """Either of Patroni's two ports may be the one taken: a new attempt moves both."""
    member = _member(tmp_path)
    before = (member.port, member.rest_port)
    member.choose_ports()
    assert (member.port, member.rest_port) != before
    member.prepare()
    config = json.loads(member.config_file.read_text())
    assert config["restapi"]["listen"] == f"127.0.0.1:{member.rest_port}"
    assert config["postgresql"]["listen"] == f"127.0.0.1:{member.port}"
