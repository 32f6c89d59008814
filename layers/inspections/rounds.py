"""Inspection rounds, stored: candidates with their risk, coverage history, plan and store.

The draw itself is pure (:mod:`geo.sampling`); this module feeds it from the tables:

* **Candidates** are all sites, each at its point on surface, in the community whose polygon
  holds that point (none when outside every community). Risk factors are counted from the
  issues linked to the site (``issue.site_id``, which the assignment sets for issues on the
  site or in its surroundings buffer): reported in the last ``recent_days``, open (reported,
  assigned, rectified), and open past the deadline (the traffic light's red, evaluated at the
  plan's ``now`` so a plan for a given moment is reproducible); days since a round's stop
  there was last visited, over the site's ``inspection_interval_days``.
* **History**: a stored round covers the communities and layers of its stops as they were when
  planned. Rounds are ordered by date; the newest is "1 round ago".
* **Dates**: rounds are planned in date order, one a day; by default the next round is the
  last one's date plus ``interval_days`` (10, the campaign's rhythm), never before today.

Visits, findings and the checklist are in :mod:`layers.inspections.visits`.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Literal, TypedDict

import numpy as np
import pandas as pd
import psycopg
from psycopg.rows import class_row, dict_row

from geo.route import to_local_metres
from geo.sampling import (
    DEFAULT_INTERVAL_DAYS,
    RiskWeights,
    RoundTooSmall,
    Stratum,
    plan_round,
    risk_scores,
)
from layers.errors import Conflict, ValidationFailed, found
from layers.frames import number, text, whole

MAX_SEED = 2**31 - 1
#: A stored round's progress (the table's CHECK states the same words).
RoundStatus = Literal["planned", "in_progress", "done"]


@dataclass(frozen=True)
class PlanRequest:
    """What to plan; None means the default described on each field."""

    #: Places to visit: a small team's day (assessors come in small batches).
    size: int = 8
    #: Random seed; None draws one, which is stored with the round.
    seed: int | None = None
    #: Every community and layer is visited at least once in this many consecutive rounds
    #: (3 rounds of 10 days: each community about once a month).
    cover_rounds: int = 3
    #: The round's date; None: the last round's date + ``interval_days``, at least today.
    planned_for: date | None = None
    interval_days: int = DEFAULT_INTERVAL_DAYS
    #: Issues reported this many days before ``now`` count as recent.
    recent_days: int = 90
    weights: RiskWeights = field(default_factory=RiskWeights)
    #: Where the walk starts (WGS84 lon, lat); None: the best end of the route.
    start: tuple[float, float] | None = None
    #: The moment risk is evaluated at; None: the database's now().
    now: datetime | None = None


def _check(request: PlanRequest) -> None:
    problems = []
    if not 1 <= request.size <= 500:
        problems.append({"field": "size", "message": "size must be 1 to 500"})
    if not 1 <= request.cover_rounds <= 52:
        problems.append({"field": "cover_rounds", "message": "cover_rounds must be 1 to 52"})
    if request.seed is not None and not 0 <= request.seed <= MAX_SEED:
        problems.append({"field": "seed", "message": f"seed must be 0 to {MAX_SEED}"})
    if not 1 <= request.interval_days <= 366:
        problems.append({"field": "interval_days", "message": "interval_days must be 1 to 366"})
    if not 1 <= request.recent_days <= 3660:
        problems.append({"field": "recent_days", "message": "recent_days must be 1 to 3660"})
    if request.start is not None and not (-180 <= request.start[0] <= 180
                                          and -90 <= request.start[1] <= 90):
        problems.append({"field": "start", "message": "start must be lon -180..180, "
                                                      "lat -90..90"})
    if problems:
        raise ValidationFailed("the round cannot be planned as asked", details=problems)


_CANDIDATES = """
WITH counts AS (
    SELECT site_id,
           count(*) FILTER (WHERE reported_at > %(now)s - make_interval(days => %(recent)s)
                              AND reported_at <= %(now)s) AS recent,
           count(*) FILTER (WHERE issue_is_open(status)) AS open,
           count(*) FILTER (WHERE issue_is_overdue(status, deadline, %(now)s)) AS overdue
    FROM issue WHERE site_id IS NOT NULL GROUP BY site_id
), last_visit AS (
    SELECT site_id, max(visited_at) AS at FROM inspection_stop
    WHERE visited_at IS NOT NULL AND visited_at <= %(now)s GROUP BY site_id
)
SELECT s.id AS site_id, s.code AS site_code, s.name AS site_name, s.layer,
       l.name_zh AS layer_name,
       c.id AS community_id, c.code AS community, c.name AS community_name,
       ST_X(p.pt) AS lon, ST_Y(p.pt) AS lat,
       coalesce(n.recent, 0) AS recent, coalesce(n.open, 0) AS open,
       coalesce(n.overdue, 0) AS overdue, s.inspection_interval_days AS interval_days,
       extract(epoch FROM %(now)s - v.at) / 86400.0 AS days_since_visit
FROM site s JOIN site_layer l ON l.code = s.layer
CROSS JOIN LATERAL (SELECT ST_PointOnSurface(s.geom) AS pt) p
LEFT JOIN LATERAL (
    SELECT j.id, j.code, j.name FROM jurisdiction j
    WHERE j.level = 'community' AND ST_Covers(j.geom, p.pt)
    ORDER BY j.code LIMIT 1  -- on a shared border, the smallest code (as the assignment)
) c ON true
LEFT JOIN counts n ON n.site_id = s.id
LEFT JOIN last_visit v ON v.site_id = s.id
ORDER BY s.id
"""


def candidates(conn: psycopg.Connection[Any], *, now: datetime | None = None,
               recent_days: int = 90, weights: RiskWeights | None = None) -> pd.DataFrame:
    """Every site with its community, risk factors and risk score (see the module doc)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_CANDIDATES, {"now": now or _db_now(conn),
                                         "recent": recent_days}).fetchall()
    frame = pd.DataFrame(rows, columns=[
        "site_id", "site_code", "site_name", "layer", "layer_name", "community_id", "community",
        "community_name", "lon", "lat", "recent", "open", "overdue", "interval_days",
        "days_since_visit"])
    frame["risk"] = risk_scores(
        frame["recent"].to_numpy(np.float64), frame["open"].to_numpy(np.float64),
        frame["overdue"].to_numpy(np.float64),
        pd.to_numeric(frame["days_since_visit"]).to_numpy(np.float64),
        pd.to_numeric(frame["interval_days"]).to_numpy(np.float64), weights)
    return frame


def _db_now(conn: psycopg.Connection[Any]) -> datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    now: datetime = row[0]
    return now


def rounds_since(conn: psycopg.Connection[Any]) -> dict[Stratum, int]:
    """For each community and layer ever covered, how many rounds ago (1: the last round)."""
    rows = conn.execute("""
        WITH ranked AS (
            SELECT id, row_number() OVER (ORDER BY planned_for DESC, id DESC) AS n
            FROM inspection_round)
        SELECT 'community', j.code, min(r.n) FROM inspection_stop s
        JOIN ranked r ON r.id = s.round_id JOIN jurisdiction j ON j.id = s.community_id
        GROUP BY j.code
        UNION ALL
        SELECT 'layer', s.layer, min(r.n) FROM inspection_stop s
        JOIN ranked r ON r.id = s.round_id GROUP BY s.layer""").fetchall()
    return {(str(family), str(code)): int(n) for family, code, n in rows}


def _date_for(conn: psycopg.Connection[Any], request: PlanRequest, zone: tzinfo) -> date:
    """The round's date: as asked, or the next in the rhythm from today in ``zone`` (the
    district's); refused when out of order."""
    # Each office plans its own rounds (a street's, or the district's: migration 0032).
    row = conn.execute("SELECT max(planned_for) FROM inspection_round"
                       " WHERE street_id IS NOT DISTINCT FROM sitewatch_scope_street()"
                       ).fetchone()
    last: date | None = row[0] if row else None
    today = datetime.now(zone).date()
    if request.planned_for is None:
        # Never in the past: after a pause the office starts again from today.
        return today if last is None else max(last + timedelta(days=request.interval_days),
                                              today)
    if last is not None and request.planned_for == last:
        raise Conflict(f"a round is already planned for {last}")
    if last is not None and request.planned_for < last:
        raise ValidationFailed(
            f"rounds are planned in date order; the last one is on {last}",
            details=[{"field": "planned_for", "message": f"must be after {last}"}])
    return request.planned_for


class PlanParams(TypedDict):
    """What else the draw depended on, stored with the round (``inspection_round.params``)."""

    weights: dict[str, float]
    recent_days: int
    interval_days: int
    #: WGS84 [lon, lat] where the walk starts, or None.
    start: list[float] | None
    #: The moment risk was evaluated at, ISO 8601.
    now: str


@dataclass(frozen=True)
class PlannedStop:
    """A stop of a proposed round: the candidate's site, community and risk factors (see the
    module doc), its place in the walk and why it was drawn."""

    seq: int
    site_id: int
    site_code: str | None
    site_name: str
    layer: str
    layer_name: str
    community_id: int | None
    community: str | None
    community_name: str | None
    lon: float
    lat: float
    recent: int
    open: int
    overdue: int
    interval_days: int | None
    days_since_visit: float | None
    risk: float
    #: geo.sampling's reason: ``{"why": "stratum", "stratum": ..., "code": ...,
    #: "rounds_since": ...}`` or ``{"why": "risk"}``.
    reason: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """A proposed round: its fields, the stops in walking order, ``route_length_m`` (and
    ``greedy_length_m``, nearest neighbour alone), ``min_size`` and ``uncoverable``:
    communities without any site, which no round of sites can visit."""

    planned_for: date
    seed: int
    size: int
    cover_rounds: int
    min_size: int
    route_length_m: float
    greedy_length_m: float
    params: PlanParams
    stops: list[PlannedStop]
    uncoverable: list[str]


@dataclass(frozen=True)
class StoredPlan(Plan):
    """A plan as stored: the round's ``id`` too."""

    id: int


def propose(conn: psycopg.Connection[Any], request: PlanRequest, *, zone: tzinfo) -> Plan:
    """Plan the next round without storing it (a dry run of :func:`plan_and_store`)."""
    _check(request)
    planned_for = _date_for(conn, request, zone)
    seed = secrets.randbelow(MAX_SEED + 1) if request.seed is None else request.seed
    # The moment risk is evaluated at is stored with the round: with the seed, it is what
    # reproducing the draw needs.
    now = request.now or _db_now(conn)
    sites = candidates(conn, now=now, recent_days=request.recent_days, weights=request.weights)
    if sites.empty:
        raise ValidationFailed("there are no sites to inspect; import or add sites first")
    lon = sites["lon"].to_numpy(np.float64)
    lat = sites["lat"].to_numpy(np.float64)
    if request.start is not None:
        lon, lat = np.append(lon, request.start[0]), np.append(lat, request.start[1])
    x, y = to_local_metres(lon, lat)
    start = None if request.start is None else (float(x[-1]), float(y[-1]))
    sites["x"], sites["y"] = x[:len(sites)], y[:len(sites)]
    try:
        plan = plan_round(sites, size=request.size, seed=seed,
                          cover_rounds=request.cover_rounds, rounds_since=rounds_since(conn),
                          start=start)
    except RoundTooSmall as exc:
        raise ValidationFailed(str(exc), details=[
            {"field": "size", "message": f"must be at least {exc.minimum}"}]) from None
    stops = _stops(plan.stops)
    return Plan(
        planned_for=planned_for, seed=seed, size=len(stops),
        cover_rounds=request.cover_rounds, min_size=plan.min_size,
        route_length_m=round(plan.route_length_m, 1),
        greedy_length_m=round(plan.greedy_length_m, 1),
        params=_params(request, now), stops=stops, uncoverable=_uncoverable(conn))


def _stops(frame: pd.DataFrame) -> list[PlannedStop]:
    """The plan's rows as records: numpy scalars as Python values, NaN (pandas' missing
    value in a numeric column) as None."""
    return [PlannedStop(
        seq=int(r["seq"]), site_id=int(r["site_id"]), site_code=text(r["site_code"]),
        site_name=str(r["site_name"]), layer=str(r["layer"]), layer_name=str(r["layer_name"]),
        community_id=whole(r["community_id"]), community=text(r["community"]),
        community_name=text(r["community_name"]), lon=float(r["lon"]), lat=float(r["lat"]),
        recent=int(r["recent"]), open=int(r["open"]), overdue=int(r["overdue"]),
        interval_days=whole(r["interval_days"]),
        days_since_visit=number(r["days_since_visit"]), risk=float(r["risk"]),
        reason=dict(r["reason"])) for r in frame.to_dict("records")]


def _params(request: PlanRequest, now: datetime) -> PlanParams:
    return {"weights": asdict(request.weights), "recent_days": request.recent_days,
            "interval_days": request.interval_days,
            "start": list(request.start) if request.start else None, "now": now.isoformat()}


def _uncoverable(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute("""
        SELECT j.code FROM jurisdiction j WHERE j.level = 'community' AND NOT EXISTS (
            SELECT 1 FROM site s WHERE ST_Covers(j.geom, ST_PointOnSurface(s.geom)))
        ORDER BY j.code""").fetchall()
    return [str(r[0]) for r in rows]


def plan_and_store(conn: psycopg.Connection[Any], request: PlanRequest, *, zone: tzinfo,
                   created_by: str) -> StoredPlan:
    """Plan the next round and store it with its stops, all or nothing; the plan and its id.

    Planning reads the coverage history, so concurrent planners are serialised by a table
    lock: two rounds planned at once would both think the same community was due.
    """
    with conn.transaction():
        conn.execute("LOCK TABLE inspection_round IN SHARE ROW EXCLUSIVE MODE")
        plan = propose(conn, request, zone=zone)
        row = conn.execute(
            "INSERT INTO inspection_round (planned_for, seed, size, cover_rounds, params,"
            " route_length_m, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            [plan.planned_for, plan.seed, plan.size, plan.cover_rounds,
             json.dumps(plan.params), plan.route_length_m, created_by]).fetchone()
        assert row is not None
        stops = plan.stops
        conn.execute("""
            INSERT INTO inspection_stop (round_id, seq, site_id, layer, community_id, geom,
                                         risk, reason)
            SELECT %s, seq, site_id, layer, community_id,
                   ST_SetSRID(ST_MakePoint(lon, lat), 4326), risk, reason
            FROM unnest(%s::int[], %s::bigint[], %s::text[], %s::bigint[], %s::float8[],
                        %s::float8[], %s::float8[], %s::jsonb[])
                AS t(seq, site_id, layer, community_id, lon, lat, risk, reason)""",
            [row[0], [s.seq for s in stops], [s.site_id for s in stops],
             [s.layer for s in stops], [s.community_id for s in stops],
             [s.lon for s in stops], [s.lat for s in stops], [s.risk for s in stops],
             [json.dumps(s.reason, ensure_ascii=False) for s in stops]])
    return StoredPlan(**vars(plan), id=int(row[0]))


@dataclass(frozen=True)
class RoundSummary:
    """A stored round and its progress."""

    id: int
    planned_for: date
    seed: int
    size: int
    cover_rounds: int
    #: :class:`PlanParams` as written when planned (the column defaults to ``{}``).
    params: dict[str, Any]
    route_length_m: float
    status: RoundStatus
    created_by: str
    created_at: datetime
    stops: int
    visited: int
    findings: int


def list_rounds(conn: psycopg.Connection[Any], *, limit: int = 50, offset: int = 0
                ) -> list[RoundSummary]:
    """Rounds, newest date first, with counts of stops, visited stops and findings."""
    with conn.cursor(row_factory=class_row(RoundSummary)) as cur:
        return cur.execute(_ROUNDS + " ORDER BY r.planned_for DESC, r.id DESC"
                           " LIMIT %s OFFSET %s", [limit, offset]).fetchall()


def get_round(conn: psycopg.Connection[Any], round_id: int) -> RoundSummary:
    """One round's fields and counts; NotFound if there is none."""
    with conn.cursor(row_factory=class_row(RoundSummary)) as cur:
        row = cur.execute(_ROUNDS + " WHERE r.id = %s", [round_id]).fetchone()
    return found(row, f"no inspection round {round_id}")


_ROUNDS = """
SELECT r.id, r.planned_for, r.seed, r.size, r.cover_rounds, r.params, r.route_length_m,
       r.status, r.created_by, r.created_at,
       (SELECT count(*) FROM inspection_stop s WHERE s.round_id = r.id) AS stops,
       (SELECT count(*) FROM inspection_stop s
        WHERE s.round_id = r.id AND s.visited_at IS NOT NULL) AS visited,
       (SELECT count(*) FROM inspection_finding f WHERE f.round_id = r.id) AS findings
FROM inspection_round r"""
