"""Following the Redis failovers Sentinel decides.

A drill that tests Sentinel lets Sentinel detect the failure, elect, promote and reconfigure
on its own; the drill only follows the result, repointing the client endpoint (a fault-proxy
entry) when Sentinel announces a new master. The Sentinel server process itself is
:class:`~pytest_drdrill.topology.sentinel.LocalSentinel`.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import redis

from pytest_drdrill import timing
from pytest_drdrill.topology.sentinel import LocalSentinel

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["SentinelFollower"]

logger = logging.getLogger(__name__)


class SentinelFollower:
    """Calls ``on_switch(old, new)`` once each time Sentinel moves the master elsewhere.

    A background thread subscribes to Sentinel's ``+switch-master`` channel and, as a
    fallback for a missed message (the subscription is lost whenever its connection is),
    polls ``SENTINEL GET-MASTER-ADDR-BY-NAME``. Both feed one comparison with the last
    known address, so each switch is reported once, by whichever sees it first. Given a
    group, it asks the next Sentinel whenever the one it asks cannot be reached, as a
    Sentinel-aware client library does: a drill that kills or freezes Sentinels must
    not blind the follower while one of them still answers.

    :param sentinel: the Sentinel to follow, or the Sentinels of a group.
    :param master_name: the master's name in Sentinel.
    :param on_switch: called in the follower's thread with the old and new ``host:port``.
    :param poll_interval: seconds between fallback polls.

    .. versionadded:: 0.2
    .. versionchanged:: 0.8 a group of Sentinels.
    """

    def __init__(
        self,
        sentinel: LocalSentinel | Sequence[LocalSentinel],
        master_name: str,
        on_switch: Callable[[str, str], None],
        *,
        poll_interval: float = 0.1,
    ) -> None:
        self.group = [sentinel] if isinstance(sentinel, LocalSentinel) else list(sentinel)
        if not self.group:
            raise ValueError("SentinelFollower needs at least one Sentinel")
        self.sentinel = self.group[0]
        self.master_name = master_name
        self.on_switch = on_switch
        self.poll_interval = poll_interval
        self.current: str | None = None
        self.switches: list[tuple[float, str, str]] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SentinelFollower:
        """Read the current master and start following.

        :raises TopologyError: when Sentinel does not know the master.
        :raises redis.RedisError: when Sentinel cannot be reached.
        """
        self.current = self._ask_any()
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"drdrill-follow-{self.master_name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, *, timeout: float = 5.0) -> None:
        """Stop following and wait for the thread to end; never raises."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("follower of %s did not stop in %ss", self.master_name, timeout)
            self._thread = None

    def _ask_any(self) -> str:
        """The master's address from the first Sentinel that answers."""
        error: Exception | None = None
        for sentinel in self.group:
            try:
                address = sentinel.master_address()
            except redis.RedisError as exc:
                error = exc
                continue
            self.sentinel = sentinel
            return address
        assert error is not None
        raise error

    def _observe(self, address: str | None) -> None:
        if address is None or address == self.current:
            return
        if any(address == old for _, old, _ in self.switches):
            # A Sentinel that was frozen or cut off still names the master it last knew
            # until its peers' newer epoch reaches it; a lost master is never re-elected
            # in a drill (it is crashed, and fenced once failed over).
            logger.debug("%s still names the old master %s", self.sentinel.name, address)
            return
        old, self.current = self.current or "", address
        self.switches.append((timing.monotonic(), old, address))
        try:
            self.on_switch(old, address)
        except Exception:  # the follower must keep following whatever the callback does
            logger.exception("on_switch(%s, %s) failed", old, address)

    def _poll(self, client: redis.Redis) -> str | None:
        reply = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)
        return f"{reply[0]}:{reply[1]}" if reply else None

    def _switch_message(self, message: dict[str, object] | None) -> str | None:
        if message is None or message.get("type") != "message":
            return None
        # "<master name> <old ip> <old port> <new ip> <new port>"
        parts = str(message.get("data")).split()
        if len(parts) != 5 or parts[0] != self.master_name:
            return None
        return f"{parts[3]}:{parts[4]}"

    def _run(self) -> None:
        while not self._stopping.is_set():
            client = self.sentinel.client(timeout=max(1.0, 2 * self.poll_interval))
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe("+switch-master")
                next_poll = timing.monotonic()
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=self.poll_interval)
                    self._observe(self._switch_message(message))
                    if timing.monotonic() >= next_poll:
                        self._observe(self._poll(client))
                        next_poll = timing.monotonic() + self.poll_interval
            except (redis.RedisError, OSError) as exc:
                logger.debug("following %s: %s; asking the next", self.sentinel.name, exc)
                following = self.group.index(self.sentinel)
                self.sentinel = self.group[(following + 1) % len(self.group)]
                self._stopping.wait(self.poll_interval)
            finally:
                pubsub.close()
                client.close()
