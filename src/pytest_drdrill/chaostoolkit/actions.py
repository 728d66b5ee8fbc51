"""Chaos Toolkit actions: pytest-drdrill's faults, healing and the wait for recovery.

Use them as python providers, e.g. in an experiment's method::

    {"type": "action", "name": "kill-the-primary",
     "provider": {"type": "python", "module": "pytest_drdrill.chaostoolkit.actions",
                  "func": "crash_primary", "arguments": {"service": "postgres"}}}

Each fault goes through the running drill's fault injector, so it is recorded with its
injection and healing times, the drill's RTO counts from it, and it is healed when the
drill ends even if no rollback does. The running drill is the ``drdrill`` fixture's when
pytest runs the experiment, the control's under ``chaos run``
(:mod:`pytest_drdrill.chaostoolkit.control`).

Node names are those of the two-region topology: ``pg-primary``, ``pg-sync``, ``pg-dr``,
``redis-primary``, ``redis-dr``, ``s3-primary``, ``s3-dr``; ``clients`` stands for the
clients in a partition.

.. versionadded:: 0.4
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_drdrill import timing
from pytest_drdrill.chaostoolkit._context import running_drill
from pytest_drdrill.errors import FaultError

if TYPE_CHECKING:
    from pytest_drdrill.drill import Drill
    from pytest_drdrill.topology._protocol import ServiceNode

__all__ = [
    "add_latency",
    "await_recovery",
    "crash_node",
    "crash_primary",
    "cut_replication",
    "freeze_node",
    "heal_all",
    "partition",
    "region_outage",
    "stop_node",
    "storage_loss",
    "throw_kill_switch",
]


def crash_node(node: str) -> dict[str, Any]:
    """Kill a node and all its processes at once, as a power loss would.

    Healing never restarts it: after failover the old primary stays fenced.

    :param node: the node's name, e.g. ``pg-primary``.
    :returns: the fault as recorded (kind, target, injection time).
    """
    drill = running_drill()
    return _injected(drill, drill.faults.crash(_node(drill, node)))


def crash_primary(service: str = "postgres") -> dict[str, Any]:
    """Kill whichever node serves ``service`` now (the one its endpoint points at).

    :param service: ``postgres``, ``redis`` or ``s3``.
    :returns: the fault as recorded (kind, target, injection time).
    """
    drill = running_drill()
    return _injected(drill, drill.faults.crash(_serving(drill, service)))


def freeze_node(node: str) -> dict[str, Any]:
    """Suspend a node (SIGSTOP): it keeps its connections and answers nothing.

    Healed with SIGCONT by :func:`heal_all` or when the drill ends.

    :param node: the node's name, e.g. ``pg-primary``.
    :returns: the fault as recorded (kind, target, injection time).
    """
    drill = running_drill()
    return _injected(drill, drill.faults.freeze(_node(drill, node)))


def stop_node(node: str) -> dict[str, Any]:
    """Shut a node down cleanly (fast shutdown), as maintenance gone wrong would.

    :param node: the node's name, e.g. ``pg-primary``.
    :returns: the fault as recorded (kind, target, injection time).
    """
    drill = running_drill()
    return _injected(drill, drill.faults.stop(_node(drill, node)))


def partition(a: list[str], b: list[str], direction: str = "both") -> dict[str, Any]:
    """Cut every path between two groups of nodes; service endpoints stay up.

    :param a: node names on one side, e.g. ``["clients"]``.
    :param b: node names on the other side, e.g. ``["pg-primary"]``.
    :param direction: ``both``, ``a->b`` (A's bytes never reach B) or ``b->a``.
    :returns: the fault as recorded (kind, target, injection time).
    """
    drill = running_drill()
    return _injected(drill, drill.faults.partition(a, b, direction=direction))


def add_latency(node: str, ms: float, jitter: float = 0) -> dict[str, Any]:
    """Add latency to the clients' path to a node (Toxiproxy latency toxic).

    :param node: the node whose client path slows down, e.g. ``pg-primary``.
    :param ms: milliseconds added to each response.
    :param jitter: ± milliseconds of random variation.
    :returns: the fault as recorded (kind, target, injection time).
    """
    drill = running_drill()
    paths = drill.topology.client_paths
    if node not in paths:
        raise FaultError(f"no client path to node {node!r}; nodes: {', '.join(sorted(paths))}")
    return _injected(drill, drill.faults.latency(paths[node], ms, jitter=jitter))


def cut_replication(replica: str) -> dict[str, Any]:
    """Cut a replica's replication path to its primary, so it falls behind.

    :param replica: a PostgreSQL standby (``pg-sync``, ``pg-dr``) or Redis replica
        (``redis-dr``).
    :returns: the fault as recorded (kind, target, injection time).
    """
    drill = running_drill()
    links = {**drill.topology.replication_links, **drill.topology.redis_links}
    if replica not in links:
        raise FaultError(
            f"no replication path of {replica!r}; replicas: {', '.join(sorted(links))}"
        )
    return _injected(drill, drill.faults.cut(links[replica]))


def region_outage(region: str = "primary") -> dict[str, Any]:
    """Lose a whole region: cut every path of it and crash all its servers, as one fault.

    :param region: ``primary`` or ``dr``.
    :returns: the fault as recorded (kind, target, injection time).
    """
    drill = running_drill()
    return _injected(drill, drill.faults.region_outage(region))


def storage_loss(region: str = "primary") -> dict[str, Any]:
    """Kill a region's object store; its data is gone.

    :param region: ``primary`` or ``dr``.
    :returns: the fault as recorded (kind, target, injection time).
    """
    drill = running_drill()
    return _injected(drill, drill.faults.storage_loss(region))


def heal_all() -> list[str]:
    """Heal every fault still active: thaw, reconnect, remove toxics (a rollback).

    Crashed nodes stay down: a fenced old primary must never come back as a second one.

    :returns: the healed faults, as ``kind of target``.
    """
    injector = running_drill().faults
    active = [f"{fault.kind} of {fault.target}" for fault in injector.active]
    injector.heal()
    return active


def throw_kill_switch(reason: str = "chaos toolkit rollback") -> list[str]:
    """The kill switch, as a rollback: every drill on this machine heals and stops.

    The same as ``python -m pytest_drdrill heal`` (:mod:`pytest_drdrill.kill_switch`);
    the drills it stops are recorded as aborted.

    :returns: what was done, a line each.
    """
    from pytest_drdrill.kill_switch import throw

    return throw(reason)


def await_recovery(timeout: float | None = None) -> dict[str, Any]:
    """Wait until every service's client sees it recovered after the last fault.

    This only waits: the drill's RTO is measured from the clients' history afterwards,
    whatever this returns.

    :param timeout: seconds after the fault; default the drill's observation time
        (``observe`` in the experiment's ``drdrill`` extension, else ``--drill-observe``).
    :returns: ``recovered`` (whether all clients saw it within the time) and
        ``waited_seconds``.
    """
    drill = running_drill()
    started = timing.monotonic()
    recovered = drill.await_recovery(timeout=timeout)
    return {"recovered": recovered, "waited_seconds": round(timing.monotonic() - started, 3)}


def _node(drill: Drill, name: str) -> ServiceNode:
    nodes = drill.topology.nodes()
    if name not in nodes:
        raise FaultError(f"no node named {name!r}; nodes: {', '.join(sorted(nodes))}")
    return nodes[name]


def _serving(drill: Drill, service: str) -> ServiceNode:
    from pytest_drdrill.topology._protocol import SERVICES

    if service not in SERVICES:
        raise FaultError(f"service={service!r}; services: {', '.join(SERVICES)}")
    return drill.topology.serving(service)


def _injected(drill: Drill, at: float) -> dict[str, Any]:
    fault = next(f for f in reversed(drill.record.faults) if f.injected_at == at)
    return {
        "fault": fault.kind,
        "target": fault.target,
        "injected_at": timing.anchor().isoformat(at),
    }
