"""The measuring client must not report its own process's pauses as a service outage.

A long-lived pytest process (an xdist worker after hundreds of tests) holds a large heap;
one full collection of Python's garbage collector then holds the GIL for most of a second,
every workload loop stalls, and client-side timeouts fire although the service answered.
CI3 saw exactly that: a latency drill that must show no outage saw postgres, redis and
S3 fail together.
"""

from __future__ import annotations

import asyncio
import gc

import pytest

from pytest_drdrill import timing
from pytest_drdrill.measure import heap
from pytest_drdrill.measure._protocol import Indeterminate
from pytest_drdrill.measure.history import Outcome
from pytest_drdrill.measure.services import stall_notes
from pytest_drdrill.measure.workload import Workload


class RoundTrips:
    """A service that always answers: each write is two short hops, like a real round trip."""

    service = "fake"

    async def write(self, op_id: int, timeout: float) -> None:
        async def hops() -> None:
            await asyncio.sleep(0.001)
            await asyncio.sleep(0.001)

        try:
            await asyncio.wait_for(hops(), timeout)
        except TimeoutError as exc:
            raise Indeterminate(f"no answer within {timeout}s") from exc

    async def probe(self, timeout: float) -> None:
        await asyncio.wait_for(asyncio.sleep(0.001), timeout)

    async def aclose(self) -> None:
        return None

    def read_ids(self, *, timeout: float = 10.0) -> set[int]:
        return set()


def big_heap(pause: float) -> tuple[list[object], float]:
    """Tracked objects until one full collection takes ``pause`` s; the heap and its pause."""
    objects: list[object] = []
    full = 0.0
    while full < pause and len(objects) < 12_000_000:
        objects.extend([i] for i in range(1_500_000))
        started = timing.monotonic()
        gc.collect()
        full = timing.monotonic() - started
    return objects, full


def test_a_full_collection_during_a_drill_does_not_look_like_an_outage() -> None:
    kept, full = big_heap(0.4)
    # Half a collection: far above a busy machine's scheduling noise, far below the pause.
    if full / 2 < 0.15:
        pytest.skip(f"a full collection of {len(kept)} lists took only {full:.2f}s here")
    workload = Workload(RoundTrips(), timeout=full / 2, write_interval=0.001)
    with workload.running():
        assert workload.wait_for_acks(20)
        for _ in range(3):
            gc.collect()  # what the interpreter does by itself when the heap grows
            timing.sleep(0.05)
        assert workload.wait_for_acks(20)
    failed = [op for op in workload.history.writes() if op.outcome is not Outcome.OK]
    assert failed == [], f"{len(failed)} writes failed; a full collection took {full:.2f}s"
    assert kept


def test_the_heap_is_frozen_only_while_a_client_runs() -> None:
    assert not heap.frozen()
    first, second = Workload(RoundTrips()), Workload(RoundTrips())
    with first.running():
        assert heap.frozen()
        with second.running():
            assert heap.frozen()
        assert heap.frozen(), "the other client still measures"
    assert not heap.frozen()
    assert gc.get_freeze_count() == 0


def test_a_stall_of_the_client_itself_is_recorded() -> None:
    workload = Workload(RoundTrips(), write_interval=0.001)
    with workload.running():
        assert workload.wait_for_acks(5)
        held = hold_the_gil(0.6)
        assert workload.wait_for_acks(5)
    assert held >= 0.3, f"the GIL was held only {held:.2f}s: nothing to show"
    stalls = workload.history.stalls()
    assert stalls, f"a {held:.2f}s stall of the client's own loop went unseen"
    _, seconds = max(stalls, key=lambda stall: stall[1])
    # The loop cannot run while the GIL is held: it wakes at most one tick early.
    assert held - 0.1 <= seconds <= held + 1.0
    (note,) = stall_notes("fake", workload, workload.history.writes()[0].invoked)
    assert note.startswith(f"the fake client itself could not run {len(stalls)} time(s), longest")


def test_a_client_that_always_ran_adds_no_note() -> None:
    assert stall_notes("fake", Workload(RoundTrips()), 0.0) == []


def hold_the_gil(seconds: float) -> float:
    """Keep the GIL about ``seconds`` (at least), as a full collection does; return how long."""
    # sum() over a range is a single C call: the interpreter never switches threads inside.
    n = 2_000_000
    started = timing.monotonic()
    sum(range(n))
    per = max(timing.monotonic() - started, 1e-6)
    started = timing.monotonic()
    sum(range(int(n * seconds / per * 2)))  # twice over: calibration on a busy machine errs
    return timing.monotonic() - started
