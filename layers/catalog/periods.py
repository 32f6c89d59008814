"""Periods: the one type for "from when to when" and the one parser of its spellings.

Clients name a period five ways, and every one of them is read here, with one set of error
messages:

- ``START/END`` (``period=`` of the hotspot routes and ``sitewatch hotspots``);
- ``phase=code:year`` (the map page's form) or ``phase=code&year=YYYY`` (scores, maps);
- ``since=``/``until=`` (issues, scores, accountability, map pages);
- Open311's ``start_date``/``end_date`` (the same two ends under the spec's names).

Each end is an ISO 8601 date or date-time. One rule reads them all: a period is half-open,
``[since, until)``; a date is a local day of the district, so a date as the start means that
day's first instant and a date as the end means the whole of that day; a date-time without
an offset is the district's local time. The zone is a parameter (the settings name it).

>>> from zoneinfo import ZoneInfo
>>> utc = ZoneInfo("UTC")
>>> parse_range("2026-05-01/2026-05-31", utc) == between("2026-05-01", "2026-05-31", utc)
True
>>> parse_range("2026-05-01/2026-05-31", utc).until.isoformat()
'2026-06-01T00:00:00+00:00'
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

import psycopg
from pydantic import TypeAdapter, ValidationError

from layers.catalog import phases
from layers.errors import ValidationFailed

# A ranking without a period covers the days up to now (scores, ``sitewatch scores``).
RANKING_DAYS = 30
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)


@dataclass(frozen=True)
class Period:
    """``[since, until)`` in the district's zone (None: unbounded on that side), and the
    campaign phase it is, when it was named as one."""

    since: datetime | None = None
    until: datetime | None = None
    phase: phases.Phase | None = None

    @property
    def bounded(self) -> tuple[datetime, datetime]:
        """Both ends, with the whole record (2000 to 2100) standing in for a missing one."""
        return (self.since or datetime(2000, 1, 1, tzinfo=UTC),
                self.until or datetime(2100, 1, 1, tzinfo=UTC))

    def or_last(self, days: float, now: datetime) -> Period:
        """This period with a missing end filled in: ``until`` now, ``since`` ``days``
        before ``until`` (the default window of a ranking)."""
        until = self.until or now
        since = self.since or until - timedelta(days=days)
        return _ordered(Period(since, until, self.phase))

    def query(self) -> dict[str, str]:
        """The query parameters that select this period again (tile URLs, links): the
        phase, or the local days (``until`` inclusive) for a period of whole days."""
        if self.phase is not None:
            return {"phase": self.phase.code, "year": str(self.phase.year)}
        out = {}
        if self.since is not None:
            out["since"] = self.since.date().isoformat()
        if self.until is not None:
            out["until"] = (self.until - timedelta(days=1)).date().isoformat()
        return out


def instant(name: str, text: str | None, zone: tzinfo, *, end: bool = False
            ) -> datetime | None:
    """One end of a period: ``text`` as an instant in ``zone`` (None for no text).

    A date means its day's first instant, or with ``end`` the first instant after it; a
    date-time without an offset is local time in ``zone``. ``name`` names the parameter in
    the refusal.
    """
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        if _DAY.match(text):
            day = date.fromisoformat(text) + timedelta(days=1 if end else 0)
            return datetime.combine(day, time(), zone)
        found = _date_time(text)
        local = found if found.tzinfo else found.replace(tzinfo=zone)
        return local.astimezone(zone)
    except ValueError:
        raise ValidationFailed(
            f"{name}：无法识别的日期或时间 / not an ISO 8601 date or date-time: {text!r}"
            " (e.g. 2026-05-01 or 2026-05-01T08:00:00+08:00)") from None
    except OverflowError:  # 9999-12-31 as an end, or an offset beyond year 1 or 9999
        raise ValidationFailed(f"{name}：日期超出范围 / date out of range: {text!r}") from None


def _date_time(text: str) -> datetime:
    """ISO 8601 as Python reads it, else what pydantic reads (e.g. epoch seconds, which the
    since/until query parameters have always taken)."""
    with contextlib.suppress(ValueError):  # not ISO 8601: pydantic's wider reading below
        return datetime.fromisoformat(text)
    try:
        return _DATETIME.validate_python(text)
    except ValidationError:
        raise ValueError(text) from None


def between(since: str | None, until: str | None, zone: tzinfo, *,
            names: tuple[str, str] = ("since", "until")) -> Period:
    """The period from ``since`` to ``until`` (either may be missing); refused when it does
    not start before it ends."""
    return _ordered(Period(instant(names[0], since, zone),
                           instant(names[1], until, zone, end=True)))


def parse_range(text: str | None, zone: tzinfo) -> Period:
    """``START/END`` (either side may be empty) as a period; no text: unbounded."""
    if not text:
        return Period()
    start, sep, end = text.partition("/")
    if not sep:
        raise ValidationFailed("period：时段格式应为 开始/结束 / period must be START/END,"
                               " e.g. 2026-05-01/2026-11-20")
    return between(start, end, zone, names=("period", "period"))


def of_phase(conn: psycopg.Connection[Any], phase: str, year: int | None, zone: tzinfo
             ) -> Period:
    """Campaign phase ``phase`` of ``year`` (default: this year in ``zone``); ``phase`` may
    carry its year as ``code:year``, as the map page's form sends it (that year wins)."""
    code, sep, year_text = phase.partition(":")
    if sep:
        if not year_text.isdigit():
            raise ValidationFailed("phase：阶段格式应为 代码 或 代码:年份 / phase must be code"
                                   " or code:year, e.g. attack:2026")
        year = int(year_text)
    found = phases.get(conn, code, year or datetime.now(zone).year)
    return Period(found.since(zone), found.until(zone), found)


def resolve(conn: psycopg.Connection[Any], zone: tzinfo, *, period: str | None = None,
            phase: str | None = None, year: int | None = None, since: str | None = None,
            until: str | None = None, names: tuple[str, str] = ("since", "until")) -> Period:
    """The period the parameters name, in any one spelling (empty values, a form's blanks,
    mean "not given"); refused when they name it more than one way or ``year`` comes
    without ``phase``. Nothing given: unbounded. ``names`` are the public names of
    ``since`` and ``until`` (Open311 calls them start_date and end_date)."""
    if phase:
        if period or since or until:
            raise ValidationFailed("时段：阶段与起止时间只能选一种 / give either a phase (and"
                                   " year) or since/until, not both")
        return of_phase(conn, phase, year, zone)
    if year is not None:
        raise ValidationFailed("year：年份须与阶段同用 / year goes with phase, e.g."
                               " phase=attack&year=2026")
    if period:
        if since or until:
            raise ValidationFailed("时段：period 与 since/until 只能选一种 / give either"
                                   " period or since/until, not both")
        return parse_range(period, zone)
    return between(since, until, zone, names=names)


def _ordered(found: Period) -> Period:
    if found.since is not None and found.until is not None and found.since >= found.until:
        raise ValidationFailed("时段的起点须早于终点 / a period must start before it ends"
                               " (since < until)")
    return found
