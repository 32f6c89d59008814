"""Campaign phases (创建阶段): dated stretches of a campaign year that scores are read by.

The defaults come from the mobilisation speech: May–June key attack (重点攻坚), July–August
full compliance (全面达标), September–December consolidation (巩固提高). Each phase is stored
with explicit dates per campaign year (migration 0010 says why), so the office can move them.
A phase's dates are local dates of the district: it runs from the first day's midnight to
the midnight after the last day in the district's time zone (``Settings.zone``, passed in).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

import psycopg
from psycopg.rows import class_row, dict_row

from layers.errors import Conflict, ValidationFailed

_CODE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


@dataclass(frozen=True)
class Phase:
    """One phase of one campaign year; ``ends_on`` is its last day."""

    code: str
    year: int
    name_zh: str
    name_en: str
    starts_on: date
    ends_on: date

    def since(self, zone: tzinfo) -> datetime:
        """The phase's first instant: midnight starting its first day in ``zone``."""
        return datetime.combine(self.starts_on, time(), zone)

    def until(self, zone: tzinfo) -> datetime:
        """The first instant after the phase (exclusive end): midnight after its last day."""
        return datetime.combine(self.ends_on + timedelta(days=1), time(), zone)


def list_phases(conn: psycopg.Connection[Any], year: int | None = None) -> list[Phase]:
    """Every phase, or those of campaign ``year``, in date order."""
    with conn.cursor(row_factory=class_row(Phase)) as cur:
        return cur.execute(
            "SELECT code, year, name_zh, name_en, starts_on, ends_on FROM campaign_phase"
            " WHERE %(year)s::int IS NULL OR year = %(year)s ORDER BY starts_on",
            {"year": year}).fetchall()


def get(conn: psycopg.Connection[Any], code: str, year: int) -> Phase:
    """Phase ``code`` of campaign ``year``; ValidationFailed (naming the choices) otherwise."""
    phases = list_phases(conn, year)
    for phase in phases:
        if phase.code == code:
            return phase
    known = ", ".join(p.code for p in phases) or "none; add them with `sitewatch phases set`"
    raise ValidationFailed(f"no campaign phase {code!r} in {year} (phases of {year}: {known})")


def set_phase(conn: psycopg.Connection[Any], code: str, starts_on: date, ends_on: date, *,
              name_zh: str | None = None, name_en: str | None = None) -> Phase:
    """Create or move phase ``code`` of the campaign year ``starts_on`` falls in.

    Names default to the ones the code had in its latest year, so a new year needs dates only.
    ValidationFailed for a bad code, reversed dates or a new code without names; Conflict
    when the dates overlap another phase.
    """
    if not _CODE.match(code):
        raise ValidationFailed(f"phase code {code!r}: lower-case letters, digits and _")
    if ends_on < starts_on or ends_on >= starts_on + timedelta(days=366):
        raise ValidationFailed("a phase ends on or after its start, within a year")
    with conn.cursor(row_factory=dict_row) as cur:
        known = cur.execute("SELECT name_zh, name_en FROM campaign_phase WHERE code = %s"
                            " ORDER BY year DESC LIMIT 1", [code]).fetchone() or {}
        names = {"name_zh": name_zh or known.get("name_zh"),
                 "name_en": name_en or known.get("name_en")}
        if not all(names.values()):
            raise ValidationFailed(f"phase {code!r} is new: give its Chinese and English names")
        try:
            with conn.transaction():
                row = cur.execute(
                    "INSERT INTO campaign_phase (code, name_zh, name_en, starts_on, ends_on)"
                    " VALUES (%(code)s, %(name_zh)s, %(name_en)s, %(starts_on)s, %(ends_on)s)"
                    " ON CONFLICT (code, year) DO UPDATE SET name_zh = EXCLUDED.name_zh,"
                    " name_en = EXCLUDED.name_en, starts_on = EXCLUDED.starts_on,"
                    " ends_on = EXCLUDED.ends_on"
                    " RETURNING code, year, name_zh, name_en, starts_on, ends_on",
                    {"code": code, "starts_on": starts_on, "ends_on": ends_on, **names},
                ).fetchone()
        except psycopg.errors.ExclusionViolation:
            raise Conflict(f"{starts_on} to {ends_on} overlaps another phase") from None
    assert row is not None  # INSERT ... RETURNING always returns the row
    return Phase(**row)
