"""What the map pages read, sized so a page stays small at a million issues.

Pages never carry single issues: they carry issue counts per H3 cell at a few resolutions
(the browser shows the one that suits the zoom), per community (the choropleth) and per
site; single issues come as vector tiles (:func:`issue_tile`), a tile at a time, capped.
Everything here returns public fields only: no reporter, contact or description.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql
from psycopg.rows import dict_row

from layers.catalog import phases
from layers.errors import ValidationFailed
from layers.supervision import scores

# H3 resolutions the overview carries (≈ 0.74, 0.11 and 0.015 km² cells), by zoom in the page.
CELL_RESOLUTIONS = (8, 9, 10)
# Issues are snapped to this grid (degrees, ≈ 20 m) in SQL before H3 binning in Python: a
# GROUP BY in PostGIS is much faster than moving a million points out, and h3 then bins a
# few ten thousand snapped points. A point may land in the neighbouring cell when it lies
# within 10 m of an edge: fine for a picture of density (the smallest cell is 65 m a side).
SNAP_DEG = 0.0002
# Single issues per tile at most (open ones and the newest first): a tile stays light in the
# browser whatever the density; the page shows the H3 counts for the full picture.
TILE_LIMIT = 4000
# Below this zoom a tile would cover too much ground for single issues to mean anything.
TILE_MIN_ZOOM = 14


@dataclass(frozen=True)
class MapPeriod:
    """``[since, until)`` a page shows (None: unbounded) and its label for the title."""

    since: datetime | None = None
    until: datetime | None = None
    phase: phases.Phase | None = None

    @property
    def bounded(self) -> tuple[datetime, datetime]:
        """Both ends, with the whole record as the default (for layers.supervision.scores)."""
        return (self.since or datetime(2000, 1, 1, tzinfo=phases.DISTRICT_TZ),
                self.until or datetime(2100, 1, 1, tzinfo=phases.DISTRICT_TZ))

    def query(self) -> dict[str, str]:
        """The query parameters that select this period again (for tile URLs and links)."""
        if self.phase is not None:
            return {"phase": self.phase.code, "year": str(self.phase.year)}
        out = {}
        if self.since is not None:
            out["since"] = self.since.date().isoformat()
        if self.until is not None:
            out["until"] = (self.until - timedelta(days=1)).date().isoformat()
        return out


# Days a map period may name: a campaign's data lies well inside, and the arithmetic on the
# last day (9999-12-31 plus one) must not overflow.
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2099, 12, 31)


def period(conn: psycopg.Connection[Any], *, phase: str | None = None, year: int | None = None,
           since: date | None = None, until: date | None = None) -> MapPeriod:
    """A campaign phase of a year, or local days ``since``..``until`` (inclusive), or all."""
    if phase is not None:
        if since is not None or until is not None:
            raise ValidationFailed("时段：阶段与起止日期只能选一种 / give either a phase or"
                                   " dates, not both")
        found = phases.get(conn, phase, year or datetime.now(phases.DISTRICT_TZ).year)
        return MapPeriod(found.since, found.until, found)
    for name, day in (("since", since), ("until", until)):
        if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:
            raise ValidationFailed(f"{name}: 日期须在 {EARLIEST_DAY} 至 {LATEST_DAY} 之间 / "
                                   f"must lie between {EARLIEST_DAY} and {LATEST_DAY}")
    start = datetime.combine(since, time(), phases.DISTRICT_TZ) if since else None
    end = datetime.combine(until + timedelta(days=1), time(), phases.DISTRICT_TZ) \
        if until else None
    if start and end and start >= end:
        raise ValidationFailed("起始日期须不晚于结束日期 / since must not be after until")
    return MapPeriod(start, end)


def _where(p: MapPeriod) -> tuple[sql.Composable, dict[str, Any]]:
    """The period as a condition on ``i.reported_at`` with named parameters."""
    parts: list[sql.Composable] = [sql.SQL("true")]
    if p.since is not None:
        parts.append(sql.SQL("i.reported_at >= %(since)s"))
    if p.until is not None:
        parts.append(sql.SQL("i.reported_at < %(until)s"))
    return sql.SQL(" AND ").join(parts), {"since": p.since, "until": p.until}


def issue_cells(conn: psycopg.Connection[Any], p: MapPeriod, *, unit: str | None = None,
                resolutions: tuple[int, ...] = CELL_RESOLUTIONS) -> dict[int, pd.DataFrame]:
    """Issues per H3 cell (``cell, issues, open, overdue``) for each resolution.

    Rejected and duplicate reports are not problems on the ground and are left out.
    """
    where, params = _where(p)
    if unit is not None:
        where = sql.SQL("{} AND u.code = %(unit)s AND u.id IN (i.lead_unit_id,"
                        " i.territorial_unit_id, i.functional_unit_id)").format(where)
    query = sql.SQL("""
        SELECT gx * %(snap)s AS lon, gy * %(snap)s AS lat, n, open, overdue FROM (
            SELECT round(ST_X(i.geom) / %(snap)s)::int AS gx,
                   round(ST_Y(i.geom) / %(snap)s)::int AS gy, count(*) AS n,
                   count(*) FILTER (WHERE issue_is_open(i.status)) AS open,
                   count(*) FILTER (WHERE issue_is_overdue(i.status, i.deadline, now()))
                       AS overdue
            FROM issue i {join}
            WHERE i.status NOT IN ('rejected', 'duplicate') AND {where}
            GROUP BY 1, 2) s""").format(
        join=sql.SQL(", unit u") if unit is not None else sql.SQL(""), where=where)
    rows = conn.execute(query, {"snap": SNAP_DEG, "unit": unit,
                                **params}).fetchall()
    snapped = pd.DataFrame(rows, columns=["lon", "lat", "issues", "open", "overdue"])
    finest = max(resolutions)
    # Binned once at the finest resolution; coarser cells are exact parents of finer ones.
    snapped["cell"] = [h3.latlng_to_cell(lat, lon, finest)
                       for lon, lat in zip(snapped["lon"], snapped["lat"], strict=True)]
    fine = snapped.groupby("cell", sort=True)[["issues", "open", "overdue"]].sum()
    out = {}
    for res in resolutions:
        parents = [h3.cell_to_parent(c, res) for c in fine.index] if res != finest \
            else list(fine.index)
        grouped = fine.groupby(np.asarray(parents), sort=True).sum()
        grouped.index.name = "cell"
        out[res] = grouped.reset_index().astype({"issues": np.int64, "open": np.int64,
                                                 "overdue": np.int64})
    return out


def community_measures(conn: psycopg.Connection[Any], p: MapPeriod) -> pd.DataFrame:
    """Per community (``code``): issues, open issues and points lost (as layers.supervision.scores
    defines them) of the issues reported in the period on its ground (its polygon and its
    grids'). Counted per jurisdiction first, then rolled up: one pass over the issues."""
    where, params = _where(p)
    query = sql.SQL("""
        WITH per AS (
            SELECT i.jurisdiction_id, count(*) AS issues,
                   count(*) FILTER (WHERE issue_is_open(i.status)) AS open,
                   coalesce(sum(c.points) FILTER (WHERE {lost}), 0)::float8 AS points_lost
            FROM issue i JOIN category c ON c.code = i.category_code
            WHERE {where} GROUP BY i.jurisdiction_id)
        SELECT m.code, sum(per.issues)::bigint AS issues, sum(per.open)::bigint AS open,
               sum(per.points_lost)::float8 AS points_lost
        FROM per JOIN jurisdiction j ON j.id = per.jurisdiction_id
        JOIN jurisdiction m ON m.level = 'community' AND m.id = CASE
             WHEN j.level = 'community' THEN j.id ELSE j.parent_id END
        GROUP BY m.code ORDER BY m.code""").format(lost=scores.LOST, where=where)
    rows = conn.execute(query, params).fetchall()
    return pd.DataFrame(rows, columns=["code", "issues", "open", "points_lost"])


def sites(conn: psycopg.Connection[Any]) -> gpd.GeoDataFrame:
    """Every site (code, name, layer names, unit) with its open and overdue issues now and
    its last inspection visit: a GeoDataFrame in EPSG:4326."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("""
            SELECT s.code, s.name, s.layer, l.name_zh AS layer_zh, l.name_en AS layer_en,
                   u.name AS unit, ST_AsBinary(s.geom) AS wkb
            FROM site s JOIN site_layer l ON l.code = s.layer
            LEFT JOIN unit u ON u.id = s.unit_id ORDER BY s.layer, s.code""").fetchall()
    frame = gpd.GeoDataFrame(
        {c: [r[c] for r in rows] for c in ("code", "name", "layer", "layer_zh", "layer_en",
                                           "unit")},
        geometry=shapely.from_wkb([bytes(r["wkb"]) for r in rows]), crs="EPSG:4326")
    # Without sites the empty code column has no type of its own; the merge needs text.
    return frame.astype({"code": object}).merge(
        site_status(conn).astype({"code": object}), on="code", how="left")


def site_status(conn: psycopg.Connection[Any]) -> pd.DataFrame:
    """Per site: open and overdue issues now, and the last inspection visit (or None)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("""
            SELECT s.code,
                   coalesce(o.open, 0) AS open_issues, coalesce(o.overdue, 0) AS overdue,
                   v.last_inspection
            FROM site s
            LEFT JOIN (SELECT site_id, count(*) AS open,
                              count(*) FILTER (WHERE issue_is_overdue(status, deadline,
                                                                      now())) AS overdue
                       FROM issue WHERE issue_is_open(status) AND site_id IS NOT NULL
                       GROUP BY site_id) o ON o.site_id = s.id
            LEFT JOIN (SELECT site_id, max(visited_at) AS last_inspection
                       FROM inspection_stop GROUP BY site_id) v ON v.site_id = s.id
            """).fetchall()
    return pd.DataFrame(rows, columns=["code", "open_issues", "overdue", "last_inspection"])


def unit_issues(conn: psycopg.Connection[Any], unit: str, *, limit: int = 2000
                ) -> pd.DataFrame:
    """A unit's open issues (it leads, owns the ground or is the department), most urgent
    first, with public fields and the deadline traffic light; ``lon``/``lat`` in WGS84."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("""
            SELECT i.public_id, c.name_zh AS category_zh, c.name_en AS category_en, i.status,
                   i.reported_at, i.deadline, l.name AS lead_unit, s.name AS site,
                   issue_traffic_light(i.status, i.reported_at, i.deadline) AS traffic_light,
                   issue_is_overdue(i.status, i.deadline, now()) AS overdue,
                   ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat
            FROM issue i JOIN unit u ON u.code = %s
                 AND u.id IN (i.lead_unit_id, i.territorial_unit_id, i.functional_unit_id)
            JOIN category c ON c.code = i.category_code
            LEFT JOIN unit l ON l.id = i.lead_unit_id
            LEFT JOIN site s ON s.id = i.site_id
            WHERE issue_is_open(i.status)
            ORDER BY i.deadline NULLS LAST, i.reported_at LIMIT %s""",
                           [unit, limit]).fetchall()
    columns = ["public_id", "category_zh", "category_en", "status", "reported_at",
               "deadline", "lead_unit", "site", "traffic_light", "overdue", "lon", "lat"]
    return pd.DataFrame(rows, columns=columns)


def unit_row(conn: psycopg.Connection[Any], unit: str) -> dict[str, Any] | None:
    """The unit's code, name, kind and leader, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT id, code, name, kind, leader FROM unit WHERE code = %s",
                           [unit]).fetchone()


_TILE = sql.SQL("""
    WITH env AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS e),
    pts AS (
        SELECT i.public_id AS id, i.status, i.category_code AS category,
               to_char(i.reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI')
                   AS reported_at,
               coalesce(to_char(i.deadline AT TIME ZONE 'Asia/Shanghai',
                                'YYYY-MM-DD HH24:MI'), '') AS deadline,
               coalesce(issue_traffic_light(i.status, i.reported_at, i.deadline), '')
                   AS light,
               coalesce(u.name, '') AS lead_unit,
               ST_AsMVTGeom(ST_Transform(ST_Translate(i.geom, %(dx)s, %(dy)s), 3857),
                            env.e, 4096, 16, true) AS geom
        FROM issue i CROSS JOIN env LEFT JOIN unit u ON u.id = i.lead_unit_id
        WHERE i.geom && ST_Transform(env.e, 4326) AND {where}
        ORDER BY issue_is_open(i.status) DESC, i.reported_at DESC
        LIMIT %(limit)s)
    SELECT ST_AsMVT(pts, 'issues', 4096, 'geom') FROM pts WHERE geom IS NOT NULL
""")


def check_tile(z: int, x: int, y: int) -> None:
    """ValidationFailed unless z/x/y is a tile this server serves."""
    if not TILE_MIN_ZOOM <= z <= 22 or not (0 <= x < 2**z and 0 <= y < 2**z):
        raise ValidationFailed(f"瓦片须在第 {TILE_MIN_ZOOM}–22 级且在范围内 / tile must be at"
                               f" zoom {TILE_MIN_ZOOM}-22 and inside the world")


def issue_tile(conn: psycopg.Connection[Any], z: int, x: int, y: int, p: MapPeriod, *,
               shift: tuple[float, float] = (0.0, 0.0), limit: int = TILE_LIMIT) -> bytes:
    """One Mapbox vector tile (layer ``issues``) of single issues with public fields.

    ``shift`` (degrees) moves the tile's points, e.g. the GCJ-02 offset at the tile's centre
    (the offset changes by well under a metre across a tile at the zooms served). An empty
    tile is ``b""``. ValidationFailed for a tile outside the zoom range or the world.
    """
    check_tile(z, x, y)
    where, params = _where(p)
    row = conn.execute(_TILE.format(where=where), {
        "z": z, "x": x, "y": y, "dx": shift[0], "dy": shift[1],
        "limit": limit, **params}).fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""
