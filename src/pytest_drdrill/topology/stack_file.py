"""The stack file: what a running stack is, which proxies are its paths, what it allows.

Read and checked before anything touches the stack, so a mistake in the file is reported
with the key to fix rather than as a failed drill. ``fixtures/stack-compose.yaml``
describes the stack of ``docker-compose.yml``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pytest_drdrill.errors import FaultError, TopologyError
from pytest_drdrill.proxy.client import split_address
from pytest_drdrill.topology._protocol import BACKUP_REGION

if TYPE_CHECKING:
    from collections.abc import Mapping

#: What a stack file may allow: fault-proxy operations and node operations.
OPERATIONS = {
    "cut": "disable a proxied path (link cuts, partitions, region outages)",
    "latency": "latency toxic",
    "bandwidth": "bandwidth toxic",
    "timeout": "timeout toxic (blackholes, one-way partitions)",
    "reset_peer": "reset_peer toxic",
    "slow_close": "slow_close toxic",
    "limit_data": "limit_data toxic",
    "slicer": "slicer toxic",
    "crash": "docker kill of the node's container",
    "freeze": "docker pause of the node's container",
    "stop": "docker stop of the node's container",
}
SERVICES = ("postgres", "redis", "s3")
_TOP_KEYS = {
    "name", "proxy", "bucket", "nodes", "paths", "sync_standbys", "allowed_faults", "patroni",
}  # fmt: skip
_PATRONI_KEYS = {"rest", "haproxy", "dcs", "dcs_paths"}
_NODE_KEYS = {"service", "region", "address", "upstream", "container"}
_PATH_KEYS = {"endpoints", "client_paths", "replication"}


class StackFileError(TopologyError, ValueError):
    """The stack file is missing, malformed, or names something that does not exist.

    .. versionadded:: 0.4
    """


@dataclasses.dataclass(frozen=True)
class StackNodeSpec:
    """One node of the stack file.

    :param name: e.g. ``pg-primary``.
    :param service: ``postgres``, ``redis`` or ``s3``.
    :param region: ``primary`` or ``dr``; an ``s3`` node may be ``backup``, the store
        that receives backup copies (the requirements' backup site).
    :param address: ``host:port`` where pytest reaches the node directly.
    :param upstream: ``host:port`` where the fault proxy reaches it.
    :param container: its Docker container, for node faults; ``None`` when it has none.
    """

    name: str
    service: str
    region: str
    address: str
    upstream: str
    container: str | None = None


@dataclasses.dataclass(frozen=True)
class PatroniSpec:
    """The team's Patroni cluster, as the stack file's ``patroni:`` section names it.

    :param rest: each PostgreSQL node's Patroni REST base URL, by node name.
    :param haproxy: ``host:port`` of HAProxy, where the PostgreSQL endpoint leads; ``None``
        when the endpoint leads to a node's path.
    :param dcs: the DCS members (etcd, Consul) by name, with their region.
    :param dcs_paths: per PostgreSQL node, the proxy carrying its traffic to each DCS member.

    .. versionadded:: 0.7
    """

    rest: dict[str, str]
    haproxy: str | None
    dcs: dict[str, str]
    dcs_paths: dict[str, dict[str, str]]


@dataclasses.dataclass(frozen=True)
class StackSpec:
    """A validated stack file.

    .. versionadded:: 0.4
    """

    source: Path
    name: str
    proxy_api: str
    proxy_host: str
    bucket: str
    nodes: dict[str, StackNodeSpec]
    endpoints: dict[str, str]
    client_paths: dict[str, str]
    replication: dict[str, str]
    sync_standbys: tuple[str, ...]
    allowed: frozenset[str]
    patroni: PatroniSpec | None = None

    @classmethod
    def load(cls, path: Path) -> StackSpec:
        """Read and check a stack file.

        :raises StackFileError: naming the file, the key and the fix.
        """
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise StackFileError(
                f"stack file {path} cannot be read ({exc.strerror}); point --drill-stack / "
                f"ini drill_stack at the stack's description (fixtures/stack-compose.yaml "
                f"describes docker-compose.yml's)"
            ) from None
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise StackFileError(f"stack file {path} is not valid YAML: {exc}") from None
        return cls._check(path, data)

    @classmethod
    def _check(cls, path: Path, data: object) -> StackSpec:
        def fail(key: str, problem: str) -> StackFileError:
            return StackFileError(f"stack file {path}, key {key}: {problem}")

        top = _mapping(data, "(top level)", fail)
        _known(top, _TOP_KEYS, "(top level)", fail)
        proxy = _mapping(top.get("proxy"), "proxy", fail)
        _known(proxy, {"api", "host"}, "proxy", fail)
        if not isinstance(proxy.get("api"), str):
            raise fail("proxy.api", "give the fault proxy's API URL, e.g. http://127.0.0.1:8474")
        nodes: dict[str, StackNodeSpec] = {}
        for name, raw in _mapping(top.get("nodes"), "nodes", fail).items():
            where = f"nodes.{name}"
            node = _mapping(raw, where, fail)
            _known(node, _NODE_KEYS, where, fail)
            if node.get("service") not in SERVICES:
                raise fail(f"{where}.service", f"give one of {', '.join(SERVICES)}")
            regions = ("primary", "dr", BACKUP_REGION) if node.get("service") == "s3" else ()
            if node.get("region") not in ("primary", "dr", *regions):
                raise fail(
                    f"{where}.region",
                    "give primary, dr or backup (the backup region's object store)"
                    if regions
                    else "give primary or dr (only an s3 node may be in region backup)",
                )
            for key in ("address", "upstream"):
                try:
                    split_address(str(node.get(key)))
                except ValueError:
                    raise fail(f"{where}.{key}", "give host:port") from None
            nodes[str(name)] = StackNodeSpec(
                str(name), node["service"], node["region"], str(node["address"]),
                str(node["upstream"]), node.get("container"),
            )  # fmt: skip
        paths = _mapping(top.get("paths"), "paths", fail)
        _known(paths, _PATH_KEYS, "paths", fail)
        groups: dict[str, dict[str, str]] = {}
        for group in sorted(_PATH_KEYS):
            named = _mapping(paths.get(group), f"paths.{group}", fail)
            known = set(SERVICES) if group == "endpoints" else set(nodes)
            for key in named:
                if key not in known:
                    raise fail(
                        f"paths.{group}.{key}",
                        f"not a {'service' if group == 'endpoints' else 'node'} of this file; "
                        f"known: {', '.join(sorted(known))}",
                    )
            groups[group] = {str(k): str(v) for k, v in named.items()}
        # Clients never reach the backup region's store; a path to it is for faults only.
        served = {name for name, node in nodes.items() if node.region != BACKUP_REGION}
        missing = sorted(served - set(groups["client_paths"]))
        if missing:
            raise fail("paths.client_paths", f"no client path for {', '.join(missing)}")
        sync = top.get("sync_standbys") or []
        if not isinstance(sync, list) or not all(isinstance(n, str) and n in nodes for n in sync):
            raise fail("sync_standbys", f"give a list of node names of this file (got {sync!r})")
        for key in ("name", "bucket"):
            if key in top and not isinstance(top[key], str):
                raise fail(key, f"give a string (got {top[key]!r})")
        if "host" in proxy and not isinstance(proxy["host"], str):
            raise fail(
                "proxy.host", f"give the host pytest reaches the proxy on (got {proxy['host']!r})"
            )
        allowed = top.get("allowed_faults") or []
        if not isinstance(allowed, list) or not all(
            isinstance(a, str) and a in OPERATIONS for a in allowed
        ):
            raise fail(
                "allowed_faults",
                f"give a list of: {', '.join(OPERATIONS)} (got {allowed!r})",
            )
        return cls(
            source=path,
            name=str(top.get("name") or path.stem),
            proxy_api=proxy["api"],
            proxy_host=str(proxy.get("host") or "127.0.0.1"),
            bucket=str(top.get("bucket") or "drdrill-objects"),
            nodes=nodes,
            endpoints=groups["endpoints"],
            client_paths=groups["client_paths"],
            replication=groups["replication"],
            sync_standbys=tuple(sync),
            allowed=frozenset(allowed),
            patroni=None if top.get("patroni") is None else _patroni(top["patroni"], nodes, fail),
        )

    def require(self, operation: str, what: str) -> None:
        """Refuse ``operation`` unless the file allows it.

        :raises FaultError: naming the file, the operation and the key to add.
        """
        if operation not in self.allowed:
            raise FaultError(
                f"{what} needs '{operation}' ({OPERATIONS.get(operation, operation)}), which "
                f"stack file {self.source} does not allow; add {operation} to its "
                f"allowed_faults if the stack's owners agree"
            )


def _patroni(raw: object, nodes: Mapping[str, StackNodeSpec], fail: Any) -> PatroniSpec:
    """Check the ``patroni:`` section against the file's nodes."""
    section = _mapping(raw, "patroni", fail)
    _known(section, _PATRONI_KEYS, "patroni", fail)
    postgres = {name for name, node in nodes.items() if node.service == "postgres"}
    rest = {str(k): str(v) for k, v in _mapping(section.get("rest"), "patroni.rest", fail).items()}
    for name, url in rest.items():
        if name not in postgres:
            raise fail(
                f"patroni.rest.{name}",
                f"not a postgres node of this file; postgres nodes: {', '.join(sorted(postgres))}",
            )
        if not url.startswith(("http://", "https://")):
            raise fail(f"patroni.rest.{name}", f"give the REST API's URL, e.g. http://{url}")
    missing = sorted(postgres - set(rest))
    if missing:
        raise fail("patroni.rest", f"no REST URL for {', '.join(missing)}: every member needs one")
    haproxy = section.get("haproxy")
    if haproxy is not None:
        try:
            split_address(str(haproxy))
        except ValueError:
            raise fail("patroni.haproxy", "give host:port where HAProxy listens") from None
    dcs: dict[str, str] = {}
    for name, member in _mapping(section.get("dcs") or {}, "patroni.dcs", fail).items():
        entry = _mapping(member, f"patroni.dcs.{name}", fail)
        _known(entry, {"region"}, f"patroni.dcs.{name}", fail)
        if entry.get("region") not in ("primary", "dr"):
            raise fail(f"patroni.dcs.{name}.region", "give primary or dr")
        if name in nodes:
            raise fail(f"patroni.dcs.{name}", "a DCS member may not share a node's name")
        dcs[str(name)] = str(entry["region"])
    paths: dict[str, dict[str, str]] = {}
    raw_paths = _mapping(section.get("dcs_paths") or {}, "patroni.dcs_paths", fail)
    for member, named in raw_paths.items():
        if member not in rest:
            raise fail(f"patroni.dcs_paths.{member}", "not a Patroni member named in patroni.rest")
        per = _mapping(named, f"patroni.dcs_paths.{member}", fail)
        for target in per:
            if target not in dcs:
                raise fail(
                    f"patroni.dcs_paths.{member}.{target}",
                    f"not a DCS member of patroni.dcs ({', '.join(sorted(dcs)) or 'none named'})",
                )
        paths[str(member)] = {str(k): str(v) for k, v in per.items()}
    return PatroniSpec(rest, None if haproxy is None else str(haproxy), dcs, paths)


def _mapping(value: object, key: str, fail: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(key, f"expected a mapping, got {type(value).__name__}")
    return value


def _known(value: Mapping[str, object], known: set[str], key: str, fail: Any) -> None:
    unknown = sorted(set(value) - known)
    if unknown:
        raise fail(key, f"unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
