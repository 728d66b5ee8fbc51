"""The schedule drill's state machine and runner, driving a simulated system (no servers).

The simulated system has the bug the real drill must catch: its failover skips fencing,
so an old primary that was frozen long enough to be failed over comes back writable
when it is thawed. These tests check what the runner does with that: shrinking to one
step, printing it, the seed that replays it, and the drill's result.
"""

from __future__ import annotations

import types

import pytest

from pytest_drdrill.record import DrillRecord
from pytest_drdrill.recovery.orchestrator import MonitorSettings
from pytest_drdrill.results import Verdict
from pytest_drdrill.schedules import (
    FaultSchedules,
    Finding,
    ScheduleFailed,
    ScheduleSettings,
    schedule_drill,
)
from pytest_drdrill.schedules.example import ExampleContext, ExampleOutcome

NODEID = "scenarios/test_fault_schedules.py::test_fault_schedules_keep_the_invariants"


class UnfencedFailover:
    """A simulated topology whose failover forgets to fence the old primary.

    ``settle`` lets the simulated monitor fail over from a frozen primary; healing then
    thaws the old primary beside the new one.
    """

    def __init__(self, context: ExampleContext, log: list[list[str]], *, broken: bool) -> None:
        self.context = context
        self.broken = broken
        self.steps: list[str] = []
        log.append(self.steps)
        self.frozen = set()
        self.primary = "pg-primary"
        self.writable = {"pg-primary"}

    def _server(self, role):
        return self.primary if role == "primary" else f"a {role}"

    def crash(self, node):
        self.steps.append(f"crash {node}")

    def freeze(self, node):
        self.steps.append(f"freeze {node}")
        self.frozen.add(self._server(node))

    def partition(self, node, side):
        self.steps.append(f"partition {node} {side}")

    def latency(self, node, ms, side):
        self.steps.append(f"latency {node} {ms} {side}")

    def heal(self):
        self.steps.append("heal")
        self._thaw()

    def _thaw(self):
        if self.broken:
            self.writable |= self.frozen & {"pg-primary"}
        self.frozen.clear()

    def settle(self):
        self.steps.append("settle")
        if self.primary in self.frozen:
            self.writable.discard(self.primary)
            self.primary = "pg-sync"
            self.writable.add("pg-sync")

    def abandon(self):
        pass

    def finish(self):
        self._thaw()
        self.context.on_outcome(
            ExampleOutcome(self.context.examples, 0.0, 1.0, len(self.writable) == 1, (), ())
        )
        self.context.examples += 1
        if len(self.writable) > 1:
            found = Finding("split brain", f"{' and '.join(sorted(self.writable))} writable")
            raise ScheduleFailed([found], self.steps)


def _schedules(tmp_path, *, seed, broken=False, log=None):
    log = [] if log is None else log
    context = ExampleContext(
        build=lambda _: pytest.fail("the simulated system starts no topology"),
        workdir=tmp_path,
        hook=None,
        name=NODEID,
        scenario="fault-schedules",
        cadence="quarterly",
        backend="local",
        target=None,
        monitor=MonitorSettings(),
        observe=60.0,
        settle_timeout=1.0,
        on_outcome=lambda outcome: None,
    )
    record = DrillRecord(
        NODEID, scenario="fault-schedules", cadence="quarterly", target=None, backend="local"
    )
    results = []
    schedules = FaultSchedules(
        context,
        record,
        seed=seed,
        on_result=results.append,
        subject=lambda ctx: UnfencedFailover(ctx, log, broken=broken),
    )
    return schedules, results, log


def test_a_split_brain_schedule_shrinks_to_one_step_printed_with_its_seed(tmp_path):
    """Shrunk to: freeze the primary and let recovery act (the end heals); with its replay."""
    schedules, results, _ = _schedules(tmp_path, seed=20261122, broken=True)
    with pytest.raises(ScheduleFailed) as caught:
        schedules.run(max_examples=200, steps=5)
    notes = "\n".join(caught.value.__notes__)
    steps = [line for line in notes.splitlines() if line.startswith("state.")]
    assert steps == ["state.freeze(node='primary', settle=True)", "state.teardown()"]
    assert f"pytest '{NODEID}' --drill=quarterly --hypothesis-seed=20261122" in notes, (
        "the failure must say how to replay it"
    )
    (result,) = results
    assert result.verdict is Verdict.FAIL
    assert result.reason.startswith("SPLIT BRAIN: pg-primary and pg-sync writable")
    assert "minimal schedule: state.freeze(node='primary', settle=True);" in result.reason


def test_the_same_seed_draws_the_same_schedules(tmp_path):
    """Replay: one seed gives the same schedules in the same order; another seed others."""
    first = _schedules(tmp_path, seed=7)
    first[0].run(max_examples=15, steps=4)
    again = _schedules(tmp_path, seed=7)
    again[0].run(max_examples=15, steps=4)
    other = _schedules(tmp_path, seed=8)
    other[0].run(max_examples=15, steps=4)
    assert first[2] == again[2]
    assert first[2] != other[2]


def test_schedules_heal_only_after_a_fault_and_stay_within_the_step_bound(tmp_path):
    """No schedule starts with a heal or heals twice in a row, and none exceeds ``steps``."""
    schedules, _, log = _schedules(tmp_path, seed=3)
    schedules.run(max_examples=40, steps=4)
    for steps in log:
        kinds = [s.split()[0] for s in steps if s != "settle"]
        assert len(kinds) <= 4
        assert not kinds or kinds[0] != "heal"
        assert all(not (a == b == "heal") for a, b in zip(kinds, kinds[1:], strict=False))
    assert any("settle" in steps for steps in log), "schedules let recovery act"


def test_a_passing_run_is_reported_as_one_drill_with_a_phase_per_schedule(tmp_path):
    """Without the bug every schedule passes: one result, seed and schedules in its notes."""
    schedules, results, _ = _schedules(tmp_path, seed=11)
    result = schedules.run(max_examples=10, steps=3)
    assert results == [result]
    assert result.verdict is Verdict.PASS
    # Each distinct schedule is played once, however often hypothesis draws it.
    played = [steps for steps in schedules.played if steps]
    assert len(result.phases) == len(schedules.outcomes) == len(played) >= 5
    assert all(p.name.startswith("schedule ") and p.ok for p in result.phases)
    assert result.notes[0] == "schedule seed 11: up to 10 schedules of up to 3 steps"


@pytest.mark.parametrize(
    "bad", [{"max_examples": 0}, {"steps": True}, {"settle_timeout": 0}, {"shrink_seconds": 0}]
)
def test_bad_settings_name_the_argument(bad):
    """A bad bound is refused naming the argument of run() and what to give."""
    (name,) = bad
    with pytest.raises(ValueError, match=rf"drdrill_schedules.run\({name}="):
        ScheduleSettings(**bad)


@pytest.mark.parametrize(("given", "seed"), [("123", 123), ("release-7", "release-7")])
def test_hypothesis_seed_option_is_the_schedule_seed(tmp_path, given, seed):
    """``--hypothesis-seed`` chooses the schedules, as hypothesis's own plugin does."""

    def getoption(name, default=None):
        return given if name == "hypothesis_seed" else default

    config = types.SimpleNamespace(hook=None, getoption=getoption)
    drill_config = types.SimpleNamespace(
        backend="local", health_interval=0.1, health_timeout=1.0, failure_threshold=3, observe=60.0
    )
    backend = types.SimpleNamespace(topology=lambda workdir: None)
    record = DrillRecord(
        NODEID, scenario="fault-schedules", cadence="quarterly", target=None, backend="local"
    )
    schedules = schedule_drill(
        config, drill_config, backend, record, None, tmp_path, lambda result: None
    )
    assert schedules.seed == seed
    assert f"--hypothesis-seed={seed}" in schedules.replay_hint()


def test_a_step_that_errors_removes_the_system_and_its_error_is_reported(tmp_path):
    """An injection error is the failure reported; the system is removed, not judged."""
    from pytest_drdrill.errors import FaultError
    from pytest_drdrill.schedules.machine import Step, play

    class Broken(UnfencedFailover):
        abandoned = finished = False

        def crash(self, node):
            raise FaultError("the fault proxy refused")

        def abandon(self):
            self.abandoned = True

        def finish(self):
            self.finished = True

    context = _schedules(tmp_path, seed=1)[0].context
    system = Broken(context, [], broken=False)
    with pytest.raises(FaultError, match="the fault proxy refused"):
        play(system, (Step("freeze", True, "primary"), Step("crash", False, "standby")))
    assert system.abandoned and not system.finished
    assert system.steps == ["freeze primary", "settle"]


def test_the_story_tells_steps_servers_and_recovery_apart():
    """Steps, [servers] and [recovery] lines, merged in time order from the schedule's start."""
    from pytest_drdrill.results import Phase
    from pytest_drdrill.schedules.invariants import Span, SplitBrain
    from pytest_drdrill.schedules.steplog import StepLog

    log = StepLog(100.0)
    log.add("freeze pg-primary (primary)", at=100.3)
    log.add("settle: writes succeed again 4.07s after the last change", at=104.7)
    old, new = Span("pg-primary", 104.8, 105.2, 5), Span("pg-sync", 104.4, 105.3, 9)
    fencing = Phase("fencing", 104.2, 104.21, detail="pg-primary killed and barred")
    lines = log.lines([old, new], [SplitBrain(new, old, 104.8, 105.2)], [fencing])
    assert lines == [
        "+   0.30s  freeze pg-primary (primary)",
        "+   4.20s  [recovery] fencing (10 ms): pg-primary killed and barred",
        "+   4.40s  [servers] pg-sync writable +4.40s .. +5.30s (9 answers)",
        "+   4.70s  settle: writes succeed again 4.07s after the last change",
        "+   4.80s  [servers] pg-primary writable +4.80s .. +5.20s (5 answers)",
        "+   4.80s  [servers] SPLIT BRAIN: pg-sync and pg-primary both writable +4.80s .. +5.20s",
    ]


def test_a_known_schedule_is_played_first_and_its_failure_names_it(tmp_path):
    """``known=``: played before any drawn schedule; a failure names it, no seed needed."""
    schedules, results, log = _schedules(tmp_path, seed=5, broken=True)
    known = [
        ["state.crash(node='second standby', settle=False)"],
        ["state.freeze(node='primary', settle=True)", "heal(settle=False)"],
    ]
    with pytest.raises(ScheduleFailed) as caught:
        schedules.run(max_examples=50, steps=3, known=known)
    assert log == [["crash second standby"], ["freeze primary", "settle", "heal"]]
    notes = "\n".join(caught.value.__notes__)
    assert "known schedule 2 of run(known=...):" in notes
    assert "state.freeze(node='primary', settle=True)\nstate.heal(settle=False)" in notes
    (result,) = results
    assert result.verdict is Verdict.FAIL
    assert result.reason == (
        "SPLIT BRAIN: pg-primary and pg-sync writable; known schedule 2: "
        "state.freeze(node='primary', settle=True), state.heal(settle=False)"
    )


def test_known_schedules_that_pass_are_followed_by_the_drawn_ones(tmp_path):
    """A passing known schedule is one outcome; hypothesis then draws as usual."""
    schedules, results, log = _schedules(tmp_path, seed=5)
    step = "state.latency(ms=1500, node='primary', settle=True, side='clients')"
    result = schedules.run(max_examples=5, steps=2, known=[[step]])
    assert log[0] == ["latency primary 1500 clients", "settle"]
    assert len(log) > 1 and result.verdict is Verdict.PASS
    assert result.notes[0] == "schedule seed 5: up to 5 schedules of up to 2 steps, after 1 known"


@pytest.mark.parametrize(
    ("known", "message"),
    [
        ("state.crash(node='primary', settle=True)", "give a list of schedules"),
        ([["state.frz(node='primary', settle=True)"]], "schedule 1, step 1: .*write one of crash"),
        ([["state.crash(node='primary'"]], "is not a step; write one as hypothesis prints it"),
        ([["crash('primary', True)"]], "with keyword arguments"),
        ([["state.crash(node='leader', settle=True)"]], r"node='leader' is not one of 'primary'"),
        ([["state.latency(ms=900, node='primary', settle=True, side='peers')"]], "ms=900"),
        ([["state.crash(node='primary', settle=1)"]], "settle=1 is not one of True, False"),
        ([["state.heal(settle=True, node='primary')"]], "heal takes settle, not node"),
        ([["state.partition(node='primary', settle=True)"]], "partition needs side too"),
        ([["state.heal(settle=True)"]], "schedule 1, step 1: a heal needs a fault before it"),
        ([[], ["state.crash(node='primary', settle=True)"]], "schedule 1 has no step"),
    ],
)
def test_a_known_step_that_cannot_be_played_is_refused_before_any_server(tmp_path, known, message):
    """Each mistake names run(known=...), the schedule and step, and what to write."""
    schedules, results, log = _schedules(tmp_path, seed=1)
    with pytest.raises(ValueError, match=message) as caught:
        schedules.run(max_examples=1, known=known)
    assert str(caught.value).startswith("drdrill_schedules.run(known=...)")
    assert log == [] and results == []


def test_a_printed_step_reads_back_as_the_same_step():
    """What a failure prints is what ``known=`` reads: every drawable step round-trips."""
    from pytest_drdrill.schedules.machine import (
        LATENCIES_MS,
        SIDES,
        TARGETS,
        Step,
        format_step,
        parse_step,
    )

    steps = [Step("heal", True), Step("heal", False)]
    for node in TARGETS:
        for settle in (True, False):
            steps += [Step("crash", settle, node), Step("freeze", settle, node)]
            for side in SIDES:
                steps.append(Step("partition", settle, node, side))
                steps += [Step("latency", settle, node, side, ms) for ms in LATENCIES_MS]
    for step in steps:
        assert parse_step(format_step(step)) == step


def test_a_shrink_budget_stops_playing_smaller_schedules_and_says_so(tmp_path, monkeypatch):
    """Past ``shrink_seconds`` no new schedule is played; the smallest failure found is kept.

    Each simulated schedule "takes" 10 s on the drill's clock, so a 15 s budget lets the
    shrinker play one or two smaller schedules after the first failure, then no more.
    """
    from pytest_drdrill import timing

    clock = {"now": 1000.0}
    monkeypatch.setattr(timing, "monotonic", lambda: clock["now"])
    original = UnfencedFailover.finish

    def slow_finish(self):
        clock["now"] += 10.0
        original(self)

    monkeypatch.setattr(UnfencedFailover, "finish", slow_finish)
    schedules, results, log = _schedules(tmp_path, seed=20261122, broken=True)
    with pytest.raises(ScheduleFailed) as caught:
        schedules.run(max_examples=200, steps=5, shrink_seconds=15)
    first_failure = next(i for i, o in enumerate(schedules.outcomes) if not o.ok)
    assert len(log) - (first_failure + 1) <= 2, "no schedule may start once the budget is spent"
    assert schedules.not_played > 0
    notes = "\n".join(caught.value.__notes__)
    assert "shrinking stopped 15s after the first failure (shrink_seconds)" in notes
    (result,) = results
    assert result.verdict is Verdict.FAIL
    assert "smallest schedule found: state." in result.reason
    assert any(n.startswith("shrinking stopped 15s") for n in result.notes)

    # Without a budget the same seed shrinks all the way (see the test above).
    unbounded, _, full_log = _schedules(tmp_path, seed=20261122, broken=True)
    with pytest.raises(ScheduleFailed):
        unbounded.run(max_examples=200, steps=5)
    assert len(full_log) > len(log) and unbounded.not_played == 0
