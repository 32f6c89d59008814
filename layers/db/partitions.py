"""Monthly partitions of ``issue`` and ``issue_event`` (migration 0030).

A month is a local month in the district's time zone (the session's TimeZone). The months are
contiguous, between two open-ended partitions (``issue_before``, ``issue_after`` and the same
of ``issue_event``) that take the rows of a month that has no partition; :func:`ensure` creates
the months of a period (moving what the ends hold of them), and the worker's ``partitions`` job
keeps the coming months created so that new reports never wait there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

#: The condition finding one issue (alias ``i``) by its public id (the one parameter) through
#: issue_key: the executor then reads the one partition holding it, not every month's index.
ISSUE_BY_PUBLIC_ID = sql.SQL("(i.public_id, i.reported_at) = (SELECT k.public_id,"
                             " k.reported_at FROM issue_key k WHERE k.public_id = %s)")

# Months the worker keeps created ahead of now: a stopped worker has this long before new
# reports start landing in the default partitions (where they still work, only unpruned).
AHEAD_MONTHS = 3
# How long the partitions job waits for the issue tables (adding a month holds them
# exclusively for an instant): past it the job fails and tries again the next day.
LOCK_TIMEOUT = "10s"


@dataclass(frozen=True)
class Month:
    """One monthly partition of the issue table, with its bounds and its rows (estimate)."""

    name: str
    lower: datetime
    upper: datetime
    rows: int


def ensure(conn: psycopg.Connection[Any], start: datetime, end: datetime) -> int:
    """Create every month from the months there are to ``start``'s and ``end``'s (the months
    stay contiguous; at most ten years before and five after now: rows further out wait in the
    end partitions, read as any other); the number created. Rows of those months waiting in the
    end partitions move in.
    """
    if end < start:
        raise ValueError("end before start")
    row = conn.execute("SELECT issue_month_partitions(%s, %s)", [start, end]).fetchone()
    assert row is not None
    return int(row[0])


def ensure_for_rows(conn: psycopg.Connection[Any], table: str, column: str) -> int:
    """Create the months a (temporary) table's ``column`` of instants spans: bulk loaders
    call it with their staging table before moving the rows in. ``table`` and ``column`` are
    identifiers of the caller's own code, never user input."""
    row = conn.execute(sql.SQL("SELECT min({c}), max({c}) FROM {t}").format(
        c=sql.Identifier(column), t=sql.Identifier(table))).fetchone()
    if row is None or row[0] is None:
        return 0
    return ensure(conn, row[0], row[1])


def months(conn: psycopg.Connection[Any]) -> list[Month]:
    """The monthly partitions of ``issue``, oldest first (rows as the planner estimates)."""
    with conn.cursor(row_factory=class_row(Month)) as cur:
        return cur.execute(
            """
            SELECT c.relname AS name,
                   (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz AS lower,
                   (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                 'TO \\(''([^'']+)''\\)'))[1]::timestamptz AS upper,
                   greatest(c.reltuples, 0)::bigint AS rows
            FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
            WHERE h.inhparent = 'issue'::regclass
              AND c.relname NOT IN ('issue_before', 'issue_after')
            ORDER BY 2
            """).fetchall()


def outside_months(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Issues and events waiting in the end partitions (their months not created)."""
    row = conn.execute("SELECT (SELECT count(*) FROM issue_before)"
                       " + (SELECT count(*) FROM issue_after),"
                       " (SELECT count(*) FROM issue_event_before)"
                       " + (SELECT count(*) FROM issue_event_after)").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def keep_ahead(conn: psycopg.Connection[Any], now: datetime,
               ahead: int = AHEAD_MONTHS) -> int:
    """Create this month and the next ``ahead`` (the worker's job); the number created."""
    conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    row = conn.execute("SELECT %s::timestamptz + make_interval(months => %s)",
                       [now, ahead]).fetchone()
    assert row is not None
    return ensure(conn, now, row[0])
