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

Every rate comes with its 95 % Wilson interval (``*_low``, ``*_high``) and an empirical-Bayes
rate (``*_adjusted``: the unit's own rate shrunk toward the overall rate of all the ranked
groups, the more the fewer its cases; layers.supervision.rates), with the cases it counts over
(``rework_cases``, ``on_time_cases``).

**Order**: by default points lost, then points at risk (worst first): totals in the
assessment's own currency, which a small unit cannot top by the luck of a few cases. A ranking
by a rate (``sort``) ranks only the groups with at least ``min_cases`` cases for that rate
(Settings.rank_min_cases) and lists the others after them, unranked and marked
``too_few_cases`` (案卷过少，不排名); the adjusted rate is the one offered for that ranking, as
it weighs a rate by the evidence behind it where the raw rate of a unit just over the minimum
still moves 5 points a case.

Issues count in the period by the time they were reported; the measures describe those issues
as they stand now. A unit is charged for the issues it leads; a community for the issues on
its ground (its own polygon and its grids'); a street for the issues on its ground (its
communities' and grids': the issue's ``street_id``, migration 0032, kept in the tallies by
0033); a site for the issues linked to
it. So a street's figures are the sums of its communities' (plus any issue on the street's
own polygon outside every community), and the streets' together the units'.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, get_args

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import class_row

from geo.hotspots.budget import Limits
from layers.analysis import budget, tallies
from layers.catalog.periods import Period
from layers.supervision import rates

Group = Literal["unit", "community", "site"]
GROUPS: tuple[Group, ...] = get_args(Group)
# What a ranking can group by: the groups above, and streets for layers.supervision.street_ranking,
# which adds their ranks on each measure.
Grouping = Group | Literal["street"]

# Whether issue ``i`` lost its category's points (one definition: rankings and maps).
LOST = sql.SQL("""i.status NOT IN ('rejected', 'duplicate')
    AND (i.source = 'external_assessment'
         OR issue_ran_past_deadline(i.deadline, i.closed_at, now()))""")

# The measures from the scores' tallies ``t`` (layers.analysis.tallies: duty_day, duty_month)
# joined with the category ``c``; "now" is the reading's moment.
_MEASURES = sql.SQL("""
    sum(t.n)::bigint AS issues,
    coalesce(sum(t.n) FILTER (WHERE t.open), 0)::bigint AS open,
    coalesce(sum(t.n) FILTER (WHERE t.open AND t.deadline < now()), 0)::bigint AS overdue_open,
    coalesce(sum(t.n * c.points) FILTER (WHERE t.open), 0)::float8 AS points_at_risk,
    coalesce(sum(t.n * c.points) FILTER (WHERE NOT t.dismissed AND (t.assessed OR t.late
                                         OR (t.open AND t.deadline < now()))), 0)::float8
        AS points_lost,
    sum(t.reworks)::int AS reworks,
    sum(t.reworked)::bigint AS reworked,
    sum(t.rework_cases)::bigint AS rework_cases,
    coalesce(sum(t.n) FILTER (WHERE t.on_time), 0)::bigint AS on_time,
    coalesce(sum(t.n) FILTER (WHERE t.verified), 0)::bigint AS on_time_cases,
    round((sum(t.rectify_seconds) / nullif(sum(t.rectified), 0) / 3600)::numeric, 1)::float8
        AS avg_hours_to_rectify
""")

_BY_UNIT = sql.SQL("""
    SELECT u.code, u.name, u.kind, NULL::text AS layer, {measures}
    FROM {source} t JOIN category c ON c.code = t.category_code
    JOIN unit u ON u.id = t.lead_unit_id
    GROUP BY u.code, u.name, u.kind
""")

_BY_COMMUNITY = sql.SQL("""
    SELECT m.code, m.name, 'community' AS kind, NULL::text AS layer, {measures}
    FROM {source} t JOIN category c ON c.code = t.category_code
    JOIN jurisdiction j ON j.id = t.jurisdiction_id
    JOIN jurisdiction m ON m.level = 'community'
        AND (m.id = j.id OR m.id = j.parent_id)
    GROUP BY m.code, m.name
""")

# Site codes are optional, so a site is grouped by its id and may show no code.
_BY_SITE = sql.SQL("""
    SELECT s.code, s.name, 'site' AS kind, s.layer, {measures}
    FROM {source} t JOIN category c ON c.code = t.category_code
    JOIN site s ON s.id = t.site_id
    GROUP BY s.id, s.code, s.name, s.layer
""")
_BY_STREET = sql.SQL("""
    SELECT st.code, st.name, 'street' AS kind, NULL::text AS layer, {measures}
    FROM {source} t JOIN category c ON c.code = t.category_code
    JOIN jurisdiction st ON st.id = t.street_id
    GROUP BY st.code, st.name
""")
_BASES = {"unit": _BY_UNIT, "community": _BY_COMMUNITY, "site": _BY_SITE, "street": _BY_STREET}


#: What a ranking orders by: points (lost, then at risk), or one rate, adjusted or raw.
Sort = Literal["points", "rework_rate_adjusted", "on_time_rate_adjusted", "rework_rate",
               "on_time_rate"]
SORTS: tuple[Sort, ...] = get_args(Sort)
# Which way is worse for each rate: more rework, fewer closed on time.
_WORST_HIGH = {"rework_rate": True, "on_time_rate": False}


@dataclass(frozen=True)
class _Counts:
    """One group's measures as SQL counts them (the rates' numerators and denominators)."""

    code: str | None
    name: str
    kind: str
    layer: str | None
    issues: int
    open: int
    overdue_open: int
    points_at_risk: float
    points_lost: float
    reworks: int
    reworked: int
    rework_cases: int
    on_time: int
    on_time_cases: int
    avg_hours_to_rectify: float | None


@dataclass(frozen=True)
class Score:
    """One unit's, community's or site's standing in a period (the measures above).

    ``rank`` is None, and ``too_few_cases`` true, for a group a rate ranking leaves unranked.
    """

    rank: int | None
    code: str | None  # a site may have no code
    name: str
    kind: str  # territorial, functional (units), community, street or site
    layer: str | None  # sites only
    issues: int
    open: int
    overdue_open: int
    points_at_risk: float
    points_lost: float
    reworks: int
    rework_cases: int
    rework_rate: float | None
    rework_rate_low: float | None
    rework_rate_high: float | None
    rework_rate_adjusted: float | None
    on_time_cases: int
    on_time_rate: float | None
    on_time_rate_low: float | None
    on_time_rate_high: float | None
    on_time_rate_adjusted: float | None
    avg_hours_to_rectify: float | None
    too_few_cases: bool


def ranking(conn: psycopg.Connection[Any], *, group: Grouping = "unit",
            since: datetime, until: datetime, sort: Sort = "points",
            min_cases: int = rates.MIN_CASES) -> list[Score]:
    """Units, communities, streets or sites ranked worst first by ``sort`` (points lost, then points
    at risk, by default); under a rate, the groups with fewer than ``min_cases`` cases for it
    follow the ranked ones, unranked."""
    first, end = tallies.local_days(Period(since, until), tallies.basis_zone(conn))
    source, params = tallies.period_source(first, end, family="duty")
    base = _BASES[group].format(measures=_MEASURES, source=source)
    query = sql.SQL("SELECT * FROM ({}) s ORDER BY code, name").format(base)
    with conn.cursor(row_factory=class_row(_Counts)) as cur:
        counted = cur.execute(query, params).fetchall()
    return ranked(rated(counted), sort, min_cases)


def empty(code: str, name: str, kind: str) -> Score:
    """The score of a group none of whose issues fall in the period: zeros, no rates."""
    zero = _Counts(code=code, name=name, kind=kind, layer=None, issues=0, open=0,
                   overdue_open=0, points_at_risk=0.0, points_lost=0.0, reworks=0, reworked=0,
                   rework_cases=0, on_time=0, on_time_cases=0, avg_hours_to_rectify=None)
    return rated([zero])[0]


def _rounded(values: np.ndarray[Any, np.dtype[np.float64]]) -> list[float | None]:
    return [None if np.isnan(v) else round(float(v), 3) for v in values]


def rated(counted: list[_Counts]) -> list[Score]:
    """Scores with each rate, its Wilson interval and its adjusted rate (unranked)."""
    columns: dict[str, list[float | None]] = {}
    for name, hits, cases in (("rework_rate", "reworked", "rework_cases"),
                              ("on_time_rate", "on_time", "on_time_cases")):
        x = np.array([getattr(c, hits) for c in counted], dtype=np.float64)
        n = np.array([getattr(c, cases) for c in counted], dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            columns[name] = _rounded(x / n)
        low, high = rates.wilson(x, n)
        columns[f"{name}_low"], columns[f"{name}_high"] = _rounded(low), _rounded(high)
        columns[f"{name}_adjusted"] = _rounded(rates.shrunk(x, n))
    return [Score(rank=None, code=c.code, name=c.name, kind=c.kind, layer=c.layer,
                  issues=c.issues, open=c.open, overdue_open=c.overdue_open,
                  points_at_risk=c.points_at_risk, points_lost=c.points_lost,
                  reworks=c.reworks, rework_cases=c.rework_cases,
                  on_time_cases=c.on_time_cases, avg_hours_to_rectify=c.avg_hours_to_rectify,
                  too_few_cases=False, **{k: v[i] for k, v in columns.items()})
            for i, c in enumerate(counted)]


def ranked(scores: list[Score], sort: Sort, min_cases: int) -> list[Score]:
    """``scores`` ordered worst first by ``sort`` with competition ranks (1, 2, 2, 4); under a
    rate, those with fewer than ``min_cases`` cases for it (or no rate) follow, unranked and
    marked ``too_few_cases``, in their given order."""
    def key(s: Score) -> tuple[float, ...]:
        if sort == "points":
            return (-s.points_lost, -s.points_at_risk)
        value = getattr(s, sort)
        return (-value if _WORST_HIGH[sort.removesuffix("_adjusted")] else value,)

    if sort == "points":
        ranked_rows, unranked = scores, []
    else:
        cases = sort.removesuffix("_rate_adjusted").removesuffix("_rate") + "_cases"
        enough = [getattr(s, cases) >= min_cases and getattr(s, sort) is not None
                  for s in scores]
        ranked_rows = [s for s, ok in zip(scores, enough, strict=True) if ok]
        unranked = [replace(s, too_few_cases=True)
                    for s, ok in zip(scores, enough, strict=True) if not ok]
    ordered = sorted(ranked_rows, key=key)
    out: list[Score] = []
    for position, s in enumerate(ordered, start=1):
        tied = bool(out) and key(out[-1]) == key(s)
        out.append(replace(s, rank=out[-1].rank if tied else position))
    return out + unranked


def check_budget(conn: psycopg.Connection[Any], *, since: datetime, until: datetime,
                 limit: Limits) -> None:
    """Refuse (:class:`layers.analysis.budget.OverBudget`) a period of more issues than ``limit``
    lets one analysis read; one count on the reported_at index."""
    rows, _ = budget.count_issues(conn, sql.SQL("i.reported_at >= %s AND i.reported_at < %s"),
                                  [since, until])
    budget.check_rows(rows, limit, ("since", "until", "phase"))
