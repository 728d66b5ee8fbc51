"""The measuring client: writes sequence-numbered records and probes a service endpoint.

It runs on its own asyncio loop in a background thread and records every operation in a
:class:`~pytest_drdrill.measure.history.History` with monotonic timestamps. RTO and RPO
are computed from that history afterwards, never from what recovery code reports. The
service is reached through a :class:`~pytest_drdrill.measure._protocol.LedgerClient`
(PostgreSQL, Redis or object storage); the rules below are the same for all.

Each write uses a fresh id, once. Its outcome is ``OK`` when it was acknowledged,
``FAIL`` when it certainly did not apply (no connection, or the server refused it, e.g.
read-only), and ``INFO`` when it was sent but never acknowledged (the connection died or
timed out mid-write): such a record may or may not exist afterwards.

While it runs, the process's older objects are kept out of the garbage collector
(:mod:`~pytest_drdrill.measure.heap`), and any moment the loop itself could not run is
recorded as a stall (:meth:`History.stalls`): timeouts then say nothing about the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.measure import heap
from pytest_drdrill.measure._protocol import Indeterminate, NotApplied
from pytest_drdrill.measure.analysis import measure_rto
from pytest_drdrill.measure.history import History, Outcome, ProbeOp, WriteOp
from pytest_drdrill.measure.postgres import PostgresLedger, read_present_ids

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pytest_drdrill.measure._protocol import LedgerClient

__all__ = ["Workload", "read_present_ids"]

#: How often the loop checks that it runs, seconds.
STALL_TICK = 0.02
#: A stall is recorded from this share of the client's timeout (a quarter of 1 s by default).
STALL_SHARE = 0.25


class Workload:
    """A client of one service endpoint that writes and probes continuously.

    :param client: the service's ledger client, or a PostgreSQL connection string (the
        service endpoint's, never a node's) for the PostgreSQL ledger.
    :param history: where operations are recorded.
    :param write_interval: pause between acknowledged writes, seconds.
    :param retry_interval: pause after a failed write, seconds (sets RTO resolution).
    :param probe_interval: pause between availability probes, seconds.
    :param timeout: client-side limit for one connect or operation, seconds. libpq's own
        ``connect_timeout`` cannot go below 2 s and a frozen server never refuses, so the
        client enforces this itself.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 takes any :class:`LedgerClient`.
    """

    def __init__(
        self,
        client: LedgerClient | str,
        history: History | None = None,
        *,
        write_interval: float = 0.01,
        retry_interval: float = 0.005,
        probe_interval: float = 0.05,
        timeout: float = 1.0,
    ) -> None:
        self.client = PostgresLedger(client) if isinstance(client, str) else client
        self.service = self.client.service
        self.history = history if history is not None else History()
        self.write_interval = write_interval
        self.retry_interval = retry_interval
        self.probe_interval = probe_interval
        self.timeout = timeout
        self._next_id = 1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> Workload:
        """Start writing and probing in a background thread."""
        if self._thread is not None:
            raise RuntimeError("the workload is already running")
        self._stop.clear()
        heap.hold()
        self._thread = threading.Thread(target=self._run, name="drdrill-workload", daemon=True)
        try:
            self._thread.start()
        except BaseException:
            self._thread = None
            heap.release()
            raise
        return self

    def stop(self) -> None:
        """Stop and wait for the thread; pending operations are closed, never left open."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout * 3 + 5)
            self._thread = None
            heap.release()
        if self._error is not None:
            raise RuntimeError("the drill workload crashed") from self._error

    @contextlib.contextmanager
    def running(self) -> Iterator[Workload]:
        """Run the workload for the duration of a ``with`` block."""
        self.start()
        try:
            yield self
        finally:
            self.stop()

    @property
    def is_running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # --- waiting ----------------------------------------------------------------------------

    def wait_for_acks(self, count: int, *, timeout: float = 10.0) -> bool:
        """Wait until ``count`` writes have been acknowledged since the call.

        :returns: whether they were, within ``timeout`` seconds.
        """
        start = timing.monotonic()
        while timing.monotonic() - start < timeout:
            if self.history.acknowledged_since(start) >= count:
                return True
            timing.sleep(0.005)
        return False

    def wait_recovered(self, after: float, *, timeout: float, stable: float = 0.3) -> bool:
        """Wait until writes succeed again after a fault and keep succeeding for ``stable`` s.

        Only waits; the RTO is computed from the history afterwards.

        :param after: the fault's monotonic injection stamp.
        :param timeout: give up this many seconds after ``after``.
        :param stable: how long writes must keep succeeding.
        :returns: whether the service was seen recovered.
        """
        while timing.monotonic() - after < timeout:
            # The same rule the drill is judged by, so waiting and measuring never disagree.
            seen = measure_rto(self.history, after)
            if seen.effect_seen:
                if (
                    seen.recovered_at is not None
                    and timing.monotonic() - seen.recovered_at >= stable
                ):
                    return True
            elif timing.monotonic() - after >= max(stable, 2.0):
                # No failure at all for a while: the fault had no effect, nothing to wait for.
                return True
            timing.sleep(0.01)
        return False

    # --- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by stop()
            self._error = exc

    async def _main(self) -> None:
        try:
            await asyncio.gather(self._writer(), self._prober(), self._stall_watch())
        finally:
            await self.client.aclose()

    async def _writer(self) -> None:
        while not self._stop.is_set():
            op_id = self._next_id
            self._next_id += 1
            invoked = timing.monotonic()
            outcome, error = Outcome.OK, ""
            try:
                await self.client.write(op_id, self.timeout)
            except NotApplied as exc:
                outcome, error = Outcome.FAIL, str(exc)
            except Indeterminate as exc:
                outcome, error = Outcome.INFO, str(exc)
            self.history.record_write(WriteOp(op_id, invoked, timing.monotonic(), outcome, error))
            await asyncio.sleep(
                self.write_interval if outcome is Outcome.OK else self.retry_interval
            )

    async def _prober(self) -> None:
        while not self._stop.is_set():
            invoked = timing.monotonic()
            ok, error = True, ""
            try:
                await self.client.probe(self.timeout)
            except Exception as exc:  # any failure of a probe is a failed probe
                ok, error = False, str(exc) or type(exc).__name__
            self.history.record_probe(ProbeOp(invoked, timing.monotonic(), ok, error))
            await asyncio.sleep(self.probe_interval)

    async def _stall_watch(self) -> None:
        # Wakes often; waking late means the loop could not run (no CPU, GIL held elsewhere).
        tick, bar = STALL_TICK, max(STALL_TICK * 2, self.timeout * STALL_SHARE)
        while not self._stop.is_set():
            slept = timing.monotonic()
            await asyncio.sleep(tick)
            woke = timing.monotonic()
            late = woke - slept - tick
            if late >= bar:
                self.history.record_stall(woke, late)

    def read_ids(self, *, timeout: float = 10.0) -> set[int]:
        """Every id in the service's ledger, read through its endpoint (after recovery)."""
        return self.client.read_ids(timeout=timeout)
