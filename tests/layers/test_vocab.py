"""The vocabulary (layers.vocab) and the database say the same words, and "open" and "overdue"
mean one thing in Python and SQL (migration 0015) without losing the partial index on open
issues."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from geo import assign, demo_issues
from layers.auth import scope
from layers.issues import lifecycle
from layers.supervision import orders
from layers.views import mapviews
from layers.vocab import (
    ACTIONS,
    AWAITING_UNIT_STATUSES,
    CAMPAIGN_ACTIONS,
    CLOSED_STATUSES,
    LEVELS,
    OPEN_STATUSES,
    ROLES,
    SOURCES,
    STATUSES,
    UNIT_KINDS,
)

Conn = psycopg.Connection[tuple[Any, ...]]


def _quoted(text: str) -> tuple[str, ...]:
    """The quoted words of a constraint or index definition, in order."""
    return tuple(re.findall(r"'([^']*)'::text", text))


def _check(conn: Conn, table: str, column: str) -> tuple[str, ...]:
    """The values of ``CHECK (column IN (...))`` on ``table``, as the database holds them."""
    row = conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype = 'c' AND conname = %s",
        [table, f"{table}_{column}_check"]).fetchone()
    assert row is not None, f"no CHECK on {table}.{column}"
    return _quoted(row[0])


@pytest.mark.parametrize(("table", "column", "words"), [
    ("issue", "status", STATUSES),
    ("issue", "source", SOURCES),
    ("jurisdiction", "level", LEVELS),
    ("api_token", "role", ROLES),
    ("unit", "kind", UNIT_KINDS),
    ("category", "campaign_action", CAMPAIGN_ACTIONS),
])
def test_vocabulary_equals_the_check_constraints(conn: Conn, table: str, column: str,
                                                 words: tuple[str, ...]) -> None:
    assert _check(conn, table, column) == words


def test_closed_statuses_are_those_that_carry_closed_at(conn: Conn) -> None:
    defs = [r[0] for r in conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'issue'::regclass AND contype = 'c'")
        if "closed_at IS NOT NULL" in r[0]]
    assert [_quoted(d) for d in defs] == [CLOSED_STATUSES]


@pytest.mark.parametrize("index", ["issue_open_deadline_idx", "issue_open_site_idx"])
def test_partial_index_covers_exactly_the_open_statuses(conn: Conn, index: str) -> None:
    row = conn.execute("SELECT pg_get_expr(indpred, indrelid) FROM pg_index"
                       " WHERE indexrelid = %s::regclass", [index]).fetchone()
    assert row is not None and _quoted(row[0].split(" AND ")[0]) == OPEN_STATUSES


def test_issue_is_open_agrees_with_open_statuses(conn: Conn) -> None:
    rows = conn.execute("SELECT s, issue_is_open(s) FROM unnest(%s::text[]) s",
                        [list(STATUSES)]).fetchall()
    assert tuple(s for s, is_open in rows if is_open) == OPEN_STATUSES
    assert all(is_open is not None for _, is_open in rows)


def test_the_statuses_split_into_open_and_closed() -> None:
    assert set(OPEN_STATUSES) | set(CLOSED_STATUSES) == set(STATUSES)
    assert not set(OPEN_STATUSES) & set(CLOSED_STATUSES)
    assert set(AWAITING_UNIT_STATUSES) < set(OPEN_STATUSES)


def test_every_lifecycle_action_has_one_rule() -> None:
    assert tuple(lifecycle.RULES) == ACTIONS


def test_the_demo_generator_uses_the_vocabulary() -> None:
    # geo imports nothing of ours, so the demo states its lists itself.
    assert demo_issues.STATUSES == STATUSES
    assert demo_issues.SOURCES == SOURCES


def test_the_assignment_engine_ranks_the_levels_in_the_vocabulary_order() -> None:
    # geo imports nothing of ours: its finest-first ranks must be LEVELS read backwards.
    assert sorted(assign.LEVEL_RANK, key=assign.LEVEL_RANK.__getitem__) == list(LEVELS[::-1])


NOW = datetime.fromisoformat("2026-11-20T10:00:00+08:00")
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("status", "deadline_in", "closed_in", "overdue", "ran_past", "light"),
    [
        ("assigned", -HOUR, None, True, True, "red"),
        ("rectified", -HOUR, None, True, True, "red"),
        ("reported", HOUR, None, False, False, "yellow"),
        ("assigned", 20 * HOUR, None, False, False, "green"),
        ("assigned", None, None, False, False, None),
        # Closed late: not overdue any more, but it ran past its deadline (points lost).
        ("verified", -2 * HOUR, -HOUR, False, True, None),
        ("verified", -HOUR, -2 * HOUR, False, False, None),
    ],
)
def test_overdue_and_ran_past_deadline_are_two_rules(
        conn: Conn, status: str, deadline_in: timedelta | None, closed_in: timedelta | None,
        overdue: bool, ran_past: bool, light: str | None) -> None:
    row = conn.execute(
        "SELECT issue_is_overdue(%(s)s, %(now)s + %(d)s::interval, %(now)s),"
        " issue_ran_past_deadline(%(now)s + %(d)s::interval, %(now)s + %(c)s::interval,"
        "                         %(now)s)",
        {"s": status, "d": deadline_in, "c": closed_in, "now": NOW}).fetchone()
    assert row == (overdue, ran_past)
    # The traffic light reads the clock; its red is exactly "overdue now".
    row = conn.execute(
        "SELECT issue_traffic_light(%(s)s, now() - interval '10 hours', now() + %(d)s::interval),"
        " issue_is_overdue(%(s)s, now() + %(d)s::interval, now())",
        {"s": status, "d": deadline_in}).fetchone()
    assert row == (light, overdue)


def _index_family(conn: Conn, name: str) -> set[str]:
    """An index of the partitioned issue table and its copies on every month (migration
    0030): the plan names the partitions' indexes."""
    rows = conn.execute("""
        WITH RECURSIVE family AS (
            SELECT %s::regclass::oid AS oid
            UNION ALL
            SELECT i.inhrelid FROM pg_inherits i JOIN family f ON i.inhparent = f.oid)
        SELECT oid::regclass::text FROM family""", [name]).fetchall()
    return {str(r[0]) for r in rows}


def _uses_open_index(conn: Conn, query: str, params: dict[str, Any] | None = None) -> bool:
    row = conn.execute("EXPLAIN (FORMAT JSON) " + query, params).fetchone()
    assert row is not None
    plan = json.dumps(row[0])
    return any(f'"{name}"' in plan for name in _index_family(conn, "issue_open_deadline_idx"))


def test_open_and_overdue_queries_still_read_the_partial_index(demo_dsn: str) -> None:
    # The functions are inlined (SQL, immutable, not strict): the planner sees the open
    # statuses and proves the index predicate. Made STRICT, volatile or plpgsql, they would be
    # opaque calls and every query below would scan the whole table (60 of 3000 demo issues
    # are open).
    with psycopg.connect(demo_dsn, autocommit=True) as conn:
        conn.execute("ANALYZE issue")
        assert _uses_open_index(conn, "SELECT count(*) FROM issue i"
                                      " WHERE issue_is_overdue(i.status, i.deadline, now())")
        assert _uses_open_index(conn, "SELECT count(*) FROM issue i"
                                      " WHERE issue_is_open(i.status)")
        # The escalation job (hourly from cron) and the hand-over of new issues.
        params = {"unit": None, "awaiting": list(AWAITING_UNIT_STATUSES)}
        assert _uses_open_index(conn, orders._OVERDUE, params)
        assert _uses_open_index(conn, orders._NEW_OPEN, params)


def test_the_sites_open_work_is_read_from_its_own_index_alone(demo_dsn: str) -> None:
    # Every map page draws each site's open and overdue issues (mapviews.site_status); at
    # the 10M demo's 154,000 open issues, fetching their rows took 0.65 s, the index alone
    # 38 ms (migration 0029).
    # The demo's months hold a few hundred issues each, which the planner scans rather than
    # index: with scans off, the plan shows whether the index alone can answer.
    with psycopg.connect(demo_dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE issue")
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_bitmapscan = off")
        row = conn.execute("EXPLAIN (FORMAT JSON) " + mapviews.OPEN_BY_SITE).fetchone()
        family = _index_family(conn, "issue_open_site_idx")
        # A street's map: its policy (street_id) is checked in the index too (0033).
        street = conn.execute("SELECT id FROM jurisdiction WHERE level = 'street'"
                              " LIMIT 1").fetchone()
        assert street is not None
        scope.enter(conn, int(street[0]))
        scoped = conn.execute("EXPLAIN (FORMAT JSON) " + mapviews.OPEN_BY_SITE).fetchone()
        scope.reset(conn)
    for found in (row, scoped):
        assert found is not None
        plan = json.dumps(found[0])
        assert "Index Only Scan" in plan and any(f'"{name}"' in plan for name in family)
