"""The accountability register (问责): for a unit and a period, the issues that ran past their
deadline, that it had to redo, or that it lost points on at external assessment, each with the
events that prove it.

"Ran past its deadline" (``ran_past_deadline``, SQL ``issue_ran_past_deadline``) is still open
after the deadline *or closed after it*: wider than "overdue" (open and past the deadline now,
SQL ``issue_is_overdue``), because a late fix lost the points all the same. What counts is the
same as in :mod:`layers.supervision.scores` (points lost), so the register explains a unit's
score line by line. (The HTTP register keeps its field name ``overdue`` for this.)

The unit an entry counts against is the one answering for the issue (its lead unit) when its
deadline was missed, as the issue's trail recorded it (SQL ``issue_lead_unit_at``, migration
0026; see layers.history), not today's: a grid redrawn after the deadline moves the open issue
to a new unit, but the lateness belongs to the unit that let it happen. An entry whose
deadline has not passed (a rework, a finding of the assessors) counts against today's unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row, dict_row

from layers.errors import NotFound, ValidationFailed
from layers.issues.records import TRAIL_ORDER, IssueEvent

# A register longer than this is no meeting document and its audit trails would hold
# megabytes in memory: the caller narrows the period instead. (A unit of the demo district has
# a few dozen entries a phase.)
MAX_ENTRIES = 5000

_ENTRIES = """
    SELECT i.id, i.public_id, i.category_code AS category, c.name_zh AS category_zh,
           c.points::float8 AS points, i.source, i.status, i.reported_at, i.deadline,
           i.closed_at, i.rework_count,
           issue_ran_past_deadline(i.deadline, i.closed_at, now()) AS ran_past_deadline,
           round((extract(epoch FROM coalesce(i.closed_at, now()) - i.deadline) / 3600)
                 ::numeric, 1)::float8 AS hours_late,
           i.source = 'external_assessment' AS found_by_assessors
    FROM issue i JOIN category c ON c.code = i.category_code
    CROSS JOIN LATERAL (SELECT least(coalesce(i.deadline, now()), now()) AS at) due
    WHERE i.reported_at >= %(since)s AND i.reported_at < %(until)s
      AND i.status NOT IN ('rejected', 'duplicate')
      AND (i.source = 'external_assessment' OR i.rework_count > 0
           OR issue_ran_past_deadline(i.deadline, i.closed_at, now()))
      -- Nothing changed the answer after the due moment: today's lead unit answered then.
      -- Else the trail says (CASE fixes the order: it is read for those issues only).
      AND CASE WHEN NOT EXISTS (SELECT 1 FROM issue_answer_record r
                                WHERE r.issue_id = i.id AND r.at > due.at
                                  AND r.new ? 'lead_unit_id')
               THEN i.lead_unit_id = %(unit)s
               ELSE issue_lead_unit_at(i.id, due.at) IS NOT DISTINCT FROM %(unit)s END
    ORDER BY i.reported_at, i.id
"""



@dataclass(frozen=True)
class Entry:
    """An issue the unit is answerable for, with the audit trail that proves it."""

    public_id: str
    category: str
    category_zh: str
    points: float
    source: str
    status: str
    reported_at: datetime
    deadline: datetime | None
    closed_at: datetime | None
    rework_count: int
    ran_past_deadline: bool
    hours_late: float | None  # only when it ran past its deadline
    found_by_assessors: bool
    events: list[IssueEvent]


@dataclass(frozen=True)
class RegisterUnit:
    """The unit a register is about."""

    id: int
    code: str
    name: str
    leader: str | None


@dataclass(frozen=True)
class Register:
    """A unit's entries in a period, and their totals."""

    unit: RegisterUnit
    since: datetime
    until: datetime
    ran_past_deadline: int
    reworks: int
    found_by_assessors: int
    points_lost: float
    entries: list[Entry]


def register(conn: psycopg.Connection[Any], unit_code: str, *, since: datetime,
             until: datetime, max_entries: int = MAX_ENTRIES) -> Register:
    """The unit's entries in the period with their audit trails, and totals.

    ValidationFailed (naming since/until) when more than ``max_entries`` issues qualify.
    """
    with conn.cursor(row_factory=class_row(RegisterUnit)) as units:
        unit = units.execute("SELECT id, code, name, leader FROM unit WHERE code = %s",
                             [unit_code]).fetchone()
    if unit is None:
        raise NotFound(f"no unit {unit_code!r}")
    with conn.cursor(row_factory=dict_row) as cur:
        params = {"unit": unit.id, "since": since, "until": until, "limit": max_entries + 1}
        # One entry past the ceiling says "too many" before any audit trail is read (the
        # entries are small; the scan that finds them is the cost, so it runs once).
        rows = cur.execute(_ENTRIES + " LIMIT %(limit)s", params).fetchall()
        if len(rows) > max_entries:
            message = (f"more than {max_entries} issues qualify, at most {max_entries} per"
                       " register: narrow since/until (缩短时段)")
            raise ValidationFailed(message, details=[
                {"field": name, "message": message} for name in ("since", "until")])
        events = cur.execute(sql.SQL(
            "SELECT issue_id, at, actor, actor_role, action, from_status, to_status, note,"
            " evidence, data FROM issue_trail WHERE issue_id = ANY(%s) ORDER BY {}").format(
                TRAIL_ORDER), [[r["id"] for r in rows]]).fetchall()
    trail: dict[int, list[IssueEvent]] = {}
    for event in events:
        trail.setdefault(event.pop("issue_id"), []).append(IssueEvent(**event))
    entries = [Entry(
        public_id=r["public_id"], category=r["category"], category_zh=r["category_zh"],
        points=r["points"], source=r["source"], status=r["status"],
        reported_at=r["reported_at"], deadline=r["deadline"], closed_at=r["closed_at"],
        rework_count=r["rework_count"], ran_past_deadline=r["ran_past_deadline"],
        hours_late=r["hours_late"] if r["ran_past_deadline"] else None,
        found_by_assessors=r["found_by_assessors"], events=trail.get(r["id"], []))
        for r in rows]
    return Register(
        unit=unit, since=since, until=until,
        ran_past_deadline=sum(e.ran_past_deadline for e in entries),
        reworks=sum(e.rework_count for e in entries),
        found_by_assessors=sum(e.found_by_assessors for e in entries),
        points_lost=round(sum(e.points for e in entries
                              if e.ran_past_deadline or e.found_by_assessors), 2),
        entries=entries)
