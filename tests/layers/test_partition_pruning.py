"""Period queries and look-ups read only the partitions they need (migration 0030).

What a query touched is read from PostgreSQL's own per-table scan counters (seq_scan +
idx_scan of each partition, pg_stat_user_tables) around a call of the real layer function:
the test follows the code's SQL whatever it becomes, and fails when a change loses pruning
(a period filter dropped, a look-up that probes every month's index again). The plans are
shown too (EXPLAIN of the issues list), for a reader who wants to see the pruning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest

from geo.hotspots.budget import Limits
from layers.db import partitions
from layers.io import exports
from layers.issues import records
from layers.supervision import accountability, handovers, scores
from layers.views import features

PARTITION = r"^issue_(event_)?(y\d{4}m\d{2}|before|after)$"


@pytest.fixture(scope="module")
def db(module_demo_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """Autocommit: each call's statements end before the counters are read."""
    with psycopg.connect(module_demo_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def busiest(db: psycopg.Connection[Any]) -> partitions.Month:
    """The demo's month with the most issues."""
    db.execute("ANALYZE issue")
    return max(partitions.months(db), key=lambda m: m.rows)


def _scans(conn: psycopg.Connection[Any]) -> dict[str, int]:
    # Statistics reach the shared counters when a session goes idle; this forces it now.
    conn.execute("SELECT pg_stat_force_next_flush()")
    return dict(conn.execute(
        "SELECT relname, seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables"
        " WHERE relname ~ %s", [PARTITION]).fetchall())


def touched(conn: psycopg.Connection[Any], run: Callable[[], object]) -> set[str]:
    """The partitions of issue and issue_event that ``run`` scanned."""
    before = _scans(conn)
    run()
    after = _scans(conn)
    return {name for name, n in after.items() if n != before.get(name, 0)}


def _issue_months(names: set[str]) -> set[str]:
    return {n for n in names if n.startswith("issue_y") or n in ("issue_before", "issue_after")}


def test_the_demo_fills_its_months_not_the_end_partitions(
        db: psycopg.Connection[Any]) -> None:
    assert partitions.outside_months(db) == (0, 0)
    assert len(partitions.months(db)) >= 6


def test_the_issues_list_of_a_month_reads_that_month_only(
        db: psycopg.Connection[Any], busiest: partitions.Month) -> None:
    found: list[int] = []
    month = touched(db, lambda: found.append(records.list_issues(db, records.IssueFilter(
        since=busiest.lower, until=busiest.upper))[1]))
    assert found[0] > 0
    assert _issue_months(month) == {busiest.name}
    everything = touched(db, lambda: records.list_issues(db, records.IssueFilter()))
    assert len(_issue_months(everything)) > 1  # the counters see what an unbounded list reads
    plan = "\n".join(r[0] for r in db.execute(
        "EXPLAIN SELECT count(*) FROM issue WHERE reported_at >= %s AND reported_at < %s",
        [busiest.lower, busiest.upper]).fetchall())
    assert busiest.name in plan
    assert "issue_before" not in plan and "issue_after" not in plan
    assert plan.count("issue_y") == plan.count(busiest.name)


def test_ogc_items_of_a_period_read_its_months_only(
        db: psycopg.Connection[Any], busiest: partitions.Month) -> None:
    issues = features.collection(db, "issues")
    # OGC's interval is closed: the last microsecond of the month.
    query = features.Query(limit=50, since=busiest.lower,
                           until=busiest.upper.replace(microsecond=0) - _US)
    assert _issue_months(touched(db, lambda: features.items(db, issues, query))) \
        == {busiest.name}


def test_period_analyses_read_their_months_only(
        db: psycopg.Connection[Any], busiest: partitions.Month) -> None:
    unit = db.execute("SELECT u.code FROM issue i JOIN unit u ON u.id = i.lead_unit_id"
                      " WHERE i.reported_at >= %s AND i.reported_at < %s LIMIT 1",
                      [busiest.lower, busiest.upper]).fetchone()
    assert unit is not None
    period = {"since": busiest.lower, "until": busiest.upper}
    for run in (lambda: handovers.matrix(db, **period),
                lambda: accountability.register(db, unit[0], **period, max_entries=10**6),
                lambda: scores.check_budget(db, **period, limit=Limits())):
        assert _issue_months(touched(db, run)) == {busiest.name}


def test_a_look_up_by_public_id_reads_one_partition(
        db: psycopg.Connection[Any], busiest: partitions.Month) -> None:
    row = db.execute("SELECT public_id FROM issue WHERE reported_at >= %s AND reported_at < %s"
                     " LIMIT 1", [busiest.lower, busiest.upper]).fetchone()
    assert row is not None
    assert _issue_months(touched(db, lambda: records.get(db, row[0]))) == {busiest.name}
    assert _issue_months(touched(db, lambda: records.events(db, row[0]))) == {busiest.name}


def test_the_last_issue_before_a_day_is_read_from_the_nearest_month(
        db: psycopg.Connection[Any], busiest: partitions.Month) -> None:
    # Months in order (no DEFAULT partition): "the latest issue before" (the tallies' site
    # recount, the newest page of the list) reads back from the nearest month and stops,
    # instead of opening every month (a Merge Append). Index paths forced: the demo's months
    # are small enough for the planner to read them whole, the 1M-issue archive's are not.
    # The plan's own account this time: the planner probes indexes for their ends, which the
    # scan counters would count.
    filled = [m for m in partitions.months(db) if m.rows > 0]
    middle = filled[len(filled) // 2]
    db.execute("SET enable_seqscan = off")
    db.execute("SET enable_sort = off")
    try:
        plan = [r[0] for r in db.execute(
            "EXPLAIN (ANALYZE, COSTS OFF) SELECT reported_at FROM issue"
            " WHERE reported_at < %s ORDER BY reported_at DESC, id DESC LIMIT 1",
            [middle.upper]).fetchall()]
    finally:
        db.execute("RESET enable_seqscan")
        db.execute("RESET enable_sort")
    assert not any("Merge Append" in line for line in plan)
    read = {m[1] for line in plan if "never executed" not in line
            for m in [re.search(r" on (issue_\w+) ", line)] if m}
    planned = {m[1] for line in plan for m in [re.search(r" on (issue_\w+) ", line)] if m}
    assert read == {middle.name}
    assert len(planned) > 2  # the earlier months were there to read, and were not


def test_an_export_reads_every_month(db: psycopg.Connection[Any], tmp_path: Any) -> None:
    # The other side of the counters: a whole-archive export must read every month.
    names = touched(db, lambda: exports.extract(db, "issues", tmp_path, fmt="csv"))
    assert _issue_months(names) >= {m.name for m in partitions.months(db) if m.rows > 0}


_US = datetime.resolution
