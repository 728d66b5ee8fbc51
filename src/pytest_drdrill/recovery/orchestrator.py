"""The detecting half of the reference orchestrator: health monitors and the decision rule.

Every round (``--drill-health-interval``) it runs, all at once and each bounded by
``--drill-health-timeout``, the checks behind the requirements' four monitors:

- **database** (weight 3): no PostgreSQL node of the serving region can serve: neither
  the primary nor any standby of its region answers through the clients' paths;
- **application** (weight 2): a service endpoint (PostgreSQL, Redis, object storage)
  fails its check, seen exactly as clients see it;
- **network** (weight 2): the DR region reaches nothing of the serving region: every
  cross-region replication path fails;
- **storage** (weight 1): the serving region's object store fails its check.

When the weighted score stays at 3 or more for ``--drill-failure-threshold`` rounds, the
whole region fails over (``pytest_drdrill_region_failover``). Otherwise a service whose
primary failed that many rounds in a row fails over alone (``pytest_drdrill_failover``):
a PostgreSQL primary crash with a healthy synchronous standby scores 2 (application
only) and stays in the region, while a lost region scores 8.

It also samples replication lag every few rounds into the drill's timeline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from typing import TYPE_CHECKING, Any

from pytest_drdrill import timing
from pytest_drdrill.errors import FailoverFailed
from pytest_drdrill.recovery.health import Health, check_postgres
from pytest_drdrill.recovery.lag import sample_lag
from pytest_drdrill.results import Phase

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.topology._protocol import Topology
    from pytest_drdrill.topology.links import Link

logger = logging.getLogger(__name__)

#: The requirements' monitor weights, and the score at which the region fails over.
WEIGHTS = {"database": 3, "application": 2, "network": 2, "storage": 1}
REGION_TRIGGER = 3


@dataclasses.dataclass(frozen=True)
class Detection:
    """What the orchestrator saw when it decided to fail over.

    :param node: the failed primary's name (for a region: the serving region's name).
    :param checks: the consecutive failed checks of that primary.
    :param decided_at: monotonic stamp of the decision.
    :param service: the service failing over; ``"region"`` for a region failover.
    :param score: the weighted score of the deciding round.
    :param unhealthy: the monitors that were unhealthy in that round.
    """

    node: str
    checks: tuple[Health, ...]
    decided_at: float
    service: str = "postgres"
    score: int = 0
    unhealthy: tuple[str, ...] = ()

    @property
    def first_failure(self) -> float:
        """Monotonic stamp of the first failed check of the run."""
        return self.checks[0].started if self.checks else self.decided_at


def hook_relays(
    hook: Any, topology: Topology, record: DrillRecord
) -> tuple[Callable[[Detection], object], Callable[[Detection], object]]:
    """The ``failover`` and ``region_failover`` an :class:`Orchestrator` calls.

    They relay to the ``pytest_drdrill_failover`` and ``pytest_drdrill_region_failover``
    hooks of *hook* (a pluggy hook relay), bound to the drill's topology and record: a
    team's implementation answers first, the reference one otherwise.
    """

    def failover(detection: Detection) -> object:
        return hook.pytest_drdrill_failover(
            service=detection.service, topology=topology, record=record, detection=detection
        )

    def region_failover(detection: Detection) -> object:
        return hook.pytest_drdrill_region_failover(
            topology=topology, record=record, detection=detection
        )

    return failover, region_failover


@dataclasses.dataclass(frozen=True)
class MonitorSettings:
    """How the orchestrator decides.

    :param interval: seconds between the starts of two rounds of checks.
    :param timeout: seconds one check may take before it counts as failed.
    :param threshold: consecutive failed rounds that trigger a failover.
    :param max_failovers: failovers per service per drill before it stops and reports.
    :param lag_every: sample replication lag every this many rounds.
    :param services: the services to watch and fail over (``redis`` is left out when
        Sentinel decides its failovers).
    """

    interval: float = 0.1
    timeout: float = 1.0
    threshold: int = 3
    max_failovers: int = 2
    lag_every: int = 5
    services: tuple[str, ...] = ("postgres", "redis", "s3")


@dataclasses.dataclass(frozen=True)
class Round:
    """One round of checks and what the monitors made of it."""

    primaries: dict[str, Health]
    unhealthy: tuple[str, ...]
    score: int
    errors: dict[str, str]


def _answers(health: Health) -> bool:
    """The server answered, as primary or as standby."""
    return health.ok or health.in_recovery is not None


async def check_service(service: str, link: Link, bucket: str, timeout: float) -> Health:
    """Check ``service`` through ``link`` the way its clients would."""
    if service == "postgres":
        return await check_postgres(link.dsn(app="drdrill-monitor"), timeout)
    if service == "redis":
        from pytest_drdrill.recovery.redis import check_redis

        return await check_redis(link.url(), timeout)
    from pytest_drdrill.recovery.storage import check_s3

    return await check_s3(link.endpoint_url, bucket, timeout)


class Orchestrator:
    """Watches a two-region topology in a background thread and triggers failovers.

    :param topology: what to watch.
    :param record: receives detection phases, lag samples and failover errors.
    :param settings: interval, timeout, threshold.
    :param failover: called with a service's :class:`Detection` (the hook relay).
    :param region_failover: called with a region :class:`Detection` (the hook relay);
        ``None`` to never fail a region over.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        topology: Topology,
        record: DrillRecord,
        settings: MonitorSettings,
        failover: Callable[[Detection], object],
        region_failover: Callable[[Detection], object] | None = None,
    ) -> None:
        self.topology = topology
        self.record = record
        self.settings = settings
        self.failover = failover
        self.region_failover = region_failover
        self.failovers: dict[str, int] = {}
        self.serving_region = "primary"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Orchestrator:
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

    # --- one round --------------------------------------------------------------------------

    async def check_round(self) -> Round:
        """Run every check at once and score the monitors."""
        topo, timeout = self.topology, self.settings.timeout
        checks: dict[str, Awaitable[Health]] = {}
        for service in self.settings.services:
            primary = topo.endpoint(service).target
            path = topo.client_paths[primary.name]
            checks[f"primary:{service}"] = check_service(service, path, topo.bucket, timeout)
            checks[f"endpoint:{service}"] = check_service(
                service, topo.endpoint(service), topo.bucket, timeout
            )
        for standby in topo.standbys():
            if standby.region == topo.primary.region:
                path = topo.client_paths[standby.name]
                checks[f"standby:{standby.name}"] = check_service(
                    "postgres", path, topo.bucket, timeout
                )
        for service, link in self._cross_region_links():
            checks[f"cross:{link.label}"] = check_service(service, link, topo.bucket, timeout)
        results = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
        return self._score(results)

    def _cross_region_links(self) -> list[tuple[str, Link]]:
        topo = self.topology
        nodes = topo.nodes()
        found: list[tuple[str, Link]] = []
        # A stack that names no object-replication path has no storage link to watch.
        storage = getattr(topo, "storage_link", None)
        groups = (
            ("postgres", topo.replication_links),
            ("redis", topo.redis_links),
            ("s3", {} if storage is None else {storage.source: storage}),
        )
        for service, links in groups:
            for source, link in links.items():
                node = nodes.get(source)
                if node is None or node.fenced or link.target.fenced:
                    continue
                if node.region != link.target.region:
                    found.append((service, link))
        return found

    def _score(self, results: dict[str, Health]) -> Round:
        primaries = {
            key.split(":", 1)[1]: h for key, h in results.items() if key.startswith("primary:")
        }
        errors = {key: h.error for key, h in results.items() if not h.ok}
        unhealthy = []
        pg = primaries.get("postgres")
        standbys = [h for key, h in results.items() if key.startswith("standby:")]
        # A primary that answers as a standby (a failed or half-done promotion) can still
        # be promoted: the region's database is not lost while any node answers.
        if pg is not None and not _answers(pg) and not any(_answers(h) for h in standbys):
            unhealthy.append("database")
        if any(not h.ok for key, h in results.items() if key.startswith("endpoint:")):
            unhealthy.append("application")
        cross = [h for key, h in results.items() if key.startswith("cross:")]
        if cross and not any(_answers(h) for h in cross):
            unhealthy.append("network")
        s3 = primaries.get("s3")
        if s3 is not None and not s3.ok:
            unhealthy.append("storage")
        score = sum(WEIGHTS[m] for m in unhealthy)
        return Round(primaries, tuple(unhealthy), score, errors)

    # --- the loop ---------------------------------------------------------------------------

    async def _watch(self) -> None:
        failed: dict[str, list[Health]] = {s: [] for s in self.settings.services}
        region_rounds = 0
        rounds = 0
        while not self._stop.is_set():
            started = timing.monotonic()
            if rounds % self.settings.lag_every == 0:
                for sample in await sample_lag(self.topology, self.settings.timeout):
                    self.record.add_lag(sample)
            rounds += 1
            result = await self.check_round()
            for service, health in result.primaries.items():
                failed[service] = [] if health.ok else [*failed[service], health]
            region_rounds = region_rounds + 1 if result.score >= REGION_TRIGGER else 0
            threshold = self.settings.threshold
            if (
                region_rounds >= threshold
                and self.region_failover is not None
                and self.serving_region == "primary"
            ):
                checks = tuple(h for hs in failed.values() for h in hs) or tuple(
                    result.primaries.values()
                )
                self._decide_region(result, checks)
                failed = {s: [] for s in failed}
                region_rounds = 0
                if self.record.recovery_errors:
                    return
                continue
            if (
                region_rounds > 0
                and self.region_failover is not None
                and self.serving_region == "primary"
            ):
                # The region looks lost: a service failover now would race the region
                # failover that the next rounds decide (both promoting the same replica).
                await asyncio.sleep(
                    max(0.0, self.settings.interval - (timing.monotonic() - started))
                )
                continue
            for service, checks_failed in failed.items():
                if len(checks_failed) < threshold:
                    continue
                if self.failovers.get(service, 0) >= self.settings.max_failovers:
                    # A real orchestrator must not flap between nodes; report instead.
                    self.record.recovery_errors.append(
                        f"monitor gave up on {service}: its primary failed again after "
                        f"{self.failovers[service]} failover(s); {checks_failed[-1].error}"
                    )
                    return
                self._decide(service, checks_failed, result)
                failed[service] = []
                if self.record.recovery_errors:
                    return  # a failed failover is reported, not retried in a loop
            elapsed = timing.monotonic() - started
            await asyncio.sleep(max(0.0, self.settings.interval - elapsed))

    def _decide(self, service: str, failed: list[Health], result: Round) -> None:
        node = self.topology.endpoint(service).target.name
        detection = Detection(
            node, tuple(failed), timing.monotonic(), service, result.score, result.unhealthy
        )
        self.record.add_phase(
            Phase(
                "detection",
                detection.first_failure,
                detection.decided_at,
                detail=(
                    f"{service}: {len(failed)} consecutive failed checks of {node}: "
                    f"{failed[-1].error}; monitors unhealthy {list(result.unhealthy) or 'none'} "
                    f"(score {result.score} < {REGION_TRIGGER}: service failover)"
                ),
            )
        )
        self.failovers[service] = self.failovers.get(service, 0) + 1
        self._call(self.failover, detection, f"{service} failover")

    def _decide_region(self, result: Round, checks: tuple[Health, ...]) -> None:
        detection = Detection(
            self.serving_region, checks, timing.monotonic(), "region", result.score,
            result.unhealthy,
        )  # fmt: skip
        self.record.add_phase(
            Phase(
                "detection",
                detection.first_failure,
                detection.decided_at,
                detail=(
                    f"region {self.serving_region}: monitors unhealthy {list(result.unhealthy)}, "
                    f"score {result.score} >= {REGION_TRIGGER} for {self.settings.threshold} "
                    f"rounds: region failover"
                ),
            )
        )
        self.serving_region = "dr"
        assert self.region_failover is not None
        self._call(self.region_failover, detection, "region failover")

    def _call(self, hook: Callable[[Detection], object], detection: Detection, what: str) -> None:
        try:
            result = hook(detection)
        except FailoverFailed as exc:
            self.record.recovery_errors.append(f"{what} failed: {exc}")
        except Exception as exc:
            logger.exception("%s raised", what)
            self.record.recovery_errors.append(f"{what} raised {type(exc).__name__}: {exc}")
        else:
            if result is None:
                self.record.recovery_errors.append(f"no implementation of the {what} hook acted")
            else:
                self.record.note(f"{what} returned {result!r}")
