"""pg_auto_failover's settle(): the drill's final read waits while two keepers are writable.

No server here: each keeper's ``pg_is_in_recovery()`` answers are scripted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_drdrill.ha import pg_auto_failover
from pytest_drdrill.ha.pg_auto_failover import AutofailoverHA
from pytest_drdrill.topology.autofailover_topology import AutofailoverTopology


class _Keeper:
    def __init__(self, name: str) -> None:
        self.name = name

    def dsn(self, *, app: str = "drdrill") -> str:
        return self.name


def _topology(tmp_path: Path) -> AutofailoverTopology:
    topology = AutofailoverTopology(tmp_path, tmp_path, proxy=None)  # type: ignore[arg-type]
    topology.pg_nodes = {n: _Keeper(n) for n in ("pg-primary", "pg-sync", "pg-dr")}  # type: ignore[misc]
    topology._primary = "pg-sync"
    return topology


def _script(monkeypatch: pytest.MonkeyPatch, rounds: list[dict[str, bool | None]]) -> None:
    """Each poll round answers from the next dict; the last one repeats."""
    asked: list[str] = []

    def in_recovery(dsn: str) -> bool | None:
        asked.append(dsn)
        index = min((len(asked) - 1) // 3, len(rounds) - 1)
        return rounds[index][dsn]

    monkeypatch.setattr(pg_auto_failover, "_in_recovery", in_recovery)
    monkeypatch.setattr(pg_auto_failover.timing, "sleep", lambda seconds: None)


def test_a_thawed_old_primary_is_waited_out_and_named(tmp_path, monkeypatch) -> None:
    _script(
        monkeypatch,
        [
            {"pg-primary": False, "pg-sync": False, "pg-dr": True},
            {"pg-primary": False, "pg-sync": False, "pg-dr": True},
            {"pg-primary": None, "pg-sync": False, "pg-dr": True},
        ],
    )
    note = AutofailoverHA().settle(_topology(tmp_path), timeout=30)
    assert note is not None
    assert note.startswith(
        "pg_auto_failover settled: pg-primary, pg-sync answered writable at once"
    )
    assert "until only pg-sync was" in note


def test_one_writable_keeper_needs_no_wait(tmp_path, monkeypatch) -> None:
    # A DR node promoted by the region failover beside dead keepers is not stale.
    _script(monkeypatch, [{"pg-primary": None, "pg-sync": None, "pg-dr": False}])
    assert AutofailoverHA().settle(_topology(tmp_path), timeout=30) is None


def test_two_writable_keepers_that_stay_so_are_reported_unsettled(tmp_path, monkeypatch) -> None:
    _script(monkeypatch, [{"pg-primary": False, "pg-sync": False, "pg-dr": True}])
    note = AutofailoverHA().settle(_topology(tmp_path), timeout=0)
    assert note is not None
    assert "did not settle within 0 s" in note and "pg-primary, pg-sync all still writable" in note
