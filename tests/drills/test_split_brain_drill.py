"""Real drills judged by the split-brain watcher: an unfenced promotion goes red, a fenced one not.

The fault cuts the clients' path to the primary: the monitor sees it dead and fails over,
while the server itself runs on, writable to anyone who reaches it directly. A failover
that promotes the synchronous standby without fencing it leaves two writable primaries,
which the watcher (asking every server directly, never through the fault proxy) must
catch; the reference failover fences (kills) the old primary first and must not be flagged.
"""

from __future__ import annotations

import json

import pytest

UNFENCED_FAILOVER = """
import psycopg
import pytest


class _PromotesWithoutFencing:
    \"\"\"Broken on purpose: promotes the sync standby and leaves the old primary running.\"\"\"

    @pytest.hookimpl(tryfirst=True)
    def pytest_drdrill_failover(self, service, topology, record, detection):
        if service != "postgres":
            return None
        new = topology.pg_nodes["pg-sync"]
        with record.phase("promotion") as note:
            with psycopg.connect(new.dsn(), autocommit=True) as conn:
                conn.execute("SELECT pg_promote(true)")
            note.detail = f"{new.name} promoted; {detection.node} NOT fenced (split brain)"
        with record.phase("repoint"):
            topology.pg_endpoint.repoint(new)
        return new.name


@pytest.fixture
def unfenced_failover(pytestconfig):
    plugin = _PromotesWithoutFencing()
    pytestconfig.pluginmanager.register(plugin, "drdrill-unfenced-failover")
    yield plugin
    pytestconfig.pluginmanager.unregister(plugin)
"""

DRILLS = """
import pytest


def _cut_clients_from_the_primary(drdrill):
    with drdrill.running():
        topology = drdrill.topology
        drdrill.faults.cut(topology.client_paths[topology.primary.name])
        drdrill.await_recovery()
        # The old primary is alive: let the watcher see both writable for a while.
        drdrill.workload.wait_for_acks(20)
    return drdrill.conclude()


@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", scenario="unfenced",
                     negative_control=True, observe=10)
def test_unfenced(unfenced_failover, drdrill):
    _cut_clients_from_the_primary(drdrill)


@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", scenario="fenced", observe=10)
def test_fenced(drdrill):
    _cut_clients_from_the_primary(drdrill)
"""


def _drills(pytester: pytest.Pytester) -> dict[str, dict]:
    (report,) = (pytester.path / "reports").glob("*/drill.json")
    return {d["scenario"]: d for d in json.loads(report.read_text())["drills"]}


def test_unfenced_promotion_is_red_with_evidence_and_the_reference_is_not(pytester, drill_args):
    """Promotion without fencing fails on split brain, naming both servers; fencing does not."""
    pytester.makeconftest(UNFENCED_FAILOVER)
    pytester.makepyfile(test_split=DRILLS)
    result = pytester.runpytest(*drill_args)
    result.assert_outcomes(passed=2)
    drills = _drills(pytester)

    unfenced = drills["unfenced"]
    assert unfenced["verdict"] == "fail"
    assert unfenced["reason"].startswith(
        "split brain: pg-primary and pg-sync both accepted writes from +"
    ), unfenced["reason"]
    assert "after the fault (link-cut of clients -> pg-primary)" in unfenced["reason"]
    (overlap,) = unfenced["split_brain"]["overlaps"]
    assert {overlap["first"], overlap["second"]} == {"pg-primary", "pg-sync"}
    assert overlap["after_fault_seconds"] > 0 and overlap["seconds"] > 0.2
    assert min(overlap["first_answers"], overlap["second_answers"]) >= 3

    fenced = drills["fenced"]
    assert fenced["verdict"] in ("pass", "warn"), fenced["reason"]
    assert "split brain" not in fenced["reason"]
    assert fenced["split_brain"]["overlaps"] == []
    assert fenced["split_brain"]["error"] is None
    for drill in (unfenced, fenced):
        polls = {s["node"]: s["polls"] for s in drill["split_brain"]["servers"]}
        assert set(polls) == {"pg-primary", "pg-sync", "pg-sync2", "pg-read", "pg-dr"}
        # Every server asked at its own address, none through a fault-proxy path.
        assert drill["split_brain"]["unwatched"] == []
        # Ten polls a second from steady state to the end, on every server: proof it ran
        # throughout (a loaded run of the quick fenced drill got 15 each).
        assert min(polls.values()) >= 10, polls
