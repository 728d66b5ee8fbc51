"""etcd's disaster recovery on real members: the survivor of a lost quorum re-formed alone.

Starts three etcd members (a few seconds); run under ``flock /tmp/drdrill-heavy.lock``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from drill_helpers import require_patroni
from pytest_drdrill.topology.etcd import EtcdMember, http_json, http_send, start_members


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def members(tmp_path: Path) -> Iterator[list[EtcdMember]]:
    require_patroni()
    built = [
        EtcdMember(name, region, tmp_path / name, log=tmp_path / f"{name}.log", token="reform")
        for name, region in (("etcd-1", "primary"), ("etcd-2", "primary"), ("etcd-dr", "dr"))
    ]
    try:
        start_members(built)
        yield built
    finally:
        for member in built:
            member.cleanup()


def test_the_survivor_of_a_lost_quorum_serves_alone_with_its_keys(
    members: list[EtcdMember],
) -> None:
    """Two of three members lost: the third has no quorum until restarted alone, keys kept."""
    *lost, survivor = members
    status, _ = http_send(
        f"{survivor.client_url}/v3/kv/put", {"key": _b64("/leader"), "value": _b64("pg-1")}
    )
    assert status == 200
    for member in lost:
        member.crash()
    assert http_json(f"{survivor.client_url}/health", timeout=3.0) != {"health": "true"}

    survivor.restart_alone()

    assert survivor.member_names() == ["etcd-dr"]
    assert http_json(f"{survivor.client_url}/health") == {"health": "true"}
    status, body = http_send(f"{survivor.client_url}/v3/kv/range", {"key": _b64("/leader")})
    values = [base64.b64decode(kv["value"]).decode() for kv in json.loads(body)["kvs"]]
    assert values == ["pg-1"]
    assert "--force-new-cluster" not in survivor.command(), "the flag is for one start only"
