"""HA roles sampled from a real Patroni cluster through a node loss, recorded and reported.

Heavy (about 35 s): run it under ``flock /tmp/drdrill-heavy.lock``. Skipped when Debian's
patroni, etcd-server or haproxy are missing, unless ``DRDRILL_REQUIRE_PATRONI=1`` (CI).
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from pytest_drdrill import timing
from pytest_drdrill.errors import ExecutableMissing
from pytest_drdrill.ha.patroni import PatroniHA
from pytest_drdrill.measure.roles import RoleSampler, leader_spans
from pytest_drdrill.record import DrillRecord
from pytest_drdrill.reporting import drill_to_dict, load_schema, plots
from pytest_drdrill.results import RoleSample, Verdict
from pytest_drdrill.topology.local import LocalBackend
from pytest_drdrill.topology.patroni_topology import PatroniTopology

REQUIRE_ENV = "DRDRILL_REQUIRE_PATRONI"


@pytest.fixture(scope="module")
def patroni(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[PatroniHA, PatroniTopology]]:
    ha = PatroniHA()
    try:
        ha.executables  # noqa: B018 -- finds patroni, etcd and haproxy or says how to install them
    except ExecutableMissing as exc:
        message = f"Patroni drills need patroni, etcd and haproxy (run scripts/bootstrap): {exc}"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(message)
        pytest.skip(message)
    backend = LocalBackend(tmp_path_factory.mktemp("backend")).start()
    try:
        topo = ha.topology(backend, tmp_path_factory.mktemp("topology"))
        assert isinstance(topo, PatroniTopology)
        try:
            yield ha, topo
        finally:
            topo.close()
    finally:
        backend.close()


def test_roles_through_a_node_loss(
    patroni: tuple[PatroniHA, PatroniTopology], record_property: pytest.RecordProperty
) -> None:
    """Who led when, the new timeline and the members' answers land in the record and report."""
    ha, topo = patroni
    record = DrillRecord(
        "roles", scenario="patroni-roles", cadence="daily", target=None, backend="local"
    )
    anchor = timing.anchor()
    asks: list[float] = []

    def sample() -> list[RoleSample]:
        started = timing.monotonic()
        try:
            return list(ha.roles(topo))
        finally:
            asks.append(timing.monotonic() - started)

    sampler = RoleSampler(
        record, sample, interval=0.1, history=lambda: ha.history(topo), name="patroni"
    ).start()
    try:
        old = topo.primary.name
        first = {s.node: s for s in record.role_samples}
        assert first[old].role == "leader" and first[old].in_recovery is False
        assert all(s.in_recovery is True for n, s in first.items() if n != old)
        timing.sleep(1.0)
        fault = record.fault_injected("crash", old, timing.monotonic())
        topo.pg_nodes[old].crash()
        deadline = timing.monotonic() + 60
        while topo.primary.name == old:
            assert timing.monotonic() < deadline, "Patroni elected no new leader in 60 s"
            timing.sleep(0.1)
        new = topo.primary.name
        # Patroni writes the switch into /history on a later turn of its loop.
        while not any(row[0] == 1 for row in ha.history_rows(topo)):
            assert timing.monotonic() < deadline, "Patroni's /history never showed the switch"
            timing.sleep(0.2)
        timing.sleep(1.0)
        record.fault_healed(fault, timing.monotonic())
    finally:
        sampler.stop()
    result = record.result(Verdict.PASS, "roles recorded", fault=record.faults[0])
    injected = record.faults[0].injected_at

    spans = leader_spans(result.roles)
    assert [node for node, _, _ in spans] == [old, new]
    assert spans[0][2] is not None and spans[0][2] > injected
    assert spans[1][1] >= spans[0][2] and spans[1][2] is None
    latest = {s.node: s for s in result.roles}
    assert latest[new].in_recovery is False and latest[new].timeline == 2
    assert latest[old].role == "unreachable" or latest[old].in_recovery is None
    # Ten asks a second, each of three members: only the changes are kept.
    assert len(result.roles) * 10 < 3 * len(asks)
    switch = next(s for s in result.timeline_switches if s.timeline == 2)
    assert switch.new_leader == new
    assert switch.at is not None and injected < switch.at < timing.monotonic()
    assert sampler.failures == 0 and record.notes == []

    entry = json.loads(json.dumps(drill_to_dict(result, anchor)))
    schema = load_schema()
    jsonschema.validate(entry, {"$defs": schema["$defs"], "$ref": "#/$defs/drill"})
    svg = plots.timeline_svg(entry)
    assert f">role: {old}<" in svg and f">role: {new}<" in svg and ">TL 2<" in svg
    record_property("role_ask_median_s", round(statistics.median(asks), 4))
    record_property("role_samples_kept", f"{len(result.roles)} of {3 * len(asks)}")
    print(
        f"asks {len(asks)} median {statistics.median(asks) * 1000:.1f} ms "
        f"max {max(asks) * 1000:.1f} ms; kept {len(result.roles)}; leaders {spans}"
    )
    Path(os.environ.get("DRDRILL_ROLES_SVG", os.devnull)).write_text(svg)
