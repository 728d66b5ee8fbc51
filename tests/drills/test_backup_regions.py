"""The three regions that keep backups, against real moto servers and a real local topology.

One store per region (primary, DR, backup), each its own ``moto_server`` process; the
weekly cross-region validation copies to the DR and backup regions and checks each.
"""

from __future__ import annotations

import concurrent.futures
import io
import os
import uuid
from collections.abc import Iterator

import pytest

from drill_helpers import tagged_processes
from pytest_drdrill.backup.catalog import Catalog
from pytest_drdrill.backup.keys import KeyRing, generate_key
from pytest_drdrill.backup.manifest import Manifest
from pytest_drdrill.backup.region_checks import CrossRegionValidation, check_cross_region_backups
from pytest_drdrill.backup.site import BACKUP_BUCKET, BackupSite
from pytest_drdrill.backup.verification import SCHEDULE
from pytest_drdrill.clients.s3 import ensure_bucket, s3_client
from pytest_drdrill.servers import processes
from pytest_drdrill.topology.s3 import LocalS3Node

RING = KeyRing.of(generate_key())
REGIONS = ("primary", "dr", "backup")


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalS3Node]]:
    """One moto server per region."""
    root = tmp_path_factory.mktemp("regions-s3")
    nodes = {r: LocalS3Node(f"s3-{r}", r, root / r, log=root / f"{r}.log") for r in REGIONS}
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(lambda node: node.start(), nodes.values()))
        yield nodes
    finally:
        for node in nodes.values():
            node.cleanup()


@pytest.fixture
def catalogs(stores: dict[str, LocalS3Node]) -> dict[str, Catalog | None]:
    """A fresh bucket in each region; two backups in the primary region only."""
    bucket = f"backups-{uuid.uuid4().hex[:10]}"
    found: dict[str, Catalog | None] = {}
    for region, node in stores.items():
        client = s3_client(node.endpoint_url, timeout=30.0)
        ensure_bucket(client, bucket)
        found[region] = Catalog(client, bucket, chunk_size=4096)
    primary = found["primary"]
    assert primary is not None
    for kind in ("postgres-base", "redis-snapshot"):
        files = {"data": io.BytesIO(os.urandom(3 * 4096 + 7))}
        primary.put_backup(Manifest.new(kind, "test"), files, RING.current)
    return found


def _by_region(results):
    return {r.region: r for r in results}


def _first_data_key(catalog: Catalog) -> str:
    manifest = catalog.list_backups()[0]
    return catalog.data_key(manifest.backup_id, manifest.files[0].name)


def test_every_region_verified_after_the_copy(catalogs):
    """The copy fills DR and backup; each region then passes its own check, named."""
    results = _by_region(check_cross_region_backups(catalogs, RING))
    assert list(results) == list(REGIONS)
    for region, result in results.items():
        assert result.ok, result.detail
        assert result.name in SCHEDULE and SCHEDULE[result.name] == "weekly"
        assert result.detail.startswith(f"{region} region (")
        assert "2 backups, 2 files" in result.detail
    backup = catalogs["backup"]
    assert backup is not None and len(backup.backup_ids()) == 2


def test_a_damaged_copy_in_the_backup_region_fails_only_that_region(catalogs):
    """A flipped byte in the backup region's copy: backup red, naming the object; others green."""
    validation = CrossRegionValidation(catalogs, RING)
    assert validation.copy().ok
    backup = catalogs["backup"]
    assert backup is not None
    key = _first_data_key(backup)
    body = bytearray(backup.client.get_object(Bucket=backup.bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0x01
    backup.client.put_object(Bucket=backup.bucket, Key=key, Body=bytes(body))
    # The weekly run copies again first: a listed backup is left alone, so the damage stays.
    assert validation.copy().detail == (
        "copied 0 backups to the dr region, 0 backups to the backup region"
    )
    results = {region: validation.check(region) for region in REGIONS}
    assert results["primary"].ok and results["dr"].ok
    assert not results["backup"].ok
    assert results["backup"].detail.startswith("backup region (")
    assert "1 problem" in results["backup"].detail and key in results["backup"].detail


def test_a_deleted_file_in_the_backup_region_fails_that_region(catalogs):
    """A stored file gone from the backup region's copy: backup red, naming the missing object."""
    validation = CrossRegionValidation(catalogs, RING)
    validation.copy()
    backup = catalogs["backup"]
    assert backup is not None
    key = _first_data_key(backup)
    backup.client.delete_object(Bucket=backup.bucket, Key=key)
    results = _by_region(check_cross_region_backups(catalogs, RING))
    assert [r for r in REGIONS if not results[r].ok] == ["backup"]
    assert key in results["backup"].detail


def test_an_unlisted_copy_is_copied_again(catalogs):
    """A backup the backup region no longer lists is copied anew: the weekly run repairs it."""
    check_cross_region_backups(catalogs, RING)
    backup = catalogs["backup"]
    assert backup is not None
    gone = backup.backup_ids()[0]
    backup.client.delete_object(Bucket=backup.bucket, Key=backup.entry_key(gone))
    validation = CrossRegionValidation(catalogs, RING)
    assert "1 backup to the backup region" in validation.copy().detail
    assert validation.check("backup").ok
    assert gone in backup.backup_ids()


def test_a_backup_missing_from_the_backup_region_is_named(catalogs):
    """A backup that cannot be copied (its source is damaged) is unavailable there, by id."""
    check_cross_region_backups(catalogs, RING)
    primary, backup = catalogs["primary"], catalogs["backup"]
    assert primary is not None and backup is not None
    gone = backup.backup_ids()[0]
    backup.client.delete_object(Bucket=backup.bucket, Key=backup.entry_key(gone))
    key = primary.data_key(gone, primary.manifest(gone).files[0].name)
    original = primary.client.get_object(Bucket=primary.bucket, Key=key)["Body"].read()
    primary.client.put_object(Bucket=primary.bucket, Key=key, Body=original[:-1])
    try:
        results = _by_region(check_cross_region_backups(catalogs, RING))
    finally:
        primary.client.put_object(Bucket=primary.bucket, Key=key, Body=original)
    detail = results["backup"].detail
    assert not results["backup"].ok
    assert "copy from the primary region stopped" in detail
    assert f"1 backup held in another region not listed here: {gone}" in detail
    assert not results["primary"].ok  # the damaged source, found in its own region
    assert results["dr"].ok


def test_a_region_without_a_store_is_not_configured_and_fails(catalogs):
    """No backup-region store: its check fails as not configured, with the fix; never passes."""
    validation = CrossRegionValidation({**catalogs, "backup": None}, RING)
    copy = validation.copy()
    assert not copy.ok and "backup region: not configured" in copy.detail
    result = validation.check("backup")
    assert not result.ok and result.region == "backup"
    assert result.detail.startswith("backup region: not configured")
    assert "region: backup" in result.detail  # the stack file's key to add
    assert validation.check("dr").ok


def test_an_unreachable_backup_region_is_not_available(catalogs):
    """A backup region whose store does not answer fails as not available, naming it."""
    dead = Catalog(
        s3_client(f"http://127.0.0.1:{processes.free_port()}", timeout=1.0), "drdrill-backups"
    )
    results = _by_region(check_cross_region_backups({**catalogs, "backup": dead}, RING))
    assert results["primary"].ok and results["dr"].ok
    assert not results["backup"].ok
    assert results["backup"].detail.startswith("backup region (")
    assert "is not available" in results["backup"].detail


def test_the_source_region_must_have_a_catalog(catalogs):
    """Without the source region's catalog nothing can be copied: a usage error, not a result."""
    with pytest.raises(ValueError, match="no catalog for the source region 'primary'"):
        CrossRegionValidation({**catalogs, "primary": None}, RING)


def test_local_topology_starts_its_backup_region_store_for_backups(topology):
    """s3-backup (region backup) is started by the first BackupSite, which keeps a third catalog."""
    backend, topo = topology
    node = topo.s3_nodes["s3-backup"]
    assert node.region == "backup"
    assert topo.s3_primary.name == "s3-primary"
    site = BackupSite(topo, RING, backend.dataroot / "regions-site")
    try:
        assert node.is_running() and "s3-backup" in topo.client_paths
        (pid, *_) = node.pids()
        assert str(pid) in {p.split()[0] for p in tagged_processes(processes.owner_tag())}
        assert site.backup_catalog is not None
        assert site.backup_catalog.client.meta.endpoint_url == node.endpoint_url
        assert list(site.catalogs()) == list(REGIONS)
        client = s3_client(node.endpoint_url)
        assert client.head_bucket(Bucket=BACKUP_BUCKET)
        # The clients' versioned bucket lives in the serving regions only.
        assert {b["Name"] for b in client.list_buckets()["Buckets"]} == {BACKUP_BUCKET}
        assert topo.backup_store() is node  # started once
    finally:
        site.close()


def test_the_backup_store_waits_for_backups_and_closes_like_every_server(topology, tmp_path):
    """A drill without backups never starts s3-backup; once started, close() stops it too."""
    backend, _ = topology
    idle = backend.topology(tmp_path / "idle")
    try:
        assert not idle.s3_nodes["s3-backup"].is_running()
        assert "s3-backup" not in idle.client_paths
    finally:
        idle.close()
    topo = backend.topology(tmp_path / "topo")
    store = topo.backup_store()
    assert store is not None
    pids = {str(pid) for pid in store.pids()}
    assert pids
    topo.close()
    assert not pids & {p.split()[0] for p in tagged_processes(processes.owner_tag())}


def _describe_as_stack(topo, path, *, with_backup: bool):
    """The local topology described in a stack file, as a team describes its running stack."""
    import yaml

    stores = {
        n: s for n, s in topo.s3_nodes.items() if with_backup or s.region != "backup"
    }  # fmt: skip
    groups = (("postgres", topo.pg_nodes), ("redis", topo.redis_nodes), ("s3", stores))
    nodes = {
        name: {"service": service, "region": node.region, "address": node.address,
               "upstream": node.address}
        for service, group in groups for name, node in group.items()
    }  # fmt: skip
    spec = {
        "proxy": {"api": topo.proxy.base_url},
        "bucket": topo.bucket,
        "nodes": nodes,
        "paths": {
            "endpoints": {s: topo.endpoint(s).proxy_name for s in ("postgres", "redis", "s3")},
            # The backup-region store is left without a client path: it needs none.
            "client_paths": {
                n: link.proxy_name for n, link in topo.client_paths.items() if n != "s3-backup"
            },
            "replication": {},
        },
        "sync_standbys": ["pg-sync"],
    }
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize("with_backup", [True, False])
def test_a_stack_backup_region_store_is_adopted_or_reported_missing(
    topology, tmp_path, with_backup
):
    """Stack backend: a named backup-region store is kept apart; without one, not configured."""
    from pytest_drdrill.topology.describe import describe
    from pytest_drdrill.topology.stack import StackBackend

    _, topo = topology
    topo.backup_store()  # the team's backup store runs
    path = _describe_as_stack(topo, tmp_path / "stack.yaml", with_backup=with_backup)
    backend = StackBackend(path, tmp_path).start()
    try:
        stack = backend.topology(tmp_path / "drill")
        try:
            facts = describe(stack)
            regions = {n["name"]: n["region"] for n in facts["nodes"]}
            assert stack.s3_primary.name == "s3-primary"
            if with_backup:
                assert regions["s3-backup"] == "backup"
                assert stack.s3_nodes["s3-backup"].region == "backup"
                # The drills' object ledger is not put in the team's backup store.
                client = s3_client(stack.s3_nodes["s3-backup"].endpoint_url)
                assert stack.bucket not in {b["Name"] for b in client.list_buckets()["Buckets"]}
                assert not [p for p in facts["problems"] if "s3-backup" in p]
            else:
                assert "backup" not in regions.values()
                backup = [n for n in stack.s3_nodes.values() if n.region == "backup"]
                catalogs = {"primary": Catalog(s3_client(stack.s3_nodes["s3-primary"].endpoint_url),
                                               BACKUP_BUCKET), "backup": None}  # fmt: skip
                assert not backup
                result = CrossRegionValidation(catalogs, RING).check("backup")
                assert not result.ok and "not configured" in result.detail
        finally:
            stack.close()
    finally:
        backend.close()
