"""Periods: every spelling of the same stretch is the same Period; bad input is refused with
one message whichever spelling carried it; the zone is a parameter."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from layers.catalog import periods, phases
from layers.db.settings import Settings
from layers.errors import ValidationFailed

Conn = psycopg.Connection[tuple[object, ...]]
# The district's zone as the settings default names it; UTC shows the zone is a parameter.
ZONE = ZoneInfo(str(Settings.model_fields["timezone"].default))
MAY_START = datetime(2026, 5, 1, tzinfo=ZONE)
JUNE_START = datetime(2026, 6, 1, tzinfo=ZONE)


def test_every_spelling_of_may_is_the_same_period(conn: Conn) -> None:
    phases.set_phase(conn, "attack", date(2026, 5, 1), date(2026, 5, 31))
    spellings = [
        periods.parse_range("2026-05-01/2026-05-31", ZONE),
        periods.parse_range(f"{MAY_START.isoformat()}/{JUNE_START.isoformat()}", ZONE),
        periods.resolve(conn, ZONE, period="2026-05-01/2026-05-31"),
        periods.resolve(conn, ZONE, since="2026-05-01", until="2026-05-31"),
        periods.resolve(conn, ZONE, since="2026-05-01T00:00:00", until="2026-06-01T00:00"),
        periods.resolve(conn, ZONE, since=MAY_START.astimezone(UTC).isoformat(),
                        until=JUNE_START.astimezone(UTC).isoformat().replace("+00:00", "Z")),
        periods.resolve(conn, ZONE, since=str(int(MAY_START.timestamp())),
                        until=str(int(JUNE_START.timestamp()))),
        periods.resolve(conn, ZONE, phase="attack", year=2026),
        periods.resolve(conn, ZONE, phase="attack:2026"),
    ]
    for found in spellings:
        assert (found.since, found.until) == (MAY_START, JUNE_START), found
        assert found.since is not None and found.since.utcoffset() == MAY_START.utcoffset()
    assert spellings[-1].phase is not None and spellings[-1].phase.code == "attack"


def test_local_days_and_naive_times_are_read_in_the_zone_given() -> None:
    utc = periods.between("2026-05-01", "2026-05-01T12:00", UTC)
    assert utc.since == datetime(2026, 5, 1, tzinfo=UTC)
    assert utc.until == datetime(2026, 5, 1, 12, tzinfo=UTC)
    local = periods.between("2026-05-01", "2026-05-01T12:00", ZONE)
    assert local.since is not None and utc.since is not None
    offset = ZONE.utcoffset(datetime(2026, 5, 1))
    assert offset is not None and utc.since - local.since == offset
    # An offset says which instant it is, whatever the zone.
    assert periods.between("2026-05-01T00:00:00+00:00", None, ZONE).since == utc.since


def test_a_date_as_the_end_is_the_whole_day_and_open_ends_stay_open() -> None:
    one_day = periods.between("2026-05-01", "2026-05-01", ZONE)
    assert one_day.until == MAY_START + timedelta(days=1)
    assert periods.parse_range("2026-05-01/", ZONE) == periods.Period(MAY_START, None)
    assert periods.parse_range(None, ZONE) == periods.Period()
    assert periods.between("", "", ZONE) == periods.Period()


NOT_A_DATE = "无法识别的日期或时间 / not an ISO 8601 date or date-time"


@pytest.mark.parametrize(("spelling", "message"), [
    ({"period": "last week"}, "period must be START/END"),
    ({"period": "2026-05-01/next"}, NOT_A_DATE),
    ({"since": "yesterday"}, NOT_A_DATE),
    ({"until": "2026-13-01"}, NOT_A_DATE),
    ({"since": "2026-06-01", "until": "2026-05-01"}, "a period must start before it ends"),
    ({"period": "2026-06-01/2026-05-01"}, "a period must start before it ends"),
    ({"until": "9999-12-31"}, "date out of range"),
    ({"phase": "attack", "since": "2026-05-01"}, "give either a phase"),
    ({"period": "2026-05-01/", "until": "2026-05-02"}, "give either period or since/until"),
    ({"year": 2026}, "year goes with phase"),
    ({"phase": "attack:next"}, "phase must be code or code:year"),
    ({"phase": "nope", "year": 2026}, "no campaign phase 'nope' in 2026"),
])
def test_bad_periods_are_refused_with_one_message_each(conn: Conn, spelling: dict[str, Any],
                                                       message: str) -> None:
    with pytest.raises(ValidationFailed, match=message.replace("(", r"\(")):
        periods.resolve(conn, ZONE, **spelling)


def test_a_phase_without_a_year_is_this_years(conn: Conn) -> None:
    year = datetime.now(ZONE).year
    phases.set_phase(conn, "attack", date(year, 5, 1), date(year, 6, 30))
    resolved = periods.resolve(conn, ZONE, phase="attack").phase
    assert resolved is not None and resolved.year == year


def test_a_ranking_without_a_period_covers_the_last_30_days() -> None:
    now = datetime.now(ZONE)
    found = periods.Period().or_last(30, now)
    assert (found.since, found.until) == (now - timedelta(days=30), now)
    with pytest.raises(ValidationFailed, match="start before it ends"):
        periods.between(str(now.date() + timedelta(days=2)), None, ZONE).or_last(30, now)
