"""Monthly partitions of issue and issue_event (migration 0030): keys stay unique across
months, rows find their month (or an end partition, until their month is created),
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


def _month(at: datetime, months: int = 0) -> datetime:
    """The local month of ``at``, ``months`` later."""
    k = at.year * 12 + at.month - 1 + months
    return datetime(k // 12, k % 12 + 1, 1, tzinfo=ZONE)


def test_a_month_created_later_takes_its_rows_out_of_the_end_partitions(
        db: psycopg.Connection[Any]) -> None:
    now = datetime.now(ZONE)
    old, ahead = _month(now, -24) + timedelta(days=9), _month(now, 24) + timedelta(days=2)
    issue, public_id = _report(db, old)
    later, _ = _report(db, ahead)
    for at, which in ((old, issue), (ahead, later)):
        db.execute("INSERT INTO issue_event (issue_id, at, actor, action) VALUES (%s, %s, 'a',"
                   " 'report')", [which, at])
    assert _where(db, "issue", "id", issue) == "issue_before"
    assert _where(db, "issue", "id", later) == "issue_after"
    assert partitions.outside_months(db) == (2, 2)
    journal = db.execute("SELECT count(*) FROM tally_journal").fetchone()
    changes = db.execute("SELECT sum(n) FROM issue_change").fetchone()

    # Every month between stays covered: the months are made contiguous.
    assert partitions.ensure(db, old, ahead) >= 24 + 24 - 4
    name = f"{old:_y%Ym%m}"
    assert _where(db, "issue", "id", issue) == "issue" + name
    assert _where(db, "issue_event", "issue_id", issue) == "issue_event" + name
    assert _where(db, "issue", "id", later) == f"issue{ahead:_y%Ym%m}"
    assert partitions.outside_months(db) == (0, 0)
    lowers = [m.lower for m in partitions.months(db)]
    assert lowers == [_month(old, k) for k in range(49)]
    # Moving rows is no change of the issues: nothing journalled for the tallies, no change
    # counted for the caches, the key as it was, the trail's guard back on.
    assert db.execute("SELECT count(*) FROM tally_journal").fetchone() == journal
    assert db.execute("SELECT sum(n) FROM issue_change").fetchone() == changes
    assert db.execute("SELECT public_id FROM issue_key WHERE id = %s", [issue]).fetchone() \
        == (public_id,)
    db.execute("INSERT INTO issue_event (issue_id, at, actor, action) VALUES (%s, %s, 'a',"
               " 'note')", [issue, now - timedelta(days=366 * 12)])
    for statement in ("DELETE FROM issue_event_before", f"DELETE FROM issue_event{name}"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute(statement)
    assert partitions.ensure(db, old, ahead) == 0


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
                      f"TRUNCATE {month}", "TRUNCATE issue_event_before",
                      "TRUNCATE issue_event_after",
                      "TRUNCATE issue_event CASCADE"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute(statement)
    assert db.execute("SELECT count(*) FROM issue_event").fetchone() == (1,)


def test_the_worker_keeps_the_coming_months_created(db: psycopg.Connection[Any]) -> None:
    now = datetime.now(ZONE) + timedelta(days=200)  # past the months the migration made
    summary = jobs.keep_partitions(db, Settings(), now)
    assert summary.startswith(("4 month(s) created", "5 month(s) created", "6 month(s)",
                               "7 month(s)", "8 month(s)"))
    lowers = [m.lower for m in partitions.months(db)]
    assert lowers[-1] == _month(now, partitions.AHEAD_MONTHS)
    assert lowers == [_month(lowers[0], k) for k in range(len(lowers))]  # no gap
    assert jobs.keep_partitions(db, Settings(), now).startswith("0 month(s) created")
    # A report of next month lands in its month, not an end partition.
    issue, _ = _report(db, _month(now, 1) + timedelta(days=3))
    assert _where(db, "issue", "id", issue) == f"issue{_month(now, 1):_y%Ym%m}"
    bounds = next(m for m in partitions.months(db) if m.lower == _month(now, 1))
    assert bounds.upper == _month(now, 2)


def test_months_go_ten_years_back_and_five_ahead_at_most(db: psycopg.Connection[Any]) -> None:
    now = datetime.now(ZONE)
    partitions.ensure(db, datetime(1990, 1, 1, tzinfo=ZONE), now + timedelta(days=366 * 20))
    lowers = [m.lower for m in partitions.months(db)]
    assert lowers[0] == _month(now, -120)
    assert lowers[-1] == _month(now, 60)
    assert len(lowers) == 181


def test_a_session_in_another_zone_finds_the_same_months(dsn: str) -> None:
    # The months are the district's (issue_partition_zone, fixed by the migration), whatever
    # zone a session has: a DBA's psql, or the app started with another SITEWATCH_TIMEZONE.
    with psycopg.connect(dsn, autocommit=True, options="-c TimeZone=Europe/Berlin") as conn:
        start = partitions.months(conn)[0].lower.astimezone(ZONE)
        assert partitions.ensure(conn, start - timedelta(days=40), start) == 2
        lowers = [m.lower for m in partitions.months(conn)]
    assert lowers[:3] == [_month(start, -2), _month(start, -1), start]
    assert all(m.astimezone(ZONE).hour == 0 for m in lowers)
