"""Scores and rankings ("谁丢分、谁负责"): points at risk and points lost, per responsible
unit, community or monitored site.

- **Points at risk**: open issues (reported, assigned, rectified) times their category's points
  under the assessment standard: what an unannounced assessor would find today.
- **Overdue open** (超期未结): open issues past their deadline now (SQL ``issue_is_overdue``).
- **Points lost**: issues found by external assessment (测评), and issues that ran past their
  deadline (still open after it, or closed after it: SQL ``issue_ran_past_deadline``, a wider
  set than overdue), each counted once at its category's points.
- **On-time closure rate** (按期结案率): verified issues closed by their deadline over all
  verified issues.
- **Reworks** (返工次数): failed verifications, all of them.
- **Rework rate** (返工率): issues sent back at least once over issues that reached
  rectification (rectified, verified, or reworked and still going). This is the case-based
  count of the digital urban management evaluation (数字城管综合评价: 返工案卷数 / 处置案卷数):
  a case redone twice counts once, so the rate stays between 0 and 100 %, and issues nobody
  has tried to fix yet neither help nor hurt it.
- **Average time to rectify** (平均整改用时): hours from the report to the unit's *first*
  rectification (the first ``rectify`` event), over the issues rectified at least once. The
  first one measures how fast a unit responds; whether the fix held is the rework rate's job,
  so a sloppy quick fix is caught there instead of being blurred into this number.

Issues count in the period by the time they were reported; the measures describe those issues
as they stand now. A unit is charged for the issues it leads; a community for the issues on
its ground (its own polygon and its grids'); a site for the issues linked to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from geo.hotspots.budget import Limits
from layers.analysis import budget

Group = Literal["unit", "community", "site"]
GROUPS: tuple[Group, ...] = ("unit", "community", "site")

# Whether issue ``i`` lost its category's points (one definition: rankings and maps).
LOST = sql.SQL("""i.status NOT IN ('rejected', 'duplicate')
    AND (i.source = 'external_assessment'
         OR issue_ran_past_deadline(i.deadline, i.closed_at, now()))""")

_MEASURES = sql.SQL("""
    count(*) AS issues,
    count(*) FILTER (WHERE issue_is_open(i.status)) AS open,
    count(*) FILTER (WHERE issue_is_overdue(i.status, i.deadline, now())) AS overdue_open,
    coalesce(sum(c.points) FILTER (WHERE issue_is_open(i.status)), 0)::float8
        AS points_at_risk,
    coalesce(sum(c.points) FILTER (WHERE {lost}), 0)::float8 AS points_lost,
    coalesce(sum(i.rework_count), 0)::int AS reworks,
    round(count(*) FILTER (WHERE i.rework_count > 0)::numeric
          / nullif(count(*) FILTER (WHERE i.status IN ('rectified', 'verified')
                                    OR i.rework_count > 0), 0), 3)::float8 AS rework_rate,
    round((avg(extract(epoch FROM r.first_at - i.reported_at)) / 3600)::numeric, 1)::float8
        AS avg_hours_to_rectify,
    round(count(*) FILTER (WHERE i.status = 'verified' AND i.closed_at <= i.deadline)::numeric
          / nullif(count(*) FILTER (WHERE i.status = 'verified'), 0), 3)::float8
        AS on_time_rate
""").format(lost=LOST)

# The first rectification of each issue; the (issue_id, at) index answers it per issue.
_FIRST_RECTIFY = sql.SQL("""
    LEFT JOIN LATERAL (SELECT min(e.at) AS first_at FROM issue_event e
                       WHERE e.issue_id = i.id AND e.action = 'rectify') r ON true
""")

_BY_UNIT = sql.SQL("""
    SELECT u.code, u.name, u.kind, NULL::text AS layer, {measures}
    FROM issue i JOIN category c ON c.code = i.category_code {first_rectify}
    JOIN unit u ON u.id = i.lead_unit_id
    WHERE i.reported_at >= %(since)s AND i.reported_at < %(until)s
    GROUP BY u.code, u.name, u.kind
""")

_BY_COMMUNITY = sql.SQL("""
    SELECT m.code, m.name, 'community' AS kind, NULL::text AS layer, {measures}
    FROM issue i JOIN category c ON c.code = i.category_code {first_rectify}
    JOIN jurisdiction j ON j.id = i.jurisdiction_id
    JOIN jurisdiction m ON m.level = 'community'
        AND (m.id = j.id OR m.id = j.parent_id)
    WHERE i.reported_at >= %(since)s AND i.reported_at < %(until)s
    GROUP BY m.code, m.name
""")

# Site codes are optional, so a site is grouped by its id and may show no code.
_BY_SITE = sql.SQL("""
    SELECT s.code, s.name, 'site' AS kind, s.layer, {measures}
    FROM issue i JOIN category c ON c.code = i.category_code {first_rectify}
    JOIN site s ON s.id = i.site_id
    WHERE i.reported_at >= %(since)s AND i.reported_at < %(until)s
    GROUP BY s.id, s.code, s.name, s.layer
""")
_BASES = {"unit": _BY_UNIT, "community": _BY_COMMUNITY, "site": _BY_SITE}


@dataclass(frozen=True)
class Score:
    """One unit's, community's or site's standing in a period (the measures above)."""

    rank: int
    code: str | None  # a site may have no code
    name: str
    kind: str  # territorial, functional (units), community or site
    layer: str | None  # sites only
    issues: int
    open: int
    overdue_open: int
    points_at_risk: float
    points_lost: float
    reworks: int
    rework_rate: float | None
    on_time_rate: float | None
    avg_hours_to_rectify: float | None


def ranking(conn: psycopg.Connection[Any], *, group: Group = "unit",
            since: datetime, until: datetime) -> list[Score]:
    """Units, communities or sites ranked by points lost, then points at risk (worst first)."""
    base = _BASES[group].format(measures=_MEASURES, first_rectify=_FIRST_RECTIFY)
    query = sql.SQL("SELECT rank() OVER (ORDER BY points_lost DESC, points_at_risk DESC) AS rank,"
                    " * FROM ({}) s ORDER BY rank, code, name").format(base)
    with conn.cursor(row_factory=class_row(Score)) as cur:
        return cur.execute(query, {"since": since, "until": until}).fetchall()


def check_budget(conn: psycopg.Connection[Any], *, since: datetime, until: datetime,
                 limit: Limits) -> None:
    """Refuse (:class:`layers.analysis.budget.OverBudget`) a period of more issues than ``limit``
    lets one analysis read; one count on the reported_at index."""
    rows, _ = budget.count_issues(conn, sql.SQL("i.reported_at >= %s AND i.reported_at < %s"),
                                  [since, until])
    budget.check_rows(rows, limit, ("since", "until", "phase"))
