"""Redis snapshots into the catalog, and their restore into a new server.

A snapshot is the server's own RDB file, written by ``BGSAVE``. The alternative, pulling
the RDB over the replication protocol as ``redis-cli --rdb`` does, works on remote
servers too, but it says only roughly when the copy was taken and needs the replication
handshake spoken by hand. ``BGSAVE`` forks while the command is being handled, so the
moments just before the command and just after its reply bracket the point the snapshot
holds, to the millisecond; that point is what the RPO freshness check measures. The
price is that the server must be local: the file is read from its ``dir``.

Before anything is stored the copy is checked with ``redis-check-rdb`` (the RDB's own
CRC64 and structure), and the number of keys it read is recorded in the manifest. A
restore starts a new ``redis-server`` on the decrypted file and compares the keys it
loaded with that number.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import redis

from pytest_drdrill import timing
from pytest_drdrill.backup.errors import NoSuchBackup
from pytest_drdrill.backup.manifest import Manifest, utc_now
from pytest_drdrill.errors import TopologyError
from pytest_drdrill.servers import processes
from pytest_drdrill.topology.redis import LocalRedisNode

if TYPE_CHECKING:
    from pytest_drdrill.backup.catalog import Catalog
    from pytest_drdrill.backup.keys import BackupKey, KeyRing
    from pytest_drdrill.topology.redis import RedisInstall

logger = logging.getLogger(__name__)

#: The snapshot's file name within its backup.
RDB_NAME = "dump.rdb"
#: The data category of Redis snapshots. fixtures/targets.yaml has no category of its own
#: for Redis: its service_map puts user_session_management on redis, and the
#: authentication_workflow that depends on it belongs to user_authentication, whose data
#: category is critical_user_data.
REDIS_CATEGORY = "critical_user_data"
_KEYS_READ = re.compile(r"\[info\] (\d+) keys read")
_EXPIRES = re.compile(r"\[info\] (\d+) expires")
_BUSY = "another child process is active"


def _bgsave(client: redis.Redis, timeout: float, what: str) -> tuple[str, str]:
    """Start a BGSAVE; return the UTC times just before the command and just after its reply."""
    deadline = timing.monotonic() + timeout
    while True:
        before = utc_now()
        try:
            client.bgsave()
        except redis.ResponseError as exc:
            # A replica's full sync forks the same kind of child; BGSAVE SCHEDULE would wait
            # for it but fork later, losing the bracket. Retry instead.
            busy = _BUSY in str(exc).lower() or "in progress" in str(exc).lower()
            if not busy or timing.monotonic() > deadline:
                raise TopologyError(f"BGSAVE on {what} was refused: {exc}") from exc
            timing.sleep(0.02)
            continue
        return before, utc_now()


def _wait_saved(client: redis.Redis, saves_before: int, timeout: float, what: str) -> None:
    deadline = timing.monotonic() + timeout
    info: dict[str, object] = {}
    while timing.monotonic() < deadline:
        info = client.info("persistence")
        if not info.get("rdb_bgsave_in_progress"):
            if info.get("rdb_last_bgsave_status") != "ok":
                raise TopologyError(
                    f"BGSAVE on {what} failed (rdb_last_bgsave_status "
                    f"{info.get('rdb_last_bgsave_status')}); the server's log says why, often "
                    f"an unwritable 'dir' or a full disk"
                )
            if int(str(info.get("rdb_saves", 0))) > saves_before:
                return
        timing.sleep(0.01)
    raise TopologyError(
        f"BGSAVE on {what} did not finish within {timeout:.0f}s "
        f"(rdb_bgsave_in_progress {info.get('rdb_bgsave_in_progress')})"
    )


def check_rdb(install: RedisInstall, path: Path) -> tuple[int, int]:
    """Check an RDB file with ``redis-check-rdb``; return its keys and keys with a TTL.

    :param install: the Redis binaries (``redis-check-rdb`` is a mode of ``redis-server``).
    :param path: the file.
    :raises TopologyError: when the file is damaged, with the checker's output.

    .. versionadded:: 0.3
    """
    # redis-server picks its check-rdb mode from argv[0], so this needs no second binary.
    done = subprocess.run(
        ["redis-check-rdb", str(path)],
        executable=str(install.server),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    keys, expires = _KEYS_READ.search(done.stdout), _EXPIRES.search(done.stdout)
    if done.returncode != 0 or keys is None:
        raise TopologyError(
            f"redis-check-rdb refused {path} (exit {done.returncode}):\n"
            f"{(done.stdout + done.stderr).strip()[-1500:]}"
        )
    return int(keys.group(1)), int(expires.group(1)) if expires else 0


def take_redis_snapshot(
    node: LocalRedisNode,
    catalog: Catalog,
    key: BackupKey,
    workdir: Path,
    *,
    data_category: str = REDIS_CATEGORY,
    timeout: float = 60.0,
) -> Manifest:
    """Snapshot a running Redis server with ``BGSAVE`` and store the RDB, encrypted.

    The node's disk is left as it was found: when it held no RDB file before, the one
    ``BGSAVE`` wrote is removed, so a crashed node still restarts empty (the topology's
    "lost disk" semantics). The plaintext copy in ``workdir`` is removed once stored.

    :param node: a local server (its RDB file is read from its ``dir``).
    :param catalog: where the snapshot goes.
    :param key: the key to encrypt with.
    :param workdir: scratch space for the copy of the RDB file.
    :param data_category: the targets file's data category the snapshot protects.
    :param timeout: seconds the save may take.
    :returns: the stored manifest, kind ``redis-snapshot``: ``time_start``/``time_end``
        bracket the fork, ``extra`` records ``keys``, ``expires`` and ``redis_version``.
    :raises TopologyError: when the save fails or the RDB does not check out.

    .. versionadded:: 0.3
    """
    what = f"{node.name} ({node.url()})"
    with node.client(timeout=10.0) as client:
        config = client.config_get("dir")
        config.update(client.config_get("dbfilename"))
        rdb = Path(config["dir"]) / config["dbfilename"]
        existed = rdb.exists()
        saves_before = int(client.info("persistence").get("rdb_saves", 0))
        try:
            time_start, time_end = _bgsave(client, timeout, what)
            _wait_saved(client, saves_before, timeout, what)
        except TopologyError as exc:
            exc.add_note(f"last lines of {node.log}:\n{processes.tail(node.log)}")
            raise
        version = str(client.info("server").get("redis_version", "unknown"))
    workdir.mkdir(parents=True, exist_ok=True)
    copy = workdir / RDB_NAME
    try:
        shutil.copyfile(rdb, copy)
        if not existed:
            rdb.unlink(missing_ok=True)
        keys, expires = check_rdb(node.install, copy)
        manifest = Manifest.new(
            "redis-snapshot",
            f"{node.name} ({node.region})",
            time_start=time_start,
            time_end=time_end,
            data_category=data_category,
            extra={"keys": keys, "expires": expires, "redis_version": version},
        )
        stored = catalog.put_backup(manifest, {RDB_NAME: copy}, key)
    finally:
        # Session data in plaintext must not outlive its upload.
        copy.unlink(missing_ok=True)
    logger.info("redis snapshot %s of %s: %d keys", stored.backup_id, node.name, keys)
    return stored


def restore_redis_snapshot(
    catalog: Catalog,
    keys: KeyRing | BackupKey,
    backup_id: str,
    *,
    install: RedisInstall,
    workdir: Path,
    name: str,
    region: str = "dr",
    timeout: float = 60.0,
) -> LocalRedisNode:
    """Restore a Redis snapshot into a new ``redis-server`` and return it running.

    The RDB is decrypted and checked completely before the server starts (see
    :meth:`Catalog.restore_file`); the server then loads it, and the keys it loaded are
    compared with the count the snapshot's manifest records.

    :param catalog: where the snapshot is.
    :param keys: the key ring.
    :param backup_id: a ``redis-snapshot`` backup.
    :param install: the Redis binaries.
    :param workdir: the new server's directory (created; its RDB and log go there).
    :param name: the new node's name.
    :param region: the region the node counts as.
    :param timeout: seconds the server may take to start and load.
    :returns: the running node; the caller stops it (``cleanup()``).
    :raises NoSuchBackup: when ``backup_id`` is not a Redis snapshot in ``catalog``.
    :raises BackupError: when the stored snapshot does not verify; no server was started.
    :raises TopologyError: when the server does not start or loads another number of keys.

    .. versionadded:: 0.3
    """
    manifest = catalog.manifest(backup_id, keys)
    if manifest.kind != "redis-snapshot":
        snapshots = [m.backup_id for m in catalog.list_backups("redis-snapshot")]
        raise NoSuchBackup(
            f"Redis snapshot {backup_id} (it is {manifest.kind})", catalog.location, snapshots
        )
    workdir.mkdir(parents=True, exist_ok=True)
    catalog.restore_file(backup_id, RDB_NAME, workdir / f"{name}.rdb", keys)
    node = LocalRedisNode(name, region, workdir, install, log=workdir / f"{name}.log")
    try:
        node.start(timeout=timeout)
        _check_loaded(node, manifest, timeout)
    except BaseException:
        node.cleanup()
        raise
    return node


def _check_loaded(node: LocalRedisNode, manifest: Manifest, timeout: float) -> None:
    deadline = timing.monotonic() + timeout
    with node.client(timeout=5.0) as client:
        # INFO answers while the RDB is still loading; other commands do not.
        while (info := client.info("persistence")).get("loading"):
            if timing.monotonic() > deadline:
                raise TopologyError(f"{node.name} was still loading its RDB after {timeout:.0f}s")
            timing.sleep(0.01)
    loaded = int(info.get("rdb_last_load_keys_loaded", -1))
    expired = int(info.get("rdb_last_load_keys_expired", 0))
    expected = manifest.extra.get("keys")
    if expected is not None and loaded + expired != expected:
        exc = TopologyError(
            f"{node.name} loaded {loaded} keys (and dropped {expired} expired ones) from "
            f"snapshot {manifest.backup_id}, which holds {expected}"
        )
        exc.add_note(f"last lines of {node.log}:\n{processes.tail(node.log)}")
        raise exc
