"""Scores and rankings ("谁丢分、谁负责"): points at risk and points lost, per unit or community.

- **Points at risk**: open issues (reported, assigned, rectified) times their category's points
  under the assessment standard: what an unannounced assessor would find today.
- **Points lost**: issues found by external assessment (测评), and issues that ran past their
  deadline (still open after it, or closed after it), each counted once at its category's
  points.
- **On-time closure rate** (按期结案率): verified issues closed by their deadline over all
  verified issues; **reworks** (返工) count failed verifications.

Issues count in the period by the time they were reported. A unit is charged for the issues it
leads; a community for the issues on its ground (its own polygon and its grids').
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

Group = Literal["unit", "community"]

_MEASURES = sql.SQL("""
    count(*) AS issues,
    count(*) FILTER (WHERE i.status IN ('reported', 'assigned', 'rectified')) AS open,
    count(*) FILTER (WHERE i.status IN ('reported', 'assigned', 'rectified')
                     AND i.deadline < now()) AS overdue_open,
    coalesce(sum(c.points) FILTER (WHERE i.status IN ('reported', 'assigned', 'rectified')),
             0)::float8 AS points_at_risk,
    coalesce(sum(c.points) FILTER (
        WHERE i.status NOT IN ('rejected', 'duplicate')
          AND (i.source = 'external_assessment'
               OR (i.deadline IS NOT NULL AND coalesce(i.closed_at, now()) > i.deadline))),
        0)::float8 AS points_lost,
    coalesce(sum(i.rework_count), 0)::int AS reworks,
    round(count(*) FILTER (WHERE i.status = 'verified' AND i.closed_at <= i.deadline)::numeric
          / nullif(count(*) FILTER (WHERE i.status = 'verified'), 0), 3)::float8
        AS on_time_rate
""")

_BY_UNIT = sql.SQL("""
    SELECT u.code, u.name, u.kind, {measures}
    FROM issue i JOIN category c ON c.code = i.category_code
    JOIN unit u ON u.id = i.lead_unit_id
    WHERE i.reported_at >= %(since)s AND i.reported_at < %(until)s
    GROUP BY u.code, u.name, u.kind
""")

_BY_COMMUNITY = sql.SQL("""
    SELECT m.code, m.name, 'community' AS kind, {measures}
    FROM issue i JOIN category c ON c.code = i.category_code
    JOIN jurisdiction j ON j.id = i.jurisdiction_id
    JOIN jurisdiction m ON m.level = 'community'
        AND (m.id = j.id OR m.id = j.parent_id)
    WHERE i.reported_at >= %(since)s AND i.reported_at < %(until)s
    GROUP BY m.code, m.name
""")


def ranking(conn: psycopg.Connection[Any], *, group: Group = "unit",
            since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Units or communities ranked by points lost, then points at risk (worst first)."""
    base = _BY_UNIT if group == "unit" else _BY_COMMUNITY
    query = sql.SQL("SELECT rank() OVER (ORDER BY points_lost DESC, points_at_risk DESC) AS rank,"
                    " * FROM ({}) s ORDER BY rank, code").format(base.format(measures=_MEASURES))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, {"since": since, "until": until}).fetchall()
