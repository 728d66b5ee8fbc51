"""The backup region's place in the topology: stack files, storage failover, described shape."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from pytest_drdrill.errors import FailoverFailed
from pytest_drdrill.recovery.services import storage_candidate
from pytest_drdrill.topology._protocol import BACKUP_REGION, REGIONS
from pytest_drdrill.topology.stack_file import StackFileError, StackSpec

SHIPPED = Path(__file__).resolve().parents[2] / "fixtures" / "stack-compose.yaml"
BACKUP_NODE = {"service": "s3", "region": "backup", "address": "127.0.0.1:19443",
               "upstream": "s3-backup:9000"}  # fmt: skip


def _stack(tmp_path: Path, **nodes: dict[str, str]) -> Path:
    data = yaml.safe_load(SHIPPED.read_text())
    data["nodes"].update(nodes)
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_backup_region_is_a_third_site_not_a_failover_region():
    """The backup region serves no clients: it is not one of the failover regions."""
    assert BACKUP_REGION == "backup" and BACKUP_REGION not in REGIONS


def test_a_stack_file_may_name_a_backup_region_store_without_a_client_path(tmp_path):
    """An s3 node in region backup is read; it needs no client path (clients never use it)."""
    spec = StackSpec.load(_stack(tmp_path, **{"s3-archive": BACKUP_NODE}))
    assert spec.nodes["s3-archive"].region == "backup"
    assert "s3-archive" not in spec.client_paths


def test_without_one_the_stack_has_no_backup_region_store():
    """The shipped stack file names none: the weekly check reports the region not configured."""
    assert not [n for n in StackSpec.load(SHIPPED).nodes.values() if n.region == "backup"]


@pytest.mark.parametrize("service", ["postgres", "redis"])
def test_only_an_object_store_may_be_in_the_backup_region(tmp_path, service):
    """A database in region backup is a mistake named with its key and what to give."""
    path = _stack(tmp_path, **{"x-backup": {**BACKUP_NODE, "service": service}})
    with pytest.raises(StackFileError, match=r"key nodes\.x-backup\.region: give primary or dr "
                       r"\(only an s3 node may be in region backup\)"):  # fmt: skip
        StackSpec.load(path)


def test_an_unknown_region_of_an_object_store_names_the_three(tmp_path):
    """An s3 node's region must be primary, dr or backup."""
    path = _stack(tmp_path, **{"s3-x": {**BACKUP_NODE, "region": "archive"}})
    with pytest.raises(
        StackFileError, match=r"key nodes\.s3-x\.region: give primary, dr or backup"
    ):
        StackSpec.load(path)


def _store(name: str, region: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, region=region, fenced=False)


def test_storage_failover_never_switches_to_the_backup_region():
    """The clients' store fails over to DR, never to the store that keeps backup copies."""
    primary, backup, dr = (
        _store("s3-primary", "primary"),
        _store("s3-backup", "backup"),
        _store("s3-dr", "dr"),
    )
    nodes = {"s3-primary": primary, "s3-backup": backup, "s3-dr": dr}
    topology = SimpleNamespace(s3_endpoint=SimpleNamespace(target=primary), s3_nodes=nodes)
    assert storage_candidate(topology) is dr  # type: ignore[arg-type]
    dr.fenced = True
    with pytest.raises(FailoverFailed, match="no object store left"):
        storage_candidate(topology)  # type: ignore[arg-type]
