"""The detecting half of the reference orchestrator.

It checks the primary behind the service endpoint at a fixed interval, each check bounded
by a client-side timeout, and declares it failed after a number of consecutive failed
checks (the seed's decision rule, with its weights coming in the two-region release).
Then it hands over to whichever ``pytest_drdrill_failover`` implementation answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.errors import FailoverFailed
from pytest_drdrill.recovery.health import Health, check_postgres
from pytest_drdrill.results import Phase

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.topology._protocol import Topology

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Detection:
    """What the monitor saw when it decided the primary had failed.

    :param node: the primary's name.
    :param checks: the consecutive failed checks.
    :param decided_at: monotonic stamp of the decision.
    """

    node: str
    checks: tuple[Health, ...]
    decided_at: float

    @property
    def first_failure(self) -> float:
        """Monotonic stamp of the first failed check of the run."""
        return self.checks[0].started


@dataclasses.dataclass(frozen=True)
class MonitorSettings:
    """How the monitor decides.

    :param interval: seconds between the starts of two checks.
    :param timeout: seconds one check may take before it counts as failed.
    :param threshold: consecutive failed checks that trigger failover.
    :param max_failovers: failovers per drill before the monitor stops and reports.
    """

    interval: float = 0.1
    timeout: float = 0.2
    threshold: int = 3
    max_failovers: int = 2


class Monitor:
    """Watches the primary of a topology in a background thread.

    :param topology: what to watch; the primary is whatever the endpoint points at.
    :param record: receives the detection phase and any failover error.
    :param settings: interval, timeout, threshold.
    :param failover: called with the :class:`Detection`; typically the hook relay.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        topology: Topology,
        record: DrillRecord,
        settings: MonitorSettings,
        failover: Callable[[Detection], object],
    ) -> None:
        self.topology = topology
        self.record = record
        self.settings = settings
        self.failover = failover
        self.failovers = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Monitor:
        """Start watching."""
        self._thread = threading.Thread(target=self._run, name="drdrill-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching; waits for a failover in progress to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
            self._thread = None

    def _run(self) -> None:
        try:
            asyncio.run(self._watch())
        except Exception:  # the monitor must never take the test down; the drill reports it
            logger.exception("drill monitor crashed")
            self.record.recovery_errors.append("the monitor crashed; see the log")

    async def _watch(self) -> None:
        failed: list[Health] = []
        while not self._stop.is_set():
            primary = self.topology.primary
            health = await check_postgres(primary.dsn(app="drdrill-monitor"), self.settings.timeout)
            if health.ok:
                failed = []
            else:
                failed.append(health)
            if len(failed) >= self.settings.threshold:
                if self.failovers >= self.settings.max_failovers:
                    # A real orchestrator must not flap between nodes; report instead.
                    self.record.recovery_errors.append(
                        f"monitor gave up: the primary failed again after {self.failovers} "
                        f"failover(s); {failed[-1].error}"
                    )
                    return
                self._decide(primary.name, failed)
                failed = []
                if self.record.recovery_errors:
                    return  # a failed failover is reported, not retried in a loop
                continue
            await asyncio.sleep(max(0.0, self.settings.interval - health.seconds))

    def _decide(self, node: str, failed: list[Health]) -> None:
        detection = Detection(node, tuple(failed), timing.monotonic())
        self.record.add_phase(
            Phase(
                "detection",
                detection.first_failure,
                detection.decided_at,
                detail=f"{len(failed)} consecutive failed checks of {node}: {failed[-1].error}",
            )
        )
        self.failovers += 1
        try:
            result = self.failover(detection)
        except FailoverFailed as exc:
            self.record.recovery_errors.append(f"failover failed: {exc}")
        except Exception as exc:
            logger.exception("failover raised")
            self.record.recovery_errors.append(f"failover raised {type(exc).__name__}: {exc}")
        else:
            if result is None:
                self.record.recovery_errors.append(
                    "no pytest_drdrill_failover implementation acted"
                )
            else:
                self.record.note(f"failover returned {result!r}")
