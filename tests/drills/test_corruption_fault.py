"""The corrupted-data-directory fault really leaves a server that cannot serve its table."""

from __future__ import annotations

import psycopg
import pytest

from pytest_drdrill.errors import TopologyError
from pytest_drdrill.faults.data import CorruptDataDirectory
from pytest_drdrill.measure.history import History
from pytest_drdrill.measure.workload import Workload


def test_corrupted_primary_cannot_serve_its_ledger_after_a_restart(topology):
    """After the fault the server is down, and started again it cannot read the table."""
    _, topo = topology
    primary = topo.primary
    workload = Workload(topo.pg_endpoint.dsn(app="corruption-test"), History()).start()
    try:
        assert workload.wait_for_acks(50)
    finally:
        workload.stop()
    with psycopg.connect(primary.dsn(), autocommit=True) as conn:
        conn.execute("CHECKPOINT")  # the table's pages are on disk, as in a long-running server
    fault = CorruptDataDirectory(primary)
    fault.inject()
    assert not primary.is_running()
    assert fault.damaged is not None and fault.damaged.startswith(str(primary.datadir))
    try:
        primary.start(timeout=20)
    except TopologyError:
        return  # refusing to start is one honest outcome of the damage
    with (
        pytest.raises(psycopg.Error, match="invalid page|could not read block"),
        psycopg.connect(primary.dsn()) as conn,
    ):
        conn.execute("SELECT count(*), max(id) FROM drdrill_ledger").fetchone()


def test_a_bad_table_name_is_refused_before_anything_happens(topology):
    """A table name that is not a plain identifier is refused at construction."""
    _, topo = topology
    with pytest.raises(ValueError, match="plain SQL identifier"):
        CorruptDataDirectory(topo.primary, "ledger; DROP TABLE x")
