"""History of the lines: past versions of jurisdictions, sites and rules, and "as of" answers.

Migration 0026 keeps, by row trigger, every version of a ``jurisdiction``, ``site`` and
``responsibility_rule`` with the time it was valid and the transaction that wrote it (a
revision records its transaction, so its lines are the versions it started or ended).

"As of" answers come from the issue's own trail, not from running the engine on the lines
valid then: an accountability dispute (问责) asks what the system *answered* at the time (the
unit that was told to act), which is what the trail recorded; the engine run on old lines
would give today's engine's opinion of them (a later fix of the engine, a category's new
department, the unassigned queue worked by hand would all rewrite the past). SQL
``issue_answer_value_at`` (one home, also used by the accountability register) reads it. The
lines valid then are given beside the answer, so both can be checked against each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import class_row, dict_row

from geo.assign import RESULT_COLUMNS
from layers import revisions
from layers.db import partitions
from layers.errors import NotFound, ValidationFailed
from layers.text import quoted

LineTable = Literal["jurisdiction", "site", "responsibility_rule"]
LINE_TABLES: tuple[LineTable, ...] = ("jurisdiction", "site", "responsibility_rule")
#: ``as_of`` given as a word: the moment the issue was reported (recorded).
REPORTED = "reported"


@dataclass(frozen=True)
class LineVersion:
    """One version of a line: which row, what it said, and when it held."""

    table: LineTable
    id: int
    version_id: int
    code: str | None
    name: str
    unit: str | None
    valid_from: datetime
    valid_to: datetime | None


@dataclass(frozen=True)
class Answer:
    """An issue's ground and units as the system answered at a moment (codes and names).

    ``unknown`` names the answer's columns the trail cannot tell (an admin's hand assignment
    records the unit it gave, not the one it took from); those fields are None.
    """

    jurisdiction: str | None
    jurisdiction_name: str | None
    site: str | None
    site_name: str | None
    territorial_unit: str | None
    territorial_unit_name: str | None
    functional_unit: str | None
    functional_unit_name: str | None
    lead_unit: str | None
    lead_unit_name: str | None
    on_boundary: bool | None
    outside_all: bool | None
    via_buffer: bool | None
    unknown: list[str]


@dataclass(frozen=True)
class AsOf:
    """An issue's answer at ``at`` and the lines valid then.

    ``history_from`` is when the lines' history starts (migration 0026, or the first
    version of a line); before it no version is known and ``lines`` may be incomplete.
    """

    at: datetime
    requested: str
    answer: Answer
    lines: list[LineVersion]
    history_from: datetime | None


def parse_as_of(value: str) -> str | datetime:
    """``reported`` or an ISO 8601 date-time with its offset; ValidationFailed otherwise."""
    text = value.strip()
    if text == REPORTED:
        return REPORTED
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        message = ("as_of 须为 reported 或带时区的 ISO 8601 时间 / as_of must be 'reported' or "
                   f"an ISO 8601 date-time with its offset, not {quoted(value[:40])}")
        raise ValidationFailed(message, details=[{"field": "as_of", "message": message}])
    return at


def as_of(conn: psycopg.Connection[Any], public_id: str, when: str | datetime) -> AsOf:
    """The answer of issue ``public_id`` at ``when`` (:data:`REPORTED` or a time), from its
    trail, with the versions of the lines valid then.

    ``reported`` is the moment the issue was recorded (its report time, or the time it
    entered the system if it was imported later): the answer given when it was reported.
    A time before the issue was reported is refused (ValidationFailed).
    """
    row = conn.execute(
        sql.SQL("SELECT id, reported_at, greatest(reported_at, created_at), category_code,"
                " geom FROM issue i WHERE {}").format(partitions.ISSUE_BY_PUBLIC_ID),
        [public_id]).fetchone()
    if row is None:
        raise NotFound(f"no issue {quoted(public_id)}")
    issue_id, reported_at, recorded_at, category, geom = row
    if isinstance(when, str):
        at = recorded_at
    elif when < reported_at:
        message = (f"as_of 早于问题上报时间 {reported_at.isoformat()} / as_of is before the "
                   f"issue was reported ({reported_at.isoformat()})")
        raise ValidationFailed(message, details=[{"field": "as_of", "message": message}])
    else:
        # Between a back-dated report and its import the system had not answered yet: the
        # answer it gave on import is the first there is.
        at = max(when, recorded_at)
    values = _answer_values(conn, issue_id, at)
    answer = _named(conn, values, at)
    lines = _lines_then(conn, values, at, category, geom)
    history = conn.execute(
        "SELECT min(valid_from) FROM (SELECT min(valid_from) AS valid_from FROM"
        " jurisdiction_version UNION ALL SELECT min(valid_from) FROM site_version) x"
        ).fetchone()
    return AsOf(at=at, requested=when if isinstance(when, str) else when.isoformat(),
                answer=answer, lines=lines, history_from=history[0] if history else None)


def _answer_values(conn: psycopg.Connection[Any], issue_id: int, at: datetime
                   ) -> dict[str, Any]:
    """The answer's columns at ``at`` (SQL issue_answer_value_at); a column the trail cannot
    tell is missing from the mapping."""
    selects = sql.SQL(", ").join(
        sql.SQL("issue_answer_value_at(%(id)s, %(at)s, {}) #>> '{{}}' AS {}").format(
            sql.Literal(c), sql.Identifier(c)) for c in RESULT_COLUMNS)
    # Each value is tested apart: JSON null (a known "none") and SQL NULL (unknown) differ.
    known = sql.SQL(", ").join(
        sql.SQL("issue_answer_value_at(%(id)s, %(at)s, {}) IS NOT NULL AS {}").format(
            sql.Literal(c), sql.Identifier("known_" + c)) for c in RESULT_COLUMNS)
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(sql.SQL("SELECT {}, {}").format(selects, known),
                          {"id": issue_id, "at": at}).fetchone()
    assert row is not None
    out: dict[str, Any] = {}
    for column in RESULT_COLUMNS:
        if not row["known_" + column]:
            continue
        text = row[column]
        if text is None:
            out[column] = None
        elif text in ("true", "false"):
            out[column] = text == "true"
        else:
            out[column] = int(text)
    return out


def _named(conn: psycopg.Connection[Any], values: dict[str, Any], at: datetime) -> Answer:
    """The answer by code and name: places as their versions valid at ``at`` named them
    (a renamed grid shows its old name), units as they are named now (units keep no
    history)."""
    row = conn.execute("""
        SELECT (SELECT code FROM jurisdiction_version WHERE id = %(j)s AND valid_from <= %(at)s
                ORDER BY valid_from DESC LIMIT 1),
               (SELECT name FROM jurisdiction_version WHERE id = %(j)s AND valid_from <= %(at)s
                ORDER BY valid_from DESC LIMIT 1),
               (SELECT coalesce(code, name) FROM site_version WHERE id = %(s)s
                AND valid_from <= %(at)s ORDER BY valid_from DESC LIMIT 1),
               (SELECT name FROM site_version WHERE id = %(s)s AND valid_from <= %(at)s
                ORDER BY valid_from DESC LIMIT 1),
               (SELECT code FROM jurisdiction WHERE id = %(j)s),
               (SELECT name FROM jurisdiction WHERE id = %(j)s),
               (SELECT code FROM site WHERE id = %(s)s), (SELECT name FROM site WHERE id = %(s)s)
        """, {"j": values.get("jurisdiction_id"), "s": values.get("site_id"), "at": at}
                       ).fetchone()
    assert row is not None
    units = _unit_names(conn, [values.get(c) for c in
                               ("territorial_unit_id", "functional_unit_id", "lead_unit_id")])

    def unit(column: str) -> tuple[str | None, str | None]:
        found = units.get(values.get(column) or 0)
        return (None, None) if found is None else found

    territorial, functional, lead = (unit("territorial_unit_id"), unit("functional_unit_id"),
                                     unit("lead_unit_id"))
    return Answer(
        # A line older than its history (before migration 0026) is named as it is now.
        jurisdiction=row[0] or row[4], jurisdiction_name=row[1] or row[5],
        site=row[2] or row[6], site_name=row[3] or row[7],
        territorial_unit=territorial[0], territorial_unit_name=territorial[1],
        functional_unit=functional[0], functional_unit_name=functional[1],
        lead_unit=lead[0], lead_unit_name=lead[1],
        on_boundary=values.get("on_boundary"), outside_all=values.get("outside_all"),
        via_buffer=values.get("via_buffer"),
        unknown=[c for c in RESULT_COLUMNS if c not in values])


def _unit_names(conn: psycopg.Connection[Any], ids: list[Any]
                ) -> dict[int, tuple[str, str]]:
    rows = conn.execute("SELECT id, code, name FROM unit WHERE id = ANY(%s)",
                        [[i for i in ids if i is not None]]).fetchall()
    return {int(r[0]): (r[1], r[2]) for r in rows}


_VALID_AT = "valid_from <= %(at)s AND (valid_to IS NULL OR valid_to > %(at)s)"


def _lines_then(conn: psycopg.Connection[Any], values: dict[str, Any], at: datetime,
                category: str, geom: Any) -> list[LineVersion]:
    """The versions valid at ``at`` that bear on the issue: the jurisdictions whose area held
    its point then and those of the answer with their parents, the site of the answer, and
    the rules that could name its functional unit (its category's, its places')."""
    with conn.cursor(row_factory=class_row(LineVersion)) as cur:
        return cur.execute(sql.SQL("""
            WITH RECURSIVE ground AS (
                SELECT * FROM jurisdiction_version
                WHERE {valid} AND (id = %(j)s OR ST_Intersects(geom, %(geom)s::geometry))
                UNION
                SELECT p.* FROM jurisdiction_version p JOIN ground g ON p.id = g.parent_id
                WHERE p.valid_from <= %(at)s AND (p.valid_to IS NULL OR p.valid_to > %(at)s)
            ), place AS (
                SELECT * FROM site_version WHERE {valid} AND id = %(s)s
            )
            SELECT 'jurisdiction' AS "table", g.id, g.version_id, g.code, g.name,
                   u.code AS unit, g.valid_from, g.valid_to
            FROM ground g LEFT JOIN unit u ON u.id = g.unit_id
            UNION ALL
            SELECT 'site', p.id, p.version_id, p.code, p.name, u.code, p.valid_from,
                   p.valid_to
            FROM place p LEFT JOIN unit u ON u.id = p.unit_id
            UNION ALL
            SELECT 'responsibility_rule', r.id, r.version_id,
                   concat_ws(' / ', coalesce(r.category_code, '*'),
                             coalesce((SELECT code FROM ground WHERE id = r.jurisdiction_id
                                       LIMIT 1), '*'),
                             coalesce((SELECT coalesce(code, name) FROM place
                                       WHERE id = r.site_id LIMIT 1), '*')),
                   coalesce(r.task, ''), u.code, r.valid_from, r.valid_to
            FROM responsibility_rule_version r LEFT JOIN unit u ON u.id = r.unit_id
            WHERE r.valid_from <= %(at)s AND (r.valid_to IS NULL OR r.valid_to > %(at)s)
              AND (r.category_code IS NULL OR r.category_code = %(category)s)
              AND (r.jurisdiction_id IS NULL OR r.jurisdiction_id IN (SELECT id FROM ground))
              AND (r.site_id IS NULL OR r.site_id IN (SELECT id FROM place))
            ORDER BY 1, 3""").format(valid=sql.SQL(_VALID_AT)), {
                "at": at, "j": values.get("jurisdiction_id"), "s": values.get("site_id"),
                "geom": geom, "category": category}).fetchall()


def record_line_change(conn: psycopg.Connection[Any], origin: revisions.Origin, *,
                       actor: str, examined: int = 0) -> int | None:
    """Make sure lines changed in this transaction belong to a revision; its id.

    A reassignment stores a revision only when issues move; an edit or import that changes
    lines but moves none (a rename, a rule for a category nobody reported yet) is stored here
    as a revision with no changes, so that every version of a line names the revision that
    wrote it (for revert and its refusals). None when no line changed and no revision exists.
    """
    row = conn.execute("""
        SELECT (SELECT id FROM revision WHERE xact = pg_current_xact_id() ORDER BY id
                LIMIT 1),
               EXISTS (SELECT 1 FROM jurisdiction_version WHERE xact_from = pg_current_xact_id()
                       OR xact_to = pg_current_xact_id())
               OR EXISTS (SELECT 1 FROM site_version WHERE xact_from = pg_current_xact_id()
                          OR xact_to = pg_current_xact_id())
               OR EXISTS (SELECT 1 FROM responsibility_rule_version
                          WHERE xact_from = pg_current_xact_id()
                          OR xact_to = pg_current_xact_id())""").fetchone()
    assert row is not None
    existing, changed = row
    if existing is not None or not changed:
        return None if existing is None else int(existing)
    return revisions.record_empty(conn, origin, actor=actor, examined=examined)
