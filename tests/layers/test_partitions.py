"""Monthly partitions of issue and issue_event (migration 0030): keys stay unique across
months, rows find their month (or the default partition, until their month is created),
the audit trail stays append-only in every partition, and the worker keeps months ahead."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from layers.db import partitions
from layers.db.settings import Settings
from layers.worker import jobs

ZONE = Settings().zone
INSERT = ("INSERT INTO issue (category_code, geom, description, source, reported_at)"
          " VALUES ('CMP-03', ST_SetSRID(ST_MakePoint(120.7, 31.3), 4326), 'x', 'citizen', %s)"
          " RETURNING id, public_id")


def _where(conn: psycopg.Connection[Any], table: str, key: str, value: object) -> str:
    row = conn.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE {key} = %s",
                       [value]).fetchone()
    assert row is not None
    return str(row[0])


def _report(conn: psycopg.Connection[Any], at: datetime) -> tuple[int, str]:
    row = conn.execute(INSERT, [at]).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def test_every_issue_has_its_key_and_public_ids_stay_unique_across_months(
        db: psycopg.Connection[Any]) -> None:
    partitions.ensure(db, datetime(2025, 1, 1, tzinfo=ZONE), datetime(2025, 3, 1, tzinfo=ZONE))
    issue, public_id = _report(db, datetime(2025, 1, 10, tzinfo=ZONE))
    assert _where(db, "issue", "id", issue) == "issue_y2025m01"
    assert db.execute("SELECT public_id, reported_at FROM issue_key WHERE id = %s",
                      [issue]).fetchone() == (public_id, datetime(2025, 1, 10, tzinfo=ZONE))
    # Another month's partition has no index that could see the first public id: the key does.
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute("INSERT INTO issue (public_id, category_code, geom, description, source,"
                   " reported_at) VALUES (%s, 'CMP-03', ST_SetSRID(ST_MakePoint(120.7, 31.3),"
                   " 4326), 'x', 'citizen', %s)", [public_id, datetime(2025, 2, 10, tzinfo=ZONE)])
    # Moved to another month (a corrected report time): the row changes partition, the key
    # follows and stays one.
    db.execute("UPDATE issue SET reported_at = %s WHERE id = %s",
               [datetime(2025, 3, 5, tzinfo=ZONE), issue])
    assert _where(db, "issue", "id", issue) == "issue_y2025m03"
    assert db.execute("SELECT count(*), max(reported_at) FROM issue_key WHERE id = %s",
                      [issue]).fetchone() == (1, datetime(2025, 3, 5, tzinfo=ZONE))
    db.execute("UPDATE issue SET public_id = 'SWX1' WHERE id = %s", [issue])
    assert db.execute("SELECT public_id FROM issue_key WHERE id = %s", [issue]).fetchone() \
        == ("SWX1",)
    db.execute("DELETE FROM issue WHERE id = %s", [issue])
    assert db.execute("SELECT count(*) FROM issue_key WHERE id = %s", [issue]).fetchone() \
        == (0,)


def test_keys_into_issues_hold_across_partitions(db: psycopg.Connection[Any]) -> None:
    issue, _ = _report(db, datetime.now(ZONE))
    db.execute("INSERT INTO issue_event (issue_id, actor, action) VALUES (%s, 'a', 'note')",
               [issue])
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.execute("INSERT INTO issue_event (issue_id, actor, action) VALUES (-1, 'a', 'note')")
    # An issue with a trail cannot go (the trail's key restricts), as before 0030.
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.execute("DELETE FROM issue WHERE id = %s", [issue])
    assert db.execute("SELECT count(*) FROM issue_key WHERE id = %s", [issue]).fetchone() \
        == (1,)


def test_a_month_created_later_takes_its_rows_out_of_the_default_partition(
        db: psycopg.Connection[Any]) -> None:
    at = datetime(2015, 3, 10, 9, tzinfo=ZONE)
    issue, public_id = _report(db, at)
    db.execute("INSERT INTO issue_event (issue_id, at, actor, action) VALUES (%s, %s, 'a',"
               " 'report')", [issue, at])
    assert _where(db, "issue", "id", issue) == "issue_default"
    assert partitions.in_default(db) == (1, 1)
    journal = db.execute("SELECT count(*) FROM tally_journal").fetchone()
    changes = db.execute("SELECT sum(n) FROM issue_change").fetchone()

    assert partitions.ensure(db, at, at) == 1
    assert _where(db, "issue", "id", issue) == "issue_y2015m03"
    assert _where(db, "issue_event", "issue_id", issue) == "issue_event_y2015m03"
    assert partitions.in_default(db) == (0, 0)
    # Moving rows is no change of the issues: nothing journalled for the tallies, no change
    # counted for the caches, the key as it was, the trail's guard back on.
    assert db.execute("SELECT count(*) FROM tally_journal").fetchone() == journal
    assert db.execute("SELECT sum(n) FROM issue_change").fetchone() == changes
    assert db.execute("SELECT public_id FROM issue_key WHERE id = %s", [issue]).fetchone() \
        == (public_id,)
    db.execute("INSERT INTO issue_event (issue_id, at, actor, action) VALUES (%s, %s, 'a',"
               " 'note')", [issue, at - timedelta(days=3660)])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute("DELETE FROM issue_event_default")
    assert partitions.ensure(db, at, at) == 0


def test_the_audit_trail_is_append_only_in_every_partition(
        db: psycopg.Connection[Any]) -> None:
    now = datetime.now(ZONE)
    partitions.ensure(db, now, now)
    issue, _ = _report(db, now)
    db.execute("INSERT INTO issue_event (issue_id, actor, action) VALUES (%s, 'a', 'note')",
               [issue])
    month = _where(db, "issue_event", "issue_id", issue)
    assert month.startswith("issue_event_y")
    for statement in ("UPDATE issue_event SET note = 'x'", "DELETE FROM issue_event",
                      f"UPDATE {month} SET note = 'x'", f"DELETE FROM {month}",
                      f"TRUNCATE {month}", "TRUNCATE issue_event_default",
                      "TRUNCATE issue_event CASCADE"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute(statement)
    assert db.execute("SELECT count(*) FROM issue_event").fetchone() == (1,)


def test_the_worker_keeps_the_coming_months_created(db: psycopg.Connection[Any]) -> None:
    now = datetime(2031, 6, 15, 12, tzinfo=ZONE)
    summary = jobs.keep_partitions(db, Settings(), now)
    assert summary.startswith("4 month(s) created")
    names = {m.name for m in partitions.months(db)}
    assert {"issue_y2031m06", "issue_y2031m07", "issue_y2031m08", "issue_y2031m09"} <= names
    assert "issue_y2031m10" not in names
    assert jobs.keep_partitions(db, Settings(), now).startswith("0 month(s) created")
    # A report of next month lands in its month, not the default.
    issue, _ = _report(db, now + timedelta(days=30))
    assert _where(db, "issue", "id", issue) == "issue_y2031m07"
    bounds = next(m for m in partitions.months(db) if m.name == "issue_y2031m07")
    assert (bounds.lower, bounds.upper) == (datetime(2031, 7, 1, tzinfo=ZONE),
                                            datetime(2031, 8, 1, tzinfo=ZONE))


def test_a_bulk_load_creates_no_more_than_ten_years_of_months(
        db: psycopg.Connection[Any]) -> None:
    end = datetime(2030, 1, 1, tzinfo=ZONE)
    partitions.ensure(db, datetime(1990, 1, 1, tzinfo=ZONE), end)
    lowers = {m.lower for m in partitions.months(db)}
    # From the month of end - SPAN (December 2019) to end's, every month and none before.
    wanted = {datetime(2019 + (11 + k) // 12, (11 + k) % 12 + 1, 1, tzinfo=ZONE)
              for k in range(122)}
    assert wanted <= lowers
    assert min(lowers) == datetime(2019, 12, 1, tzinfo=ZONE)
