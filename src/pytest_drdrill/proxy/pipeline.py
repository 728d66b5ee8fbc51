"""The chain of toxics on one direction of one connection, and the timer that drives it.

On every connection, each direction that has toxics gets a :class:`Pipeline` between the
socket it reads and the socket it writes: items read are pushed through its stages (see
:mod:`pytest_drdrill.proxy.stages`), and a single loop timer moves them along when they
are due, so a chain costs no task or thread per connection. A direction without toxics
has no pipeline at all and stays on the forwarder's fast path. As in Toxiproxy, toxics
are appended to the end of the chain. The pipeline also pauses the reading side while it
holds too many bytes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable

from pytest_drdrill.proxy.stages import STAGES, Stage
from pytest_drdrill.proxy.toxics import CLOSE, RESET, Item, Toxic

__all__ = ["Pipeline"]


class Pipeline:
    """The toxics of one direction of one connection, between a reading and a writing socket.

    :param deliver: writes an item that left the last stage; called only while ``ready``
        says the writing side exists.
    :param ready: whether the writing side exists yet (an upstream may still be connecting).
    :param throttle: called when :attr:`full` changes: reading should pause while the
        pipeline holds too much, and resume once it has drained enough.
    """

    #: Bytes held before the reading side is paused, and the level at which it resumes.
    HIGH_WATER = 1 << 20
    LOW_WATER = 1 << 18

    def __init__(
        self,
        deliver: Callable[[Item], None],
        ready: Callable[[], bool],
        throttle: Callable[[], None],
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.stages: list[Stage] = []
        self.waiting: deque[Item] = deque()  # left the last stage; the writer is not there yet
        self.buffered = 0
        self.finished = False
        self._deliver = deliver
        self._ready = ready
        self._throttle = throttle
        self.full = False
        self._timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        names = ", ".join(stage.name for stage in self.stages)
        return f"<Pipeline [{names}] {self.buffered} B>"

    @property
    def idle(self) -> bool:
        """Whether it has no toxics and holds nothing, so the fast path can take over.

        A finished pipeline is never idle: it stays in place to swallow what the reading
        side still sends after the connection was ended.
        """
        return not self.finished and not self.stages and not self.waiting and not self.buffered

    def add(self, toxic: Toxic) -> None:
        """Append a toxic to the end of the chain, as Toxiproxy does."""
        self.stages.append(STAGES[toxic.type](toxic, self, self.loop.time()))
        self.pump()

    def update(self, toxic: Toxic) -> None:
        """Give a toxic of the chain new settings."""
        index = self._index(toxic.name)
        if index is not None:
            now = self.loop.time()
            self._forward(index + 1, self.stages[index].update(toxic, now), now)
            self.pump()

    def remove(self, name: str) -> None:
        """Take a toxic out of the chain, passing on at once what it held."""
        index = self._index(name)
        if index is not None:
            stage = self.stages.pop(index)
            self._forward(index, stage.removed(), self.loop.time())
            self.pump()

    def feed(self, kind: int, data: bytes = b"") -> None:
        """Take the next chunk (or marker) read from the reading side."""
        if self.finished:
            return
        now = self.loop.time()
        self.buffered += len(data)
        self._forward(0, [Item(kind, data, now)], now)
        self.pump(now)

    def dropped(self, size: int) -> None:
        """Account for bytes a stage threw away."""
        self.buffered -= size

    def discard(self) -> None:
        """Drop everything: the connection is gone."""
        self.finished = True
        self.stages.clear()
        self.waiting.clear()
        self.buffered = 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def pump(self, now: float | None = None) -> None:
        """Move every item that is due along the chain, then set the timer for the next one."""
        if now is None:
            now = self.loop.time()
        for index, stage in enumerate(self.stages):
            ready = stage.pull(now)
            if ready:
                self._forward(index + 1, ready, now)
        self.flush()
        due = min(
            (when for when in (stage.next_due() for stage in self.stages) if when is not None),
            default=None,
        )
        timer = self._timer
        if timer is not None and (due is None or timer.when() != due):
            timer.cancel()
            timer = self._timer = None
        if timer is None and due is not None and not self.finished:
            self._timer = self.loop.call_at(due, self._tick, due)
        self._check_pressure()

    def _tick(self, due: float) -> None:
        self._timer = None
        # The loop may run a timer a clock tick early; it is due all the same.
        self.pump(max(self.loop.time(), due))

    def flush(self) -> None:
        """Write what left the chain while the writing side did not exist yet."""
        while self.waiting and not self.finished and self._ready():
            self._write(self.waiting.popleft())
        self._check_pressure()

    def _index(self, name: str) -> int | None:
        return next((i for i, stage in enumerate(self.stages) if stage.name == name), None)

    def _forward(self, index: int, items: Iterable[Item], now: float) -> None:
        if index < len(self.stages):
            stage = self.stages[index]
            for item in items:
                stage.push(item, now)
        else:
            self.waiting.extend(items)

    def _write(self, item: Item) -> None:
        self.buffered -= len(item.data)
        if item.kind in (CLOSE, RESET):
            # Nothing may follow the end of the connection.
            self.discard()
        self._deliver(item)

    def _check_pressure(self) -> None:
        if not self.full and self.buffered >= self.HIGH_WATER:
            self.full = True
            self._throttle()
        elif self.full and (self.buffered <= self.LOW_WATER or self.finished):
            self.full = False
            self._throttle()
