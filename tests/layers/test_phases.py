"""Campaign phases: dated per year, names carried over, never overlapping, read in China time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import psycopg
import pytest

from layers.catalog import periods, phases
from layers.db.settings import Settings
from layers.errors import Conflict, ValidationFailed

Conn = psycopg.Connection[tuple[object, ...]]
ZONE = ZoneInfo(str(Settings.model_fields["timezone"].default))


def test_a_new_year_needs_dates_only(conn: Conn) -> None:
    added = phases.set_phase(conn, "attack", date(2028, 5, 4), date(2028, 6, 30))
    assert (added.year, added.name_zh, added.name_en) == (2028, "重点攻坚", "Key attack")
    assert [p.code for p in phases.list_phases(conn, 2028)] == ["attack"]


def test_moving_a_phase_moves_its_period(conn: Conn) -> None:
    phases.set_phase(conn, "attack", date(2026, 5, 10), date(2026, 6, 30))
    period = periods.of_phase(conn, "attack", 2026, ZONE)
    assert period.since == datetime(2026, 5, 9, 16, tzinfo=UTC)  # May 10, 00:00 in China
    assert period.until == datetime(2026, 6, 30, 16, tzinfo=UTC)
    assert phases.list_phases(conn, 2026)[0].starts_on == date(2026, 5, 10)


def test_overlapping_phases_are_refused_and_nothing_changes(conn: Conn) -> None:
    with pytest.raises(Conflict, match="overlaps"):
        phases.set_phase(conn, "compliance", date(2026, 6, 15), date(2026, 8, 31))
    assert phases.get(conn, "compliance", 2026).starts_on == date(2026, 7, 1)
    with pytest.raises(Conflict):
        phases.set_phase(conn, "sprint", date(2026, 8, 1), date(2026, 8, 10),
                         name_zh="冲刺", name_en="Sprint")


def test_a_new_phase_needs_its_names(conn: Conn) -> None:
    with pytest.raises(ValidationFailed, match="names"):
        phases.set_phase(conn, "review", date(2027, 1, 5), date(2027, 1, 20))
    added = phases.set_phase(conn, "review", date(2027, 1, 5), date(2027, 1, 20),
                             name_zh="年度复盘", name_en="Annual review")
    assert phases.get(conn, "review", 2027) == added


@pytest.mark.parametrize(("code", "starts", "ends"), [
    ("Attack!", date(2028, 5, 1), date(2028, 6, 30)),
    ("attack", date(2028, 6, 30), date(2028, 5, 1)),
    ("attack", date(2028, 5, 1), date(2029, 6, 1)),
])
def test_bad_phases_are_refused(conn: Conn, code: str, starts: date, ends: date) -> None:
    with pytest.raises(ValidationFailed):
        phases.set_phase(conn, code, starts, ends)
    assert phases.list_phases(conn, 2028) == []
