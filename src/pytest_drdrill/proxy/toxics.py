"""Toxics: what the fault proxy does to the bytes of one direction of a connection.

A :class:`Toxic` is the definition the API stores on a proxy. On every connection, each
direction that has toxics gets a :class:`Pipeline`: a chain of stages, one per toxic, that
holds, delays, slices, truncates or drops the chunks read from one socket before they are
written to the other. Stages keep ``(due time, item)`` queues and the pipeline moves items
along from a single loop timer, so a chain costs no task or thread per connection. A
direction without toxics has no pipeline at all and stays on the forwarder's fast path.

Behaviour follows Toxiproxy 2.x (its ``toxics/*.go``): toxics are appended to the end of
the chain, toxicity is decided per connection when the toxic meets it, removing a toxic
passes on what it held, and removing a ``timeout`` toxic closes the connections it stalled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import Literal

__all__ = [
    "STREAMS",
    "TOXIC_ATTRIBUTES",
    "Item",
    "Pipeline",
    "Stream",
    "Toxic",
]

Stream = Literal["upstream", "downstream"]

#: Toxiproxy's stream names: ``upstream`` is client to server, ``downstream`` server to client.
STREAMS: tuple[Stream, ...] = ("upstream", "downstream")

#: Every toxic type with its attributes and their units, in Toxiproxy's order.
TOXIC_ATTRIBUTES: dict[str, dict[str, str]] = {
    "latency": {"latency": "ms", "jitter": "ms"},
    "bandwidth": {"rate": "KB/s"},
    "slow_close": {"delay": "ms"},
    "timeout": {"timeout": "ms"},
    "reset_peer": {"timeout": "ms"},
    "slicer": {"average_size": "bytes", "size_variation": "bytes", "delay": "µs"},
    "limit_data": {"bytes": "bytes"},
}

# Item kinds. EOF is a half-close; CLOSE closes the connection once what went before is
# written; RESET aborts both sockets with a TCP RST.
DATA, EOF, CLOSE, RESET = range(4)

_RANDOM = random.Random()


@dataclasses.dataclass
class Toxic:
    """A toxic as the API stores it on a proxy.

    :param name: unique among the proxy's toxics.
    :param type: a key of :data:`TOXIC_ATTRIBUTES`.
    :param stream: the direction it acts on.
    :param toxicity: the probability, from 0 to 1, that it applies to a given connection.
    :param attributes: every attribute of its type, as whole numbers.
    """

    name: str
    type: str
    stream: Stream
    toxicity: float
    attributes: dict[str, int]

    def to_json(self) -> dict[str, object]:
        """Return the toxic in Toxiproxy's JSON shape."""
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }


class Item:
    """A chunk of bytes, or a marker, on its way through a pipeline.

    :param kind: ``DATA``, ``EOF``, ``CLOSE`` or ``RESET``.
    :param data: the bytes of a ``DATA`` item.
    :param ts: when it was read, advanced by each latency it went through (as Toxiproxy
        does, so that two latency toxics add up).
    """

    __slots__ = ("data", "kind", "ts")

    def __init__(self, kind: int, data: bytes, ts: float) -> None:
        self.kind = kind
        self.data = data
        self.ts = ts


class _Stage:
    """One toxic on one direction of one connection."""

    def __init__(self, toxic: Toxic, pipeline: Pipeline, now: float) -> None:
        self.toxic = toxic
        self.pipeline = pipeline
        self.held: deque[tuple[float, Item]] = deque()
        self.last_due = now
        self.active = _RANDOM.random() < toxic.toxicity
        self.configure(now)

    @property
    def name(self) -> str:
        return self.toxic.name

    def configure(self, now: float) -> None:
        """Read the toxic's attributes; called on creation and after every update."""

    def push(self, item: Item, now: float) -> None:
        """Accept the next item of the stream."""
        if self.active:
            self.schedule(item, now)
        else:
            self.release(item, now)

    def schedule(self, item: Item, now: float) -> None:
        self.release(item, now)

    def release(self, item: Item, due: float) -> None:
        # Items leave a stage in the order they came in, whatever their own delay.
        self.last_due = max(self.last_due, due)
        self.held.append((self.last_due, item))

    def pull(self, now: float) -> list[Item]:
        """Return the items due by ``now``, in order."""
        ready = []
        held = self.held
        while held and held[0][0] <= now:
            ready.append(held.popleft()[1])
        return ready

    def next_due(self) -> float | None:
        return self.held[0][0] if self.held else None

    def drain(self) -> list[Item]:
        """Give up every held item at once (the toxic is being removed or changed)."""
        items = [item for _, item in self.held]
        self.held.clear()
        return items

    def removed(self) -> list[Item]:
        """Return what to pass on when the toxic is removed: by default, what it held."""
        return self.drain()

    def update(self, toxic: Toxic, now: float) -> list[Item]:
        """Apply new settings; returns the held items, passed on without further delay.

        Toxiproxy interrupts the toxic and runs it again, which rolls its toxicity again.
        """
        items = self.drain()
        self.toxic = toxic
        self.last_due = now
        self.active = _RANDOM.random() < toxic.toxicity
        self.configure(now)
        return items


class _Latency(_Stage):
    def configure(self, now: float) -> None:
        self.latency = self.toxic.attributes["latency"] / 1000
        self.jitter = self.toxic.attributes["jitter"] / 1000

    def schedule(self, item: Item, now: float) -> None:
        if item.kind != DATA:
            self.release(item, now)
            return
        delay = self.latency
        if self.jitter > 0:
            delay += _RANDOM.uniform(-self.jitter, self.jitter)
        due = max(item.ts + delay, now)
        self.release(item, due)
        item.ts = self.last_due


class _Bandwidth(_Stage):
    # Toxiproxy sends a slow stream in pieces of 100 ms worth, so bytes trickle evenly.
    _SLICE = 0.1

    def configure(self, now: float) -> None:
        self.rate = self.toxic.attributes["rate"] * 1000  # bytes per second

    def schedule(self, item: Item, now: float) -> None:
        if item.kind != DATA or self.rate <= 0:
            self.release(item, now)
            return
        data = item.data
        step = max(1, int(self.rate * self._SLICE))
        start = max(self.last_due, now)
        for offset in range(0, len(data), step):
            piece = data[offset : offset + step]
            start += len(piece) / self.rate
            self.release(Item(DATA, piece, item.ts), start)


class _Slicer(_Stage):
    def configure(self, now: float) -> None:
        self.average = self.toxic.attributes["average_size"]
        self.variation = self.toxic.attributes["size_variation"]
        self.delay = self.toxic.attributes["delay"] / 1_000_000

    def _cuts(self, size: int) -> list[int]:
        # Halve around the middle, moved by up to the variation, until each piece is within
        # the variation of the average size (Toxiproxy's recursive split, done with a stack).
        # The API guarantees 0 <= variation < average, so every split leaves two non-empty
        # halves.
        cuts = []
        stack = [(0, size)]
        while stack:
            start, end = stack.pop()
            if end - start - self.average <= self.variation:
                cuts.append(end)
                continue
            shift = _RANDOM.randrange(-self.variation, self.variation) if self.variation else 0
            middle = start + (end - start) // 2 + shift
            stack.append((middle, end))
            stack.append((start, middle))
        return cuts

    def schedule(self, item: Item, now: float) -> None:
        if item.kind != DATA:
            self.release(item, now)
            return
        due = max(self.last_due, now)
        previous = 0
        for cut in self._cuts(len(item.data)):
            self.release(Item(DATA, item.data[previous:cut], item.ts), due)
            previous = cut
            due += self.delay


class _SlowClose(_Stage):
    def configure(self, now: float) -> None:
        self.delay = self.toxic.attributes["delay"] / 1000

    def schedule(self, item: Item, now: float) -> None:
        self.release(item, now if item.kind == DATA else max(self.last_due, now) + self.delay)


class _Ending(_Stage):
    """A stage that ends the connection with a marker at some point, then drops everything."""

    def __init__(self, toxic: Toxic, pipeline: Pipeline, now: float) -> None:
        self.ended = False
        self.deadline: float | None = None
        super().__init__(toxic, pipeline, now)

    def end(self, kind: int, now: float) -> None:
        self.ended = True
        self.deadline = None
        self.release(Item(kind, b"", now), now)

    def drop(self, item: Item) -> None:
        self.pipeline.dropped(len(item.data))

    def pull(self, now: float) -> list[Item]:
        if self.deadline is not None and self.deadline <= now:
            self.fire(now)
        return super().pull(now)

    def fire(self, now: float) -> None:
        self.end(CLOSE, now)

    def next_due(self) -> float | None:
        due = super().next_due()
        if self.deadline is None:
            return due
        return self.deadline if due is None else min(due, self.deadline)


class _Timeout(_Ending):
    def configure(self, now: float) -> None:
        self.timeout = self.toxic.attributes["timeout"] / 1000
        ticking = self.active and self.timeout > 0 and not self.ended
        self.deadline = now + self.timeout if ticking else None

    def schedule(self, item: Item, now: float) -> None:
        if self.ended:
            self.drop(item)
        elif item.kind == DATA:
            # Dropped, as in Toxiproxy, whose timer also starts again with every chunk.
            self.drop(item)
            if self.timeout > 0:
                self.deadline = now + self.timeout
        else:
            self.release(item, now)

    def removed(self) -> list[Item]:
        # Toxiproxy closes a connection whose data a timeout dropped once the toxic goes
        # (its TimeoutToxic.Cleanup): the stream has a hole, so it cannot carry on.
        items = self.drain()
        if self.active and not self.ended:
            items.append(Item(CLOSE, b"", self.last_due))
        return items


class _ResetPeer(_Ending):
    def __init__(self, toxic: Toxic, pipeline: Pipeline, now: float) -> None:
        self.triggered = False
        super().__init__(toxic, pipeline, now)

    def configure(self, now: float) -> None:
        # A reset already counting down keeps its deadline: Toxiproxy cannot interrupt it.
        self.timeout = self.toxic.attributes["timeout"] / 1000

    def schedule(self, item: Item, now: float) -> None:
        # As in Toxiproxy, the clock starts with the first chunk (or close) that arrives;
        # that chunk and everything after it are dropped.
        self.drop(item)
        if not self.triggered:
            self.triggered = True
            self.deadline = now + self.timeout

    def fire(self, now: float) -> None:
        self.end(RESET, now)


class _LimitData(_Ending):
    def __init__(self, toxic: Toxic, pipeline: Pipeline, now: float) -> None:
        # Bytes already sent survive updates, as Toxiproxy keeps this toxic's state.
        self.sent = 0
        super().__init__(toxic, pipeline, now)

    def configure(self, now: float) -> None:
        self.limit = self.toxic.attributes["bytes"]

    def schedule(self, item: Item, now: float) -> None:
        if self.ended:
            self.drop(item)
            return
        if item.kind != DATA:
            self.release(item, now)
            return
        room = max(0, self.limit - self.sent)
        if len(item.data) > room:
            self.pipeline.dropped(len(item.data) - room)
            item.data = item.data[:room]
        if item.data:
            self.sent += len(item.data)
            self.release(item, now)
        if self.sent >= self.limit:
            self.end(CLOSE, now)


_STAGES: dict[str, type[_Stage]] = {
    "latency": _Latency,
    "bandwidth": _Bandwidth,
    "slow_close": _SlowClose,
    "timeout": _Timeout,
    "reset_peer": _ResetPeer,
    "slicer": _Slicer,
    "limit_data": _LimitData,
}


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
        self.stages: list[_Stage] = []
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
        self.stages.append(_STAGES[toxic.type](toxic, self, self.loop.time()))
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
