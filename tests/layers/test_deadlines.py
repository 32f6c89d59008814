"""Deadlines: calendar hours, or working days across weekends, holidays and 调休."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from api.cli.main import app as cli
from layers.assignment import load_assigner
from layers.catalog import calendar
from layers.errors import NotFound
from layers.issues import records


def _deadline(conn: psycopg.Connection[Any], reported: str, hours: int,
              working_days: int | None) -> datetime:
    row = conn.execute("SELECT issue_deadline(%s::timestamptz, %s, %s)",
                       [reported, hours, working_days]).fetchone()
    assert row is not None
    deadline: datetime = row[0]
    return deadline


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("reported", "days", "expected"),
    [
        # Friday + 2 working days: Monday, Tuesday.
        ("2026-05-08T10:00:00+08:00", 2, "2026-05-12T10:00:00+08:00"),
        # Reported on a Sunday night: Monday is the first working day.
        ("2026-05-10T22:00:00+08:00", 1, "2026-05-11T22:00:00+08:00"),
        # Local date counts, not UTC: Monday 07:00 in Beijing is still Sunday in UTC.
        ("2026-05-11T07:00:00+08:00", 1, "2026-05-12T07:00:00+08:00"),
    ],
)
def test_working_days_skip_weekends(conn: psycopg.Connection[Any], reported: str, days: int,
                                    expected: str) -> None:
    assert _deadline(conn, reported, 24, days) == _at(expected)


def test_holidays_and_make_up_working_days(conn: psycopg.Connection[Any]) -> None:
    calendar.set_day(conn, date(2026, 5, 11), working=False, name="假日")
    calendar.set_day(conn, date(2026, 5, 9), working=True, name="调休上班")
    # Friday + 1: the Saturday worked in exchange.
    assert _deadline(conn, "2026-05-08T10:00:00+08:00", 24, 1) == _at(
        "2026-05-09T10:00:00+08:00")
    # Friday + 2: Saturday, then Monday is a holiday, so Tuesday.
    assert _deadline(conn, "2026-05-08T10:00:00+08:00", 24, 2) == _at(
        "2026-05-12T10:00:00+08:00")


def test_an_unset_day_follows_the_week_again(conn: psycopg.Connection[Any]) -> None:
    calendar.set_day(conn, date(2026, 5, 11), working=False, name="假日")
    calendar.set_day(conn, date(2026, 5, 9), working=True, name="调休上班")
    calendar.clear_day(conn, date(2026, 5, 11))
    calendar.clear_day(conn, date(2026, 5, 9))
    # Friday + 1 is Monday again: no Saturday worked, no Monday off.
    assert _deadline(conn, "2026-05-08T10:00:00+08:00", 24, 1) == _at(
        "2026-05-11T10:00:00+08:00")
    assert calendar.exceptions(conn, 2026) == []
    with pytest.raises(NotFound, match="not in the office calendar"):
        calendar.clear_day(conn, date(2026, 5, 11))


def test_a_long_holiday_is_spanned(conn: psycopg.Connection[Any]) -> None:
    for day in range(1, 9):  # a week-long festival, 1-8 October
        calendar.set_day(conn, date(2026, 10, day), working=False, name="国庆节")
    calendar.set_day(conn, date(2026, 10, 10), working=True, name="国庆节调休")
    # Wednesday 30 September + 3 working days: 9 Oct (Fri), 10 Oct (Sat, worked), 12 Oct.
    assert _deadline(conn, "2026-09-30T16:00:00+08:00", 24, 3) == _at(
        "2026-10-12T16:00:00+08:00")


def test_hours_ignore_the_calendar(conn: psycopg.Connection[Any]) -> None:
    calendar.set_day(conn, date(2026, 5, 9), working=False)
    assert _deadline(conn, "2026-05-08T10:00:00+08:00", 48, None) == _at(
        "2026-05-10T10:00:00+08:00")


def test_new_issues_of_a_working_day_category_get_working_day_deadlines(
        conn: psycopg.Connection[Any]) -> None:
    conn.execute("UPDATE category SET deadline_working_days = 2 WHERE code = 'CMP-03'")
    reported = _at("2026-05-08T10:00:00+08:00")
    [public_id] = records.create_many(conn, load_assigner(conn), [records.NewIssue(
        category="CMP-03", lon=120.7, lat=31.3, description="乱堆乱放", reported_at=reported)],
        actor="t", actor_role="inspector")
    row = conn.execute("SELECT deadline FROM issue WHERE public_id = %s",
                       [public_id]).fetchone()
    assert row == (_at("2026-05-12T10:00:00+08:00"),)


def test_cli_sets_unsets_and_lists_the_calendar(dsn: str) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": dsn}
    assert runner.invoke(cli, ["calendar", "set", "2026-10-01", "--holiday", "--name", "国庆节"],
                         env=env).exit_code == 0
    assert runner.invoke(cli, ["calendar", "set", "2026-10-10", "--workday"],
                         env=env).exit_code == 0
    listed = runner.invoke(cli, ["calendar", "list", "2026"], env=env)
    assert "2026-10-01  holiday      国庆节" in listed.output
    assert "2026-10-10  working day" in listed.output
    bad = runner.invoke(cli, ["calendar", "set", "10/01/2026", "--holiday"], env=env)
    assert bad.exit_code == 1
    assert "not a date" in bad.output
    unset = runner.invoke(cli, ["calendar", "unset", "2026-10-10"], env=env)
    assert unset.exit_code == 0, unset.output
    listed = runner.invoke(cli, ["calendar", "list", "2026"], env=env)
    assert "2026-10-10" not in listed.output
    assert "2026-10-01  holiday      国庆节" in listed.output
    again = runner.invoke(cli, ["calendar", "unset", "2026-10-10"], env=env)
    assert again.exit_code == 1
    assert "is not in the office calendar" in again.output
