"""The schedule drill: hypothesis writes fault schedules, each run against a fresh topology.

:class:`FaultSchedules` is what the ``drdrill_schedules`` fixture gives a test. Its
:meth:`~FaultSchedules.run` runs a bounded number of schedules, each a bounded number of
steps, seeded so a run can be replayed; the first schedule that breaks an invariant is
shrunk to a minimal one and printed, step by step, in the test failure. The run is
reported as one drill whose phases are the schedules.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.results import DrillResult, Phase, Verdict
from pytest_drdrill.schedules.example import ScheduleExample
from pytest_drdrill.schedules.exampledata import ExampleContext, ExampleOutcome
from pytest_drdrill.schedules.invariants import ScheduleFailed

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    import pytest

    from pytest_drdrill.config import DrillConfig
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.schedules.machine import ScheduleSubject, Step
    from pytest_drdrill.topology.backend import Backend


@dataclasses.dataclass(frozen=True)
class ScheduleSettings:
    """How much a schedule drill explores.

    :param max_examples: schedules to run before the drill passes (hypothesis
        ``max_examples``); shrinking a failure runs more.
    :param steps: steps per schedule at most (hypothesis ``stateful_step_count``).
    :param settle_timeout: seconds one ``settle`` step waits for writes to succeed.
    :param shrink_seconds: how long shrinking a failure may play new schedules, counted
        from the first failure; ``None``: as long as hypothesis shrinks.

    .. versionadded:: 0.4
    .. versionchanged:: 0.9 ``shrink_seconds``.
    """

    max_examples: int = 8
    steps: int = 5
    settle_timeout: float = 8.0
    shrink_seconds: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_examples", "steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"drdrill_schedules.run({name}={value!r}): give a whole number of 1 or "
                    f"more; each schedule starts a topology, so keep it small"
                )
        if not self.settle_timeout > 0:
            raise ValueError(
                f"drdrill_schedules.run(settle_timeout={self.settle_timeout!r}): give seconds "
                "above zero"
            )
        if self.shrink_seconds is not None and not self.shrink_seconds > 0:
            raise ValueError(
                f"drdrill_schedules.run(shrink_seconds={self.shrink_seconds!r}): give seconds "
                "above zero, or None to shrink as long as hypothesis does"
            )


class FaultSchedules:
    """Random fault schedules against fresh topologies; the ``drdrill_schedules`` fixture.

    :param context: what every schedule shares (topology factory, hooks, target, monitor).
    :param record: the drill's own record: one phase per schedule is added to it.
    :param seed: the hypothesis seed; ``None`` draws one (and prints it on failure).
    :param on_result: receives the drill's result (the session's report collector).
    :param subject: makes the system each schedule is played against; default a fresh
        topology per schedule (:class:`~pytest_drdrill.schedules.example.ScheduleExample`).

    .. versionadded:: 0.4
    """

    def __init__(
        self,
        context: ExampleContext,
        record: DrillRecord,
        *,
        seed: int | str | None,
        on_result: Callable[[DrillResult], None],
        subject: Callable[[ExampleContext], ScheduleSubject] | None = None,
    ) -> None:
        self.context = context
        self.subject: Callable[[ExampleContext], ScheduleSubject] = subject or ScheduleExample
        #: Each schedule played, and the failure it raised (``None``: it passed).
        self.played: dict[tuple[Step, ...], ScheduleFailed | None] = {}
        self.record = record
        self.seed: int | str = seed if seed is not None else secrets.randbelow(2**32)
        self._on_result = on_result
        self.outcomes: list[ExampleOutcome] = []
        self.result: DrillResult | None = None
        #: Shrinking's budget in seconds (``run(shrink_seconds=...)``), from the first failure.
        self.shrink_seconds: float | None = None
        self._first_failure_at: float | None = None
        #: Smaller schedules hypothesis proposed after the budget ran out, not played.
        self.not_played = 0
        context.on_outcome = self._finished

    def replay_hint(self) -> str:
        """How to run the same schedules again."""
        return (
            f"Replay these schedules: pytest '{self.record.name}' --drill={self.record.cadence} "
            f"--hypothesis-seed={self.seed} (the same seed draws the same schedules in the same "
            "order; the servers' timing may still differ)"
        )

    def _finished(self, outcome: ExampleOutcome) -> None:
        self.outcomes.append(outcome)
        self.record.add_phase(
            Phase(
                f"schedule {outcome.number}",
                outcome.started,
                outcome.ended,
                ok=outcome.ok,
                detail=outcome.detail,
            )
        )

    def _play(self, steps: tuple[Step, ...]) -> None:
        """Play a schedule once; a schedule drawn again gets the outcome it had."""
        from pytest_drdrill.schedules.machine import play

        if not steps:
            return
        if steps not in self.played:
            if self._out_of_shrink_time():
                import hypothesis

                # Discarded, not passed: hypothesis keeps the smallest failure it has.
                self.not_played += 1
                hypothesis.reject()
            try:
                play(self.subject(self.context), steps)
                self.played[steps] = None
            except ScheduleFailed as found:
                self.played[steps] = found
                if self._first_failure_at is None:
                    self._first_failure_at = timing.monotonic()
        failure = self.played[steps]
        if failure is not None:
            # One raise site, outside any handler, so hypothesis sees the same failure
            # whether the schedule was just played or looked up.
            raise ScheduleFailed(failure.findings, failure.steps, during=failure.during)

    def shrink_note(self) -> str:
        """What the shrink budget left out."""
        return (
            f"shrinking stopped {self.shrink_seconds:g}s after the first failure "
            f"(shrink_seconds): {self.not_played} smaller schedule(s) not played, so the "
            "schedule printed may not be minimal"
        )

    def _out_of_shrink_time(self) -> bool:
        return (
            self.shrink_seconds is not None
            and self._first_failure_at is not None
            and timing.monotonic() - self._first_failure_at > self.shrink_seconds
        )

    def run(
        self,
        *,
        max_examples: int | None = None,
        steps: int | None = None,
        settle_timeout: float | None = None,
        known: Sequence[Sequence[str | Step]] = (),
        shrink_seconds: float | None = None,
    ) -> DrillResult:
        """Run the schedules; fail the test with a minimal schedule when one breaks an invariant.

        :param max_examples: schedules hypothesis draws (default 8); one drawn again is
            played once, so fewer topologies may start; shrinking a failure draws more.
        :param steps: steps per schedule at most (default 5).
        :param settle_timeout: seconds a ``settle`` step waits at most (default 8).
        :param known: schedules to play first, in order, before hypothesis draws any: each
            a list of steps written as a failure printed them, e.g.
            ``[["state.freeze(node='primary', settle=True)"]]``. Keep the schedules an
            earlier run found here, so they are played on every run whatever the seed.
        :param shrink_seconds: stop playing smaller schedules this many seconds after the
            first failure (each starts a topology); the smallest failing schedule found by
            then is printed, with a note that it may not be minimal. Default: no limit.
        :raises ScheduleFailed: naming each broken invariant, with the shrunk schedule
            (or the known schedule that broke it).
        :raises ValueError: a bound or a known step that cannot be played, before any
            server starts.
        """
        from pytest_drdrill.schedules.machine import format_step, parse_schedules

        defaults = ScheduleSettings()
        chosen = ScheduleSettings(
            max_examples=defaults.max_examples if max_examples is None else max_examples,
            steps=defaults.steps if steps is None else steps,
            settle_timeout=defaults.settle_timeout if settle_timeout is None else settle_timeout,
            shrink_seconds=shrink_seconds,
        )
        self.shrink_seconds = chosen.shrink_seconds
        schedules = parse_schedules(known)
        self.context.settle_timeout = chosen.settle_timeout
        try:
            import hypothesis
            from hypothesis.stateful import run_state_machine_as_test
        except ImportError as exc:
            raise RuntimeError(
                "the schedule drill needs hypothesis: pip install 'pytest-drdrill[schedules]'"
            ) from exc
        from pytest_drdrill.schedules.machine import schedule_machine

        machine = hypothesis.seed(self.seed)(schedule_machine(self._play))
        settings = hypothesis.settings(
            max_examples=chosen.max_examples,
            stateful_step_count=chosen.steps,
            # Each example starts servers: no deadline, no per-example speed health check.
            deadline=None,
            suppress_health_check=[hypothesis.HealthCheck.too_slow],
            # Replay is by seed; the database would replay old failures first instead.
            database=None,
            phases=[hypothesis.Phase.generate, hypothesis.Phase.shrink],
            report_multiple_bugs=False,
            print_blob=False,
        )
        self.record.note(
            f"schedule seed {self.seed}: up to {chosen.max_examples} schedules of up to "
            f"{chosen.steps} steps" + (f", after {len(schedules)} known" if schedules else "")
        )
        for number, schedule in enumerate(schedules, 1):
            try:
                self._play(schedule)
            except ScheduleFailed as exc:
                exc.add_note(f"known schedule {number} of run(known=...):")
                exc.add_note("\n".join(format_step(step) for step in schedule))
                self._report(exc, known=number)
                raise
            except Exception as exc:
                exc.add_note(f"while playing known schedule {number} of run(known=...)")
                self._report(exc)
                raise
        try:
            run_state_machine_as_test(machine, settings=settings)
        except BaseException as exc:
            if isinstance(exc, Exception):
                if self.not_played:
                    exc.add_note(self.shrink_note())
                exc.add_note(self.replay_hint())
                self._report(exc)
            raise
        return self._report(None)

    def _report(self, failure: Exception | None, *, known: int | None = None) -> DrillResult:
        """Report the drill; ``known``: the number of the known schedule that failed."""
        record = self.record
        for outcome in self.outcomes:
            record.note(outcome.summary)
        if failure is None:
            worst = max(
                (o.recovery_seconds for o in self.outcomes if o.recovery_seconds is not None),
                default=None,
            )
            handovers = sum(len(o.handovers) for o in self.outcomes)
            warnings = [o.warning for o in self.outcomes if o.warning]
            verdict = Verdict.WARN if warnings else Verdict.PASS
            reason = (
                f"{len(self.outcomes)} schedules (seed {self.seed}), {handovers} handovers seen "
                f"by the servers: never two writable primaries, no acknowledged write lost "
                f"across synchronous handovers, writes back within "
                f"{'-' if worst is None else f'{worst:.2f}s'} of the last heal at worst"
            )
            reason += "".join(f"; {w}" for w in warnings)
        else:
            verdict = Verdict.FAIL
            if known is None:
                label = "minimal schedule"
                if self.not_played:
                    label = "smallest schedule found"
                    record.note(self.shrink_note())
                reason = f"{_failure_reason(failure, label)}; {self.replay_hint()}"
            else:
                reason = _failure_reason(failure, f"known schedule {known}")
        self.result = record.result(
            verdict, reason, faults=tuple(f for o in self.outcomes for f in o.faults)
        )
        self._on_result(self.result)
        return self.result


def _failure_reason(failure: BaseException, label: str) -> str:
    """The broken invariants and the schedule that broke them, in one line."""
    found = _schedule_failure(failure)
    if found is None:
        return f"the schedule drill stopped: {type(failure).__name__}: {failure}".splitlines()[0]
    notes = getattr(found, "__notes__", []) or getattr(failure, "__notes__", [])
    schedule = [
        line.strip()
        for note in notes
        for line in str(note).splitlines()
        if line.strip().startswith("state.") and line.strip() != "state.teardown()"
    ]
    return (
        "; ".join(str(f) for f in found.findings) + f"; {label}: {', '.join(schedule) or 'no step'}"
    )


def _schedule_failure(failure: BaseException) -> ScheduleFailed | None:
    if isinstance(failure, ScheduleFailed):
        return failure
    for inner in getattr(failure, "exceptions", ()):
        found = _schedule_failure(inner)
        if found is not None:
            return found
    return None


def schedule_drill(
    config: pytest.Config,
    drill_config: DrillConfig,
    backend: Backend,
    record: DrillRecord,
    observe: float | None,
    workdir: Path,
    on_result: Callable[[DrillResult], None],
) -> FaultSchedules:
    """Build the ``drdrill_schedules`` fixture's object for one test.

    :param observe: the marker's ``observe=``, else ``--drill-observe`` applies.

    .. versionadded:: 0.4
    """
    from pytest_drdrill.assembly import monitor_settings
    from pytest_drdrill.config import backend_name

    context = ExampleContext(
        build=backend.topology,
        workdir=workdir,
        hook=config.hook,
        name=record.name,
        scenario=record.scenario,
        cadence=record.cadence,
        backend=backend_name(drill_config),
        target=record.target,
        monitor=monitor_settings(drill_config),
        observe=observe or drill_config.observe,
        settle_timeout=ScheduleSettings().settle_timeout,
        on_outcome=lambda outcome: None,
    )
    seed = config.getoption("hypothesis_seed", None)
    if isinstance(seed, str) and seed.isdigit():
        seed = int(seed)
    return FaultSchedules(context, record, seed=seed, on_result=on_result)
