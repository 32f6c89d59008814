"""The office calendar: public holidays and make-up working days, for working-day deadlines.

Days not listed follow the week (Monday to Friday work). The database function
``issue_deadline`` reads this table when it sets a deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg.rows import class_row

from layers.errors import NotFound


@dataclass(frozen=True)
class CalendarDay:
    """A listed day: a day off (``working`` false: 节假日) or a make-up working day (调休上班)."""

    day: date
    working: bool
    name: str | None


def set_day(conn: psycopg.Connection[Any], day: date, *, working: bool,
            name: str | None = None) -> None:
    """Mark ``day`` as a working day or a day off (overrides the weekday rule)."""
    conn.execute(
        "INSERT INTO calendar_day (day, working, name) VALUES (%s, %s, %s)"
        " ON CONFLICT (day) DO UPDATE SET working = EXCLUDED.working, name = EXCLUDED.name",
        [day, working, name])


def clear_day(conn: psycopg.Connection[Any], day: date) -> None:
    """Let ``day`` follow the weekday rule again (undo :func:`set_day`).

    Raises NotFound when ``day`` is not listed, so a mistyped date does not pass unnoticed.
    """
    if conn.execute("DELETE FROM calendar_day WHERE day = %s", [day]).rowcount == 0:
        raise NotFound(f"{day} 不在办公日历中 / {day} is not in the office calendar: "
                       "nothing to unset (see `sitewatch calendar list YEAR`)")


def exceptions(conn: psycopg.Connection[Any], year: int) -> list[CalendarDay]:
    """The listed days of ``year``, in order."""
    with conn.cursor(row_factory=class_row(CalendarDay)) as cur:
        return cur.execute(
            "SELECT day, working, name FROM calendar_day"
            " WHERE day >= make_date(%s, 1, 1) AND day < make_date(%s + 1, 1, 1) ORDER BY day",
            [year, year]).fetchall()
