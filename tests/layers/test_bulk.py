"""Bulk write mode (layers.db.bulk) gives every partition its indexes back."""

from __future__ import annotations

from typing import Any

import psycopg

from layers.db.bulk import bulk_write_mode

# Each index of each partition of a table, with its parent index (NULL: not attached).
PARTITION_INDEXES = """
SELECT c.relname, count(*) FROM pg_inherits p
JOIN pg_class c ON c.oid = p.inhrelid
JOIN pg_index i ON i.indrelid = p.inhrelid
WHERE p.inhparent = %s::regclass GROUP BY c.relname ORDER BY c.relname"""


def _valid_parent_indexes(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute("SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass"
                       " AND indisvalid", [table]).fetchone()
    assert row is not None
    return int(row[0])


def test_partitions_keep_their_indexes(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT issue_month_partitions(%s::timestamptz, %s::timestamptz)",
                     ["2026-01-01T00:00:00+08:00", "2026-03-01T00:00:00+08:00"])
        before = conn.execute(PARTITION_INDEXES, ["issue"]).fetchall()
        parent = _valid_parent_indexes(conn, "issue")
        assert len(before) >= 3 and all(n > 1 for _, n in before), before
        with bulk_write_mode(conn, ["issue", "issue_event"]):
            dropped = conn.execute(PARTITION_INDEXES, ["issue"]).fetchall()
        after = conn.execute(PARTITION_INDEXES, ["issue"]).fetchall()
        assert dropped != before  # the mode did drop them
        assert after == before
        assert _valid_parent_indexes(conn, "issue") == parent
