"""The fault model: which faults a schedule may inject at a given moment, and why not.

Schedules stay within what the topology is built to survive; a step outside it is logged
as skipped, with the rule that forbade it:

- **a healthy standby remains**: a fault may hit a node only while at least one *other*
  server is a healthy standby (running, answering as a standby, no active fault of the
  schedule). The reference failover fences before it selects, so a failover with no
  standby left would kill the last server;
- **the synchronous standby of a live primary is never crashed**: with a single
  synchronous candidate every commit waits for it, and the reference monitor's health
  checks only read, so it never fails over. This is a gap the schedule drill found in
  the reference recovery, left out of the model until the monitor checks writes;
- faults hit running servers only: a crashed server stays down, as after a real power
  loss, and recovery must go on without it.

Everything is decided from the servers' latest answers to the watcher and from the
schedule's own record of active faults, never from what recovery code claims.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill.schedules.invariants import sync_requirement

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from pytest_drdrill.measure.split_brain import Answer


def refusal(
    node: str,
    kind: str,
    *,
    running: Mapping[str, bool],
    latest: Mapping[str, Answer],
    impaired: Collection[str],
) -> str | None:
    """Why the fault model forbids a ``kind`` fault on ``node`` now; ``None`` when it allows it.

    :param node: the server the fault would hit.
    :param kind: ``crash``, ``freeze``, ``partition`` or ``latency``.
    :param running: whether each server's processes exist.
    :param latest: each server's latest answer to the watcher.
    :param impaired: servers with an active fault of the schedule.

    .. versionadded:: 0.4
    """
    if not running.get(node, False):
        return f"{node} is not running"
    if kind == "crash":
        for other, answer in latest.items():
            if other == node or not answer.writable:
                continue
            number, names = sync_requirement(answer.sync_names)
            left = [n for n in names if n != node and running.get(n, False) and n not in impaired]
            if node in names and len(left) < number:
                return (
                    f"{node} is one of {other}'s synchronous standbys and fewer than {number} "
                    "would be left: crashing it for good would stop every commit, which the "
                    "reference monitor never detects"
                )
    healthy = [
        name
        for name, answer in latest.items()
        if name != node
        and answer.in_recovery is True
        and name not in impaired
        and running.get(name, False)
    ]
    if not healthy:
        return f"no healthy standby would be left besides {node}"
    return None
