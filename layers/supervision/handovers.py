"""The line/block hand-over matrix (条块移交矩阵): how often issues pass from one responsible
unit to another, territorial (属地, a community) or functional (职能部门), which shows where
responsibility between line and block is unclear (推诿).

A hand-over is a change of the unit answering for an issue, read from its audit trail (the
view ``issue_trail``: its events and its revision changes), from one unit to another:

- **reassign**: a revision (an import, a boundary or site edit, ``sitewatch reassign``) moved
  the issue's lead unit from one unit to another;
- **assign**: a supervisor assigned the issue to a unit other than the lead it already had;
- **rework** (返工): verification failed on a rectification made by another of the issue's
  units than its lead (e.g. the community tidied up what the department leads), and the issue
  went back to its lead. The rectifying unit is the one whose upload the rectification's
  evidence is (evidence_upload); one made by the office on a unit's behalf names none.

A first assignment (from no unit) is no hand-over, nor is a rework of the lead's own fix.
The lifecycle has no dispute or refusal by a unit (layers.issues.lifecycle: ``reject`` is the
supervisor's refusal of a report), so there is no dispute kind to count.

As in the scores, issues count in the period by the time they were reported, and their
hand-overs up to now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import psycopg
from psycopg.rows import class_row

from layers.vocab import UNIT_KINDS, UnitKind

Move = Literal["reassign", "assign", "rework"]
MOVES: tuple[Move, ...] = get_args(Move)

_MATRIX = """
WITH scope AS (
    SELECT i.id, i.lead_unit_id, i.territorial_unit_id, i.functional_unit_id
    FROM issue i
    WHERE i.reported_at >= %(since)s AND i.reported_at < %(until)s
), trail AS (
    -- The lead unit each event or revision change set (none for the others). A 'reassign'
    -- names what changed as [old, new] (revision changes, and events since 8c2e701) or,
    -- in the first events, the whole assignment before and after.
    SELECT s.id AS issue_id, s.lead_unit_id, s.territorial_unit_id, s.functional_unit_id,
           t.at, t.event_id, t.revision_id, t.action, t.data,
           CASE WHEN t.action = 'reassign' AND t.data ? 'after'
                    THEN (t.data -> 'before' ->> 'lead_unit_id')::bigint
                WHEN t.action = 'reassign' THEN (t.data -> 'lead_unit_id' ->> 0)::bigint
           END AS lead_was,
           CASE WHEN t.action = 'reassign' AND t.data ? 'after'
                    THEN (t.data -> 'after' ->> 'lead_unit_id')::bigint
                WHEN t.action = 'reassign' THEN (t.data -> 'lead_unit_id' ->> 1)::bigint
                WHEN t.action = 'assign' AND t.data ? 'lead_unit'
                    THEN (SELECT u.id FROM unit u WHERE u.code = t.data ->> 'lead_unit')
                WHEN t.action = 'assign'
                     AND jsonb_typeof(t.data -> 'lead_unit_id') = 'number'
                    THEN (t.data ->> 'lead_unit_id')::bigint
           END AS lead_set
    FROM scope s JOIN issue_trail t ON t.issue_id = s.id
    WHERE t.action IN ('assign', 'reassign', 'reopen')
), ordered AS (
    SELECT *, count(lead_set) OVER w AS run
    FROM trail
    WINDOW w AS (PARTITION BY issue_id ORDER BY at, event_id NULLS LAST, revision_id)
), current AS (
    -- The lead after each row: the one the last row setting a lead set.
    SELECT *, max(lead_set) OVER (PARTITION BY issue_id, run) AS lead_after
    FROM ordered
), moves AS (
    SELECT action, issue_id, lead_was, lead_set, lead_unit_id, territorial_unit_id,
           functional_unit_id, at, event_id, data, lead_after,
           lag(lead_after) OVER (PARTITION BY issue_id
                                 ORDER BY at, event_id NULLS LAST, revision_id) AS lead_before
    FROM current
), pairs AS (
    SELECT 'reassign' AS move, lead_was AS from_id, lead_set AS to_id
    FROM moves WHERE action = 'reassign'
    UNION ALL
    SELECT 'assign', lead_before, lead_set FROM moves
    WHERE action = 'assign' AND data ? 'lead_unit'
    UNION ALL
    SELECT 'rework', fixed.unit_id, coalesce(m.lead_after, m.lead_unit_id)
    FROM moves m
    CROSS JOIN LATERAL (
        SELECT e.evidence FROM issue_event e
        WHERE e.issue_id = m.issue_id AND e.action = 'rectify' AND e.at <= m.at
        ORDER BY e.at DESC, e.id DESC LIMIT 1) r
    CROSS JOIN LATERAL (
        SELECT min(up.unit_id) AS unit_id
        FROM jsonb_array_elements_text(r.evidence) ref
        JOIN evidence_upload up ON up.sha256 = substr(ref, length('sha256:') + 1)
        WHERE up.unit_id IN (m.lead_unit_id, m.territorial_unit_id, m.functional_unit_id)
    ) fixed
    WHERE m.action = 'reopen'
)
SELECT f.code AS from_code, f.name AS from_name, f.kind AS from_kind,
       t.code AS to_code, t.name AS to_name, t.kind AS to_kind,
       f.kind || '->' || t.kind AS direction,
       count(*) FILTER (WHERE p.move = 'reassign') AS reassign,
       count(*) FILTER (WHERE p.move = 'assign') AS assign,
       count(*) FILTER (WHERE p.move = 'rework') AS rework,
       count(*) AS total
FROM pairs p JOIN unit f ON f.id = p.from_id JOIN unit t ON t.id = p.to_id
WHERE p.from_id <> p.to_id
GROUP BY f.code, f.name, f.kind, t.code, t.name, t.kind
ORDER BY total DESC, f.code, t.code
"""


@dataclass(frozen=True)
class Pair:
    """Hand-overs from one unit to another, by kind of move, in a period."""

    from_code: str
    from_name: str
    from_kind: UnitKind
    to_code: str
    to_name: str
    to_kind: UnitKind
    direction: str  # territorial->functional and the like
    reassign: int
    assign: int
    rework: int
    total: int


@dataclass(frozen=True)
class Direction:
    """Hand-overs between the kinds of unit: territorial->functional (块转条),
    functional->territorial (条转块), territorial->territorial, functional->functional."""

    direction: str
    reassign: int
    assign: int
    rework: int
    total: int


@dataclass(frozen=True)
class Matrix:
    """The hand-over matrix of a period: per kind of unit pair and per pair of units,
    highest first."""

    since: datetime
    until: datetime
    directions: list[Direction]
    pairs: list[Pair]


def matrix(conn: psycopg.Connection[Any], *, since: datetime, until: datetime) -> Matrix:
    """Hand-overs of the issues reported in ``[since, until)``, per unit pair and per kind of
    pair; bound the period first (layers.supervision.scores.check_budget)."""
    with conn.cursor(row_factory=class_row(Pair)) as cur:
        pairs = cur.execute(_MATRIX, {"since": since, "until": until}).fetchall()
    return Matrix(since=since, until=until, directions=directions(pairs), pairs=pairs)


def directions(pairs: list[Pair]) -> list[Direction]:
    """The four kinds of pair, each summed over ``pairs``, highest total first (ties in the
    order territorial->functional, functional->territorial, then the same-kind ones).

    >>> p = Pair("C1", "湖东社区", "territorial", "CG", "城管", "functional",
    ...          "territorial->functional", 2, 0, 1, 3)
    >>> [(d.direction, d.total) for d in directions([p])][:2]
    [('territorial->functional', 3), ('functional->territorial', 0)]
    """
    block, line = UNIT_KINDS
    out = []
    for a, b in ((block, line), (line, block), (block, block), (line, line)):
        chosen = [p for p in pairs if (p.from_kind, p.to_kind) == (a, b)]
        reassign, assign, rework = (sum(getattr(p, m) for p in chosen) for m in MOVES)
        out.append(Direction(f"{a}->{b}", reassign, assign, rework,
                             reassign + assign + rework))
    return sorted(out, key=lambda d: -d.total)
