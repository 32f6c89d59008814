"""Deadlines turning yellow and red: one outbox event per issue and colour, however often the
job runs, and again after an extension moves the light back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from layers.db.settings import Settings
from layers.notify import deadlines, messages, outbox
from layers.worker import jobs, runner

HOUR = timedelta(hours=1)


@pytest.fixture
def db(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to a database with unit C01 and a webhook subscription."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO unit (code, name, kind) VALUES ('C01', '湖东社区',"
                     " 'territorial')")
        outbox.add(conn, unit="C01", channel="webhook", target="https://hook.example.cn/x",
                   secret=None, events=[], created_by="创建办")
        yield conn


def _issue(conn: psycopg.Connection[Any], *, reported_ago: timedelta, due_in: timedelta
           ) -> int:
    """An assigned issue of C01 reported ``reported_ago`` ago, due in ``due_in`` (negative:
    already past)."""
    row = conn.execute(
        "INSERT INTO issue (category_code, geom, description, source, status, deadline,"
        " reported_at, lead_unit_id) VALUES ('CTY-05',"
        " ST_SetSRID(ST_MakePoint(120.7, 31.3), 4326), '暴露垃圾', 'self_inspection',"
        " 'assigned', now() + %s, now() - %s, (SELECT id FROM unit WHERE code = 'C01'))"
        " RETURNING id", [due_in, reported_ago]).fetchone()
    assert row is not None
    return int(row[0])


def _set_deadline(conn: psycopg.Connection[Any], issue: int, due_in: timedelta) -> None:
    conn.execute("UPDATE issue SET deadline = now() + %s WHERE id = %s", [due_in, issue])


def _events(conn: psycopg.Connection[Any], issue: int) -> list[str]:
    """The light events of ``issue`` in the outbox, oldest first."""
    rows = conn.execute(
        "SELECT o.kind FROM outbox o JOIN issue i ON i.public_id = o.payload->>'issue'"
        " WHERE i.id = %s AND o.kind IN ('issue.due_soon', 'issue.overdue') ORDER BY o.id",
        [issue]).fetchall()
    return [str(r[0]) for r in rows]


def test_a_deadline_passing_yields_one_red_event_even_when_run_twice(
        db: psycopg.Connection[Any]) -> None:
    late = _issue(db, reported_ago=48 * HOUR, due_in=2 * HOUR)  # past 80 %: yellow
    fresh = _issue(db, reported_ago=HOUR, due_in=48 * HOUR)  # green
    assert deadlines.announce(db) == deadlines.Announced(due_soon=1, overdue=0)
    assert deadlines.announce(db) == deadlines.Announced(due_soon=0, overdue=0)
    _set_deadline(db, late, -timedelta(minutes=1))
    assert deadlines.announce(db) == deadlines.Announced(due_soon=0, overdue=1)
    assert deadlines.announce(db) == deadlines.Announced(due_soon=0, overdue=0)
    assert _events(db, late) == ["issue.due_soon", "issue.overdue"]
    assert _events(db, fresh) == []
    # Each event fans out to the unit's subscription, with the issue's deadline and place.
    sent = db.execute("SELECT o.kind, o.payload->>'light', o.payload ? 'deadline'"
                      " FROM delivery d JOIN outbox o ON o.id = d.outbox_id ORDER BY o.id"
                      ).fetchall()
    assert sent == [("issue.due_soon", "yellow", True), ("issue.overdue", "red", True)]
    payload = db.execute("SELECT payload FROM outbox WHERE kind = 'issue.overdue'").fetchone()
    assert payload is not None
    told = messages.render("issue.overdue", payload[0], public_url="https://sw.example.cn",
                           zone=Settings().zone)
    assert told.text.startswith("问题已超期（红灯） Issue overdue (red)\n问题 Issue: ")
    assert told.link == "https://sw.example.cn/units/C01/work"


def test_an_extension_then_a_second_passing_yields_another(
        db: psycopg.Connection[Any]) -> None:
    issue = _issue(db, reported_ago=48 * HOUR, due_in=-HOUR)  # found red: told red only
    deadlines.announce(db)
    _set_deadline(db, issue, 30 * 24 * HOUR)  # extended: green again
    assert deadlines.announce(db) == deadlines.Announced(due_soon=0, overdue=0)
    assert db.execute("SELECT count(*) FROM deadline_notice").fetchone() == (0,)
    _set_deadline(db, issue, -timedelta(minutes=1))
    deadlines.announce(db)
    deadlines.announce(db)
    assert _events(db, issue) == ["issue.overdue", "issue.overdue"]


def test_red_moved_back_to_yellow_is_silent_and_red_again_is_told(
        db: psycopg.Connection[Any]) -> None:
    issue = _issue(db, reported_ago=100 * HOUR, due_in=-HOUR)
    deadlines.announce(db)
    _set_deadline(db, issue, HOUR)  # an extension short of green: yellow
    assert deadlines.announce(db) == deadlines.Announced(due_soon=0, overdue=0)
    _set_deadline(db, issue, -HOUR)
    assert deadlines.announce(db) == deadlines.Announced(due_soon=0, overdue=1)
    assert _events(db, issue) == ["issue.overdue", "issue.overdue"]


def test_a_closed_issue_is_forgotten_and_nothing_is_written_without_subscribers(
        db: psycopg.Connection[Any]) -> None:
    issue = _issue(db, reported_ago=48 * HOUR, due_in=-HOUR)
    db.execute("DELETE FROM subscription")
    assert deadlines.announce(db) == deadlines.Announced(due_soon=0, overdue=0)
    assert db.execute("SELECT light FROM deadline_notice").fetchall() == [("red",)]
    db.execute("UPDATE issue SET status = 'rejected', closed_at = now() WHERE id = %s",
               [issue])
    deadlines.announce(db)
    assert db.execute("SELECT count(*) FROM deadline_notice").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM outbox").fetchone() == (0,)


def test_the_worker_job_announces_through_the_registry(dsn: str,
                                                        db: psycopg.Connection[Any]) -> None:
    issue = _issue(db, reported_ago=48 * HOUR, due_in=-HOUR)
    lights = [j for j in jobs.JOBS if j.name == "deadline-lights"]
    ran = runner.run_due(db, lights, Settings(database_url=dsn), "w")
    assert ran[0][2] == "0 due soon, 1 overdue announced"
    assert _events(db, issue) == ["issue.overdue"]


def test_a_second_run_while_the_first_is_uncommitted_announces_nothing_again(
        dsn: str, db: psycopg.Connection[Any]) -> None:
    issue = _issue(db, reported_ago=48 * HOUR, due_in=-HOUR)
    second: list[deadlines.Announced] = []
    with psycopg.connect(dsn, autocommit=True) as first, \
            psycopg.connect(dsn, autocommit=True) as other:
        thread = threading.Thread(target=lambda: second.append(deadlines.announce(other)))
        with first.transaction():  # as the worker's runner wraps each job
            assert deadlines.announce(first) == deadlines.Announced(due_soon=0, overdue=1)
            # Uncommitted yet: a second run now must wait for the first to commit.
            thread.start()
            while db.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                             [other.info.backend_pid]).fetchone() != ("Lock",):
                time.sleep(0.01)
        thread.join()
    assert second == [deadlines.Announced(due_soon=0, overdue=0)]
    assert _events(db, issue) == ["issue.overdue"]
