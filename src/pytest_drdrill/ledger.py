"""The ledger: where the workload records each acknowledged write, in every service.

A drill counts lost writes by comparing the ids the workload saw acknowledged with the
ids a node still holds afterwards. Topology builds the ledger (the tables in the session's
template cluster, an empty Redis key, a bucket), measure/ writes and reads it, recovery/
validates a promoted node through it, and faults/ damage it; all of them name it here.
"""

from __future__ import annotations

#: PostgreSQL table with one row per acknowledged write.
LEDGER_TABLE = "drdrill_ledger"
#: PostgreSQL table a recovery writes a token to, to prove the promoted node takes writes.
VALIDATION_TABLE = "drdrill_validation"

#: The tables, created once in the template cluster every local node is copied from.
LEDGER_DDL = f"""
CREATE TABLE {LEDGER_TABLE} (
    id bigint PRIMARY KEY,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE {VALIDATION_TABLE} (
    token text PRIMARY KEY,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""

#: One acknowledged write.
INSERT_ID = f"INSERT INTO {LEDGER_TABLE} (id) VALUES (%s)"
#: Every id a node holds.
SELECT_IDS = f"SELECT id FROM {LEDGER_TABLE}"

#: Redis set with one member per acknowledged write.
LEDGER_KEY = "drdrill:ledger"

#: Key prefix of the objects the S3 ledger writes, one per acknowledged write.
OBJECT_PREFIX = "drdrill-ledger/"
