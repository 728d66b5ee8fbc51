"""Tests for HA role sampling: change-only recording, leader spans, the sampler, the report."""

from __future__ import annotations

import copy
import json
import threading
from typing import Any

import jsonschema
import pytest

from pytest_drdrill import timing
from pytest_drdrill.measure.roles import (
    RoleSampler,
    leader_spans,
    lsn_text,
    role_spans,
    wall_to_monotonic,
)
from pytest_drdrill.record import LAG_STEP_BYTES, DrillRecord
from pytest_drdrill.reporting import drill_to_dict, load_schema, plots
from pytest_drdrill.reporting.html import render_html
from pytest_drdrill.reporting.plot_roles import RoleRows, role_class, role_facts
from pytest_drdrill.results import RoleSample, TimelineSwitch, Verdict
from pytest_drdrill.timing import Anchor
from report_samples import add_timeline, example

ANCHOR = Anchor(mono=1000.0, wall=1_800_000_000.0)
MIB = 1024 * 1024


def sample(at: float, node: str = "pg-1", role: str = "replica", **changes: Any) -> RoleSample:
    """A running member on timeline 1, caught up, in recovery, as Patroni reports it."""
    fields: dict[str, Any] = {
        "state": "running",
        "timeline": 1,
        "lag_bytes": 0,
        "in_recovery": role != "leader",
        "source": "patroni /cluster",
        **changes,
    }
    return RoleSample(at=at, node=node, role=role, **fields)


def record() -> DrillRecord:
    return DrillRecord("roles", scenario="patroni", cadence="daily", target=None, backend="local")


# --- change-only recording ---------------------------------------------------------------


def test_repeated_samples_are_dropped_and_changes_kept() -> None:
    """Only the first of equal samples is kept; a new role, state or timeline is kept."""
    rec = record()
    kept = [
        rec.add_role_sample(sample(1.0)),
        rec.add_role_sample(sample(1.1)),
        rec.add_role_sample(sample(1.2, state="stopped")),
        rec.add_role_sample(sample(1.3, state="stopped")),
        rec.add_role_sample(sample(1.4, role="leader", in_recovery=False)),
        rec.add_role_sample(sample(1.5, role="leader", in_recovery=False, timeline=2)),
        rec.add_role_sample(sample(1.6, role="leader", in_recovery=None, timeline=2)),
    ]
    assert kept == [True, False, True, False, True, True, True]
    assert [s.at for s in rec.role_samples] == [1.0, 1.2, 1.4, 1.5, 1.6]


def test_members_are_compared_with_their_own_last_sample() -> None:
    """Interleaved members do not make each other's repeats look like changes."""
    rec = record()
    for at in (1.0, 1.1, 1.2):
        rec.add_role_sample(sample(at, "pg-1", "leader"))
        rec.add_role_sample(sample(at, "pg-2", "sync_standby"))
    assert [(s.node, s.at) for s in rec.role_samples] == [("pg-1", 1.0), ("pg-2", 1.0)]


@pytest.mark.parametrize(
    ("before", "after", "changed"),
    [
        (0, 512 * 1024, True),  # from caught up to behind, however little
        (512 * 1024, 0, True),  # caught up again
        (None, 4096, True),  # the lag became known
        (4096, None, True),  # and unknown again
        (None, 0, True),
        (5 * MIB, 5 * MIB + LAG_STEP_BYTES, False),  # exactly one step: not more than it
        (5 * MIB, 5 * MIB + LAG_STEP_BYTES + 1, True),
        (5 * MIB, 4 * MIB - 1, True),
        (5 * MIB, 5 * MIB + 1000, False),
        (None, None, False),
    ],
)
def test_lag_counts_as_a_change_only_past_a_step(
    before: int | None, after: int | None, *, changed: bool
) -> None:
    """Lag creeping by kilobytes is dropped; lag appearing, vanishing or jumping is kept."""
    rec = record()
    rec.add_role_sample(sample(1.0, lag_bytes=before))
    assert rec.add_role_sample(sample(1.1, lag_bytes=after)) is changed


def test_slow_lag_drift_is_measured_from_the_last_kept_sample() -> None:
    """A lag growing by half a MiB per sample is kept every third sample, not never."""
    rec = record()
    for i in range(1, 8):
        rec.add_role_sample(sample(float(i), lag_bytes=i * MIB // 2))
    assert [s.lag_bytes for s in rec.role_samples] == [MIB // 2, 2 * MIB, 7 * MIB // 2]


def test_recording_is_thread_safe() -> None:
    """Threads recording their own member's changes at once lose none of them."""
    rec = record()

    def member(node: str) -> None:
        for i in range(300):
            rec.add_role_sample(sample(float(i), node, "leader" if i % 2 else "replica"))

    threads = [threading.Thread(target=member, args=(f"pg-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(rec.role_samples) == 4 * 300


def test_result_carries_roles_and_switches() -> None:
    """record.result() puts the kept samples and the switches into the DrillResult."""
    rec = record()
    rec.add_role_sample(sample(1.0, role="leader"))
    rec.add_role_sample(sample(1.1, role="leader"))
    switch = TimelineSwitch(2, "0/3000060", 1.05, "no recovery target specified", "pg-1")
    rec.set_timeline_switches([switch])
    result = rec.result(Verdict.PASS, "ok")
    assert result.roles == (sample(1.0, role="leader"),)
    assert result.timeline_switches == (switch,)
    assert rec.result(Verdict.PASS, "ok", roles=()).roles == ()


# --- spans and conversions ---------------------------------------------------------------


def test_leader_spans_follow_a_failover() -> None:
    """The old leader's span ends where it stopped leading; the new one's is still open."""
    samples = [
        sample(0.0, "pg-1", "leader"),
        sample(0.0, "pg-2", "sync_standby"),
        sample(0.0, "pg-3", "replica"),
        sample(2.0, "pg-1", "unreachable", state="", timeline=None, in_recovery=None),
        sample(9.5, "pg-2", "leader", timeline=2),
        sample(12.0, "pg-1", "replica", timeline=2),
    ]
    assert leader_spans(reversed(samples)) == [("pg-1", 0.0, 2.0), ("pg-2", 9.5, None)]


def test_leader_spans_show_two_leaders_at_once() -> None:
    """Other stacks' words count too, and overlapping spans show a split brain."""
    samples = [
        sample(0.0, "a", "primary"),
        sample(3.0, "b", "primary"),
        sample(5.0, "a", "standby"),
        sample(6.0, "c", "standby_leader"),
    ]
    assert leader_spans(samples) == [("a", 0.0, 5.0), ("b", 3.0, None)]
    assert leader_spans([]) == []


def test_role_spans_merge_runs_of_one_class() -> None:
    """Samples of one class in a row make one span, even when other fields changed."""
    samples = [sample(0.0, lag_bytes=0), sample(1.0, lag_bytes=9 * MIB), sample(4.0, "pg-1", "x")]
    assert role_spans(samples, lambda s: s.role) == [
        ("pg-1", "replica", 0.0, 4.0),
        ("pg-1", "x", 4.0, None),
    ]


def test_wall_times_and_lsns_from_a_history() -> None:
    """Patroni's ISO times land on the monotonic clock; integer LSNs read as PostgreSQL's."""
    assert wall_to_monotonic("2027-01-15T08:00:12.5+00:00", ANCHOR) == pytest.approx(1012.5)
    assert wall_to_monotonic("2027-01-15T09:00:12.5+01:00", ANCHOR) == pytest.approx(1012.5)
    assert wall_to_monotonic(1_800_000_003.0, ANCHOR) == pytest.approx(1003.0)
    assert wall_to_monotonic(None, ANCHOR) is None
    with pytest.raises(ValueError, match="no UTC offset"):
        wall_to_monotonic("2027-01-15T08:00:12", ANCHOR)
    assert lsn_text(50331744) == "0/3000060"
    assert lsn_text((1 << 32) + 0xA0) == "1/A0"
    assert lsn_text("0/3000060") == "0/3000060"


# --- the sampler -------------------------------------------------------------------------


class FakeStack:
    """A stack whose leader moves from pg-1 to pg-2 after a few asks, and may fail asks."""

    def __init__(self, *, fail_every: int = 0, delay: float = 0.0) -> None:
        self.asks = 0
        self.fail_every = fail_every
        self.delay = delay
        self.running = 0
        self.most_running = 0
        self.lock = threading.Lock()

    def roles(self) -> list[RoleSample]:
        with self.lock:
            self.asks += 1
            ask = self.asks
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            if self.delay:
                timing.sleep(self.delay)
            if self.fail_every and ask % self.fail_every == 0:
                raise ConnectionError(f"refused on ask {ask}\nsecond line")
            leader = "pg-1" if ask < 4 else "pg-2"
            at = timing.monotonic()
            return [
                sample(at, "pg-1", "leader" if leader == "pg-1" else "replica"),
                sample(at, "pg-2", "leader" if leader == "pg-2" else "sync_standby"),
            ]
        finally:
            with self.lock:
                self.running -= 1


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = timing.monotonic() + timeout
    while not condition():
        assert timing.monotonic() < deadline, "condition not met in time"
        timing.sleep(0.01)


def test_sampler_records_the_failover_and_reads_history_at_stop() -> None:
    """The first ask ends before start() returns; changes are kept; history is read once."""
    rec = record()
    stack = FakeStack()
    reads: list[float] = []
    switch = TimelineSwitch(2, "0/3000060", None, "no recovery target specified", "pg-2")

    def history() -> list[TimelineSwitch]:
        reads.append(timing.monotonic())
        return [switch]

    sampler = RoleSampler(rec, stack.roles, interval=0.01, history=history, name="fake")
    sampler.start()
    assert len(rec.role_samples) == 2
    wait_for(lambda: stack.asks >= 8)
    sampler.stop()
    sampler.stop()
    asks = stack.asks
    timing.sleep(0.05)
    assert stack.asks == asks, "the thread stopped"
    assert len(reads) == 1
    assert rec.timeline_switches == (switch,)
    assert [(s.node, s.role) for s in rec.role_samples] == [
        ("pg-1", "leader"),
        ("pg-2", "sync_standby"),
        ("pg-1", "replica"),
        ("pg-2", "leader"),
    ]
    assert leader_spans(rec.role_samples)[0][0] == "pg-1"
    assert rec.notes == []


def test_sampler_notes_failures_and_keeps_sampling() -> None:
    """Failing asks are noted once and summed up at stop; neither they nor history raise."""
    rec = record()
    stack = FakeStack(fail_every=2)

    def history() -> list[TimelineSwitch]:
        raise OSError("no /history")

    sampler = RoleSampler(rec, stack.roles, interval=0.01, history=history, name="fake")
    sampler.start()
    wait_for(lambda: stack.asks >= 10)
    sampler.stop()
    assert sampler.failures >= 4 and sampler.asks >= 4
    assert rec.notes[0] == "fake role sample failed: ConnectionError: refused on ask 2"
    assert rec.notes[1].startswith(f"fake role sampler: {sampler.failures} of ")
    assert rec.notes[2] == "fake timeline history unread: OSError: no /history"
    assert any(s.role == "leader" and s.node == "pg-2" for s in rec.role_samples)


def test_a_slow_ask_delays_the_next_and_never_overlaps_it() -> None:
    """Asks slower than the interval run one after another."""
    rec = record()
    stack = FakeStack(delay=0.03)
    sampler = RoleSampler(rec, stack.roles, interval=0.001).start()
    wait_for(lambda: stack.asks >= 5)
    sampler.stop()
    assert stack.most_running == 1


def test_sampler_refuses_a_non_positive_interval() -> None:
    """An interval of zero would spin a core."""
    with pytest.raises(ValueError, match="interval must be positive"):
        RoleSampler(record(), list, interval=0)


# --- drill.json --------------------------------------------------------------------------


def drill_with_roles() -> Any:
    """A drill started at monotonic 1010 whose leader moved at 1019.5 to timeline 2."""
    rec = record()
    rec.started_at = 1010.0
    for item in (
        sample(1010.2, "pg-1", "leader", lag_bytes=None),
        sample(1010.2, "pg-2", "sync_standby"),
        sample(
            1012.0, "pg-1", "unreachable", state="", timeline=None, lag_bytes=None, in_recovery=None
        ),
        sample(1019.5, "pg-2", "leader", timeline=2, lag_bytes=None),
    ):
        rec.add_role_sample(item)
    rec.set_timeline_switches(
        [
            TimelineSwitch(2, "0/3000060", 1019.4, "no recovery target specified", "pg-2"),
            TimelineSwitch(3, "0/4000000", None, "", None),
        ]
    )
    return rec.result(Verdict.PASS, "ok", ended_at=1021.0)


def validate(entry: Any, definition: str = "drill") -> list[str]:
    schema = load_schema()
    validator = jsonschema.Draft202012Validator(
        {"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(entry)]


def test_json_roles_carry_offsets_from_the_drill_start() -> None:
    """Each sample and switch has an offset from the drill's start and an ISO time."""
    entry = drill_to_dict(drill_with_roles(), ANCHOR)
    assert entry["roles"][2] == {
        "offset_seconds": pytest.approx(2.0),
        "at": "2027-01-15T08:00:12.000000+00:00",
        "node": "pg-1",
        "role": "unreachable",
        "state": "",
        "timeline": None,
        "lag_bytes": None,
        "in_recovery": None,
        "source": "patroni /cluster",
    }
    assert [r["offset_seconds"] for r in entry["roles"]] == pytest.approx([0.2, 0.2, 2.0, 9.5])
    assert entry["timeline_switches"][0] == {
        "timeline": 2,
        "lsn": "0/3000060",
        "offset_seconds": pytest.approx(9.4),
        "at": "2027-01-15T08:00:19.400000+00:00",
        "reason": "no recovery target specified",
        "new_leader": "pg-2",
    }
    assert entry["timeline_switches"][1]["offset_seconds"] is None
    assert entry["timeline_switches"][1]["at"] is None
    assert validate(json.loads(json.dumps(entry))) == []


def test_schema_keeps_older_drills_valid_and_roles_strict() -> None:
    """A drill without the two fields validates; one without the other, or a bad sample, not."""
    entry = json.loads(json.dumps(drill_to_dict(drill_with_roles(), ANCHOR)))
    older = {k: v for k, v in entry.items() if k not in ("roles", "timeline_switches")}
    assert validate(older) == []
    assert validate({**older, "roles": entry["roles"]}) != []
    assert validate({**entry["roles"][0], "lag_bytes": -1}, "role_sample") != []
    assert validate({**entry["roles"][0], "extra": 1}, "role_sample") != []
    assert validate({**entry["timeline_switches"][0], "lsn": "3000060"}, "timeline_switch") != []


# --- the timeline plot -------------------------------------------------------------------


def plotted(roles: bool, *, switches: bool = True) -> tuple[dict[str, Any], str]:
    """The example's first drill, with the roles of :func:`drill_with_roles` when asked."""
    drill = copy.deepcopy(example()["drills"][0])
    add_timeline(drill)
    if roles:
        entry = drill_to_dict(drill_with_roles(), ANCHOR)
        drill["roles"] = entry["roles"]
        drill["timeline_switches"] = entry["timeline_switches"] if switches else []
    return drill, plots.timeline_svg(drill)


def test_timeline_draws_one_row_per_member_with_its_roles() -> None:
    """Members get rows in the events panel, leader and standby colours, and a legend."""
    _, svg = plotted(roles=True)
    assert ">role: pg-1<" in svg and ">role: pg-2<" in svg
    for label in ("HA leader", "synchronous standby", "member unreachable", "new timeline"):
        assert f">{label}<" in svg
    assert ">TL 2<" in svg
    # Timeline 3 has no time and no member was seen on it: no marker is invented.
    assert ">TL 3<" not in svg
    assert "#4a148c" in svg.lower() and "#9c6ac4" in svg.lower()
    assert "<pattern" in svg  # the unreachable span is hatched
    assert ">pg_is_in_recovery() false<" in svg


def test_members_lag_is_drawn_as_steps_in_the_bytes_panel() -> None:
    """A standby's reported lag joins the lag panel, even in a drill with no lag samples."""
    drill, svg = plotted(roles=True)
    assert ">pg-2 (patroni)<" in svg and "steps: HA stack" in svg
    drill["lag"] = []
    alone = plots.timeline_svg(drill)
    assert ">pg-2 (patroni)<" in alone
    assert "replication lag in bytes per HA member, as its HA stack reports it" in alone


def test_lag_segments_hold_each_value_until_the_next_change() -> None:
    """A segment holds its last value to where the lag became unknown, or to the end."""
    entries = [
        sample(0.0, "pg-2", "sync_standby", lag_bytes=0),
        sample(4.0, "pg-2", "sync_standby", lag_bytes=3 * MIB),
        sample(6.0, "pg-2", "unreachable", lag_bytes=None),
        sample(8.0, "pg-2", "replica", lag_bytes=MIB),
        sample(0.0, "pg-1", "leader", lag_bytes=0),
    ]
    drill = drill_to_dict(drill_with_roles(), ANCHOR)
    drill["roles"] = [
        {**drill["roles"][0], **{k: getattr(e, k) for k in ("node", "role", "lag_bytes")}}
        | {"offset_seconds": e.at}
        for e in entries
    ]
    assert RoleRows(drill, 10.0).lag == {
        "pg-2 (patroni)": [
            [(0.0, 0.0), (4.0, 3.0 * MIB), (6.0, 3.0 * MIB)],
            [(8.0, 1.0 * MIB), (10.0, 1.0 * MIB)],
        ]
    }


def test_timeline_without_roles_is_unchanged() -> None:
    """A drill with no role samples (no HA stack) draws no member rows and no role legend."""
    drill, svg = plotted(roles=False)
    assert "role: " not in svg and "HA leader" not in svg
    drill["roles"], drill["timeline_switches"] = [], []
    assert plots.timeline_svg(drill) == svg


def test_timeline_without_switches_draws_no_marker() -> None:
    """Roles alone are drawn without the timeline-switch legend entry."""
    _, svg = plotted(roles=True, switches=False)
    assert ">role: pg-2<" in svg and "new timeline" not in svg


def test_page_shows_member_rows_of_the_drill_that_has_them() -> None:
    """In a whole report only the drill with an HA stack gets member rows."""
    document = example()
    document["drills"] = document["drills"][:2]
    for drill in document["drills"]:
        add_timeline(drill)
    entry = drill_to_dict(drill_with_roles(), ANCHOR)
    document["drills"][0]["roles"] = entry["roles"]
    document["drills"][0]["timeline_switches"] = entry["timeline_switches"]
    page = render_html(document)
    assert page.count(">role: pg-2<") == 1
    facts = role_facts(document["drills"][0])
    assert facts == [
        ("HA leader", "pg-1 from 0.20s to 2.00s; pg-2 from 9.50s"),
        ("timeline switches", "timeline 2 at 9.40s (pg-2); timeline 3"),
    ]
    assert page.count("pg-1 from 0.20s to 2.00s; pg-2 from 9.50s") == 1
    assert role_facts(document["drills"][1]) == []


@pytest.mark.parametrize(
    ("role", "state", "drawn"),
    [
        ("leader", "running", "leader"),
        ("primary", "running", "leader"),
        ("sync_standby", "streaming", "sync"),
        ("replica", "running", "standby"),
        ("standby_leader", "running", "standby"),
        ("replica", "stopped", "down"),
        ("leader", "crashed", "down"),
        ("unreachable", "", "unreachable"),
    ],
)
def test_role_classes(role: str, state: str, drawn: str) -> None:
    """Each stack's words land in one of the drawn classes."""
    assert role_class(role, state) == drawn
