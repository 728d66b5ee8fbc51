"""The stack file's ``patroni:`` section: checked against the file's nodes, errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pytest_drdrill.topology.stack_file import StackFileError, StackSpec

SHIPPED = Path(__file__).resolve().parents[2] / "fixtures" / "stack-compose.yaml"
REST = {
    "pg-primary": "http://127.0.0.1:8008",
    "pg-sync": "http://127.0.0.1:8009",
    "pg-dr": "http://127.0.0.1:8010",
}


def _with(tmp_path: Path, patroni: object) -> Path:
    data = yaml.safe_load(SHIPPED.read_text())
    data["patroni"] = patroni
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_full_section_is_read(tmp_path: Path) -> None:
    spec = StackSpec.load(
        _with(
            tmp_path,
            {
                "rest": REST,
                "haproxy": "127.0.0.1:5000",
                "dcs": {"etcd-1": {"region": "primary"}, "etcd-3": {"region": "dr"}},
                "dcs_paths": {"pg-primary": {"etcd-1": "etcd1-pg-primary"}},
            },
        )
    )
    assert spec.patroni is not None
    assert spec.patroni.rest == REST
    assert spec.patroni.haproxy == "127.0.0.1:5000"
    assert spec.patroni.dcs == {"etcd-1": "primary", "etcd-3": "dr"}
    assert spec.patroni.dcs_paths == {"pg-primary": {"etcd-1": "etcd1-pg-primary"}}


def test_without_the_section_there_is_no_patroni() -> None:
    assert StackSpec.load(SHIPPED).patroni is None


MISTAKES = [
    (
        {"rest": {**REST, "redis-primary": "http://x:1"}},
        r"key patroni.rest.redis-primary: not a postgres node",
    ),
    (
        {"rest": {"pg-primary": REST["pg-primary"]}},
        r"key patroni.rest: no REST URL for pg-dr, pg-sync",
    ),
    (
        {"rest": {**REST, "pg-dr": "127.0.0.1:8010"}},
        r"key patroni.rest.pg-dr: give the REST API's URL, e.g. http://127.0.0.1:8010",
    ),
    ({"rest": REST, "haproxy": "nowhere"}, r"key patroni.haproxy: give host:port"),
    (
        {"rest": REST, "dcs": {"etcd-1": {"region": "west"}}},
        r"key patroni.dcs.etcd-1.region: give primary or dr",
    ),
    (
        {"rest": REST, "dcs_paths": {"pg-primary": {"etcd-9": "p"}}},
        r"key patroni.dcs_paths.pg-primary.etcd-9: not a DCS member",
    ),
    (
        {"rest": REST, "ttl": 30},
        r"key patroni: unknown key\(s\) ttl; valid: dcs, dcs_paths, haproxy, rest",
    ),
]


@pytest.mark.parametrize(("patroni", "message"), MISTAKES)
def test_mistakes_name_the_file_and_key(tmp_path: Path, patroni: object, message: str) -> None:
    path = _with(tmp_path, patroni)
    with pytest.raises(StackFileError, match=rf"stack file {path}, {message}"):
        StackSpec.load(path)
