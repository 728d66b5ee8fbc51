"""Patroni's REST API, asked member by member, and a thread that follows who leads.

Shared by the Patroni cluster the plugin builds and a team's own cluster named in a stack
file: the provider asks ``/config``, ``/cluster`` and ``/history`` the same way of both,
and ``topology.primary`` follows ``/cluster`` the same way on both.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pytest_drdrill.errors import TopologyError
from pytest_drdrill.topology.etcd import http_json

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pytest_drdrill.topology.links import Link

logger = logging.getLogger(__name__)

#: Seconds between two reads of ``/cluster`` by the leader follower.
FOLLOW_INTERVAL = 0.1


class PatroniRest:
    """The REST API of every member of one Patroni cluster.

    :param urls: each member's REST base URL (``http://127.0.0.1:8008``) by member name.

    .. versionadded:: 0.7
    """

    def __init__(self, urls: Mapping[str, str]) -> None:
        self.urls = {name: url.rstrip("/") for name, url in urls.items()}

    def get(self, path: str, *, timeout: float = 1.0, first: str | None = None) -> object:
        """``path`` from the first member that answers with JSON, ``first`` asked first.

        :raises TopologyError: when none answers, naming every URL asked.
        """
        order = sorted(self.urls, key=lambda name: name != first)
        for name in order:
            try:
                return http_json(f"{self.urls[name]}{path}", timeout=timeout)
            except (OSError, ValueError):
                continue
        raise TopologyError(
            f"no Patroni member answers {path} (asked {', '.join(self.urls.values())})"
        )

    def cluster(self, *, timeout: float = 1.0, first: str | None = None) -> dict[str, Any]:
        """``/cluster``: the members with role, state, timeline and lag."""
        reply = self.get("/cluster", timeout=timeout, first=first)
        if not isinstance(reply, dict) or "members" not in reply:
            raise TopologyError(f"Patroni's /cluster answered {reply!r}, not a member list")
        return reply

    def config(self, *, first: str | None = None) -> dict[str, Any]:
        """``/config``: the dynamic configuration the cluster holds in its DCS."""
        reply = self.get("/config", first=first)
        if not isinstance(reply, dict):
            raise TopologyError(f"Patroni's /config answered {reply!r}, not a mapping")
        return reply

    def history(self, *, first: str | None = None) -> list[list[Any]]:
        """``/history``: ``[timeline, lsn, reason, timestamp, new leader]`` per switch."""
        try:
            reply = self.get("/history", first=first)
        except TopologyError:
            return []
        return [list(row) for row in reply] if isinstance(reply, list) else []


def running_leader(state: Mapping[str, Any]) -> str | None:
    """The member ``/cluster`` reports as running leader, or ``None``."""
    for member in state.get("members", []):
        if member.get("role") == "leader" and member.get("state") == "running":
            return str(member["name"])
    return None


class LeaderFollower:
    """Reads ``/cluster`` ten times a second in a thread; :attr:`leader` is the last leader.

    Reading the leader never blocks a drill on a frozen member: the thread does the asking.

    :param rest: the cluster's REST API.
    :param leader: who leads before the first read.

    .. versionadded:: 0.7
    """

    def __init__(self, rest: PatroniRest, leader: str) -> None:
        self.rest = rest
        self.leader = leader
        self.state: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LeaderFollower:
        """Read once now, then keep reading in a daemon thread."""
        try:
            self._read()
        except TopologyError:
            logger.warning("no Patroni member answered /cluster at the start")
        self._thread = threading.Thread(
            target=self._run, name="drdrill-patroni-leader", daemon=True
        )
        self._thread.start()
        return self

    def _read(self) -> None:
        state = self.rest.cluster(timeout=0.5, first=self.leader)
        self.state = state
        self.leader = running_leader(state) or self.leader

    def _run(self) -> None:
        while not self._stop.wait(FOLLOW_INTERVAL):
            try:
                self._read()
            except TopologyError:
                continue
            except Exception:  # the follower must never die silently mid-drill
                logger.exception("reading Patroni's /cluster failed")

    def stop(self) -> None:
        """Stop following (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


@runtime_checkable
class RunsPatroni(Protocol):
    """A topology whose PostgreSQL is a Patroni cluster, built by the plugin or the team's.

    .. versionadded:: 0.7
    """

    patroni_rest: PatroniRest

    def cluster_state(self) -> dict[str, Any]:
        """``/cluster`` as last read by the leader follower."""
        ...

    def dcs_links(self, member: str) -> Sequence[Link]:
        """The proxied paths from ``member`` to the DCS members (empty when none are)."""
        ...
