"""How each toxic type acts on the items of one direction of one connection.

A :class:`Stage` is one toxic on one direction: it holds, delays, slices, truncates or
drops the items pushed into it and hands them on once due. Stages keep ``(due time,
item)`` queues and never run a timer of their own; :class:`~pytest_drdrill.proxy.pipeline.Pipeline`
pulls from them on its single loop timer. :data:`STAGES` maps each toxic type to its stage,
so a new toxic type is one class here and one entry there.

Behaviour follows Toxiproxy 2.x (its ``toxics/*.go``): toxicity is decided per connection
when the toxic meets it, removing a toxic passes on what it held, and removing a
``timeout`` toxic closes the connections it stalled.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Protocol

from pytest_drdrill.proxy.toxics import CLOSE, DATA, RESET, Item, Toxic

__all__ = ["STAGES", "DropCounter", "Stage"]

_RANDOM = random.Random()


class DropCounter(Protocol):
    """What a stage needs of the chain it is part of: a count of the bytes it threw away."""

    def dropped(self, size: int) -> None:
        """Account for ``size`` bytes a stage dropped instead of passing them on."""


class Stage:
    """One toxic on one direction of one connection."""

    def __init__(self, toxic: Toxic, pipeline: DropCounter, now: float) -> None:
        self.toxic = toxic
        self.pipeline = pipeline
        self.held: deque[tuple[float, Item]] = deque()
        self.last_due = now
        self.active = _RANDOM.random() < toxic.toxicity
        self.configure(now)

    @property
    def name(self) -> str:
        """The toxic's name, by which the pipeline finds this stage."""
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
        """Decide when an item leaves an active stage; each toxic type overrides this."""
        self.release(item, now)

    def release(self, item: Item, due: float) -> None:
        """Hold an item until ``due`` (or until the item before it leaves, if later)."""
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
        """When the next held item is due, for the pipeline's timer; ``None`` if none is held."""
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


class _Latency(Stage):
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


class _Bandwidth(Stage):
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


class _Slicer(Stage):
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


class _SlowClose(Stage):
    def configure(self, now: float) -> None:
        self.delay = self.toxic.attributes["delay"] / 1000

    def schedule(self, item: Item, now: float) -> None:
        self.release(item, now if item.kind == DATA else max(self.last_due, now) + self.delay)


class _Ending(Stage):
    """A stage that ends the connection with a marker at some point, then drops everything."""

    def __init__(self, toxic: Toxic, pipeline: DropCounter, now: float) -> None:
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
    def __init__(self, toxic: Toxic, pipeline: DropCounter, now: float) -> None:
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
    def __init__(self, toxic: Toxic, pipeline: DropCounter, now: float) -> None:
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


STAGES: dict[str, type[Stage]] = {
    "latency": _Latency,
    "bandwidth": _Bandwidth,
    "slow_close": _SlowClose,
    "timeout": _Timeout,
    "reset_peer": _ResetPeer,
    "slicer": _Slicer,
    "limit_data": _LimitData,
}
