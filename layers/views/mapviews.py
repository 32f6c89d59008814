"""What the map pages read, sized so a page stays small at a million issues.

Pages never carry single issues: they carry issue counts per H3 cell at a few resolutions
(the browser shows the one that suits the zoom) and per community (the choropleth), read
from the tallies (layers.analysis.tallies), and per site; single issues come as vector
tiles (:func:`issue_tile`), a tile at a time, capped.
Everything here returns public fields only: no reporter, contact or description.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import h3.api.numpy_int as h3int
import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql
from psycopg.rows import class_row, dict_row
from shapely.geometry.base import BaseGeometry

from layers.analysis import tallies
from layers.catalog.periods import Period
from layers.errors import ValidationFailed

# H3 resolutions the overview carries (≈ 0.74, 0.11 and 0.015 km² cells), by zoom in the page.
CELL_RESOLUTIONS = (8, 9, 10)
# Single issues per tile at most (open ones and the newest first): a tile stays light in the
# browser whatever the density; the page shows the H3 counts for the full picture.
TILE_LIMIT = 4000
# Below this zoom a tile would cover too much ground for single issues to mean anything.
TILE_MIN_ZOOM = 14


def _where(p: Period) -> tuple[sql.Composable, dict[str, Any]]:
    """The period as a condition on ``i.reported_at`` with named parameters."""
    parts: list[sql.Composable] = [sql.SQL("true")]
    if p.since is not None:
        parts.append(sql.SQL("i.reported_at >= %(since)s"))
    if p.until is not None:
        parts.append(sql.SQL("i.reported_at < %(until)s"))
    return sql.SQL(" AND ").join(parts), {"since": p.since, "until": p.until}


@dataclass(frozen=True)
class CellCounts:
    """Issues, open and overdue issues per H3 cell at one resolution, as columns (a page
    carries tens of thousands of cells), cells in ascending order."""

    cell: list[str]
    issues: list[int]
    open: list[int]
    overdue: list[int]


def issue_cells(conn: psycopg.Connection[Any], p: Period,
                resolutions: tuple[int, ...] = CELL_RESOLUTIONS, *, street: int | None = None
                ) -> dict[int, CellCounts]:
    """Issues per H3 cell for each resolution, from the tallies (layers.analysis.tallies):
    the finest is theirs, coarser cells are its parents; of one street's issues only with
    ``street`` (its id). Rejected and duplicate reports are not problems on the ground and
    are not tallied."""
    fine = tallies.count(conn, tallies.Selection(p, street=street), ("cell",),
                         ("issues", "open", "overdue"))
    cells = fine["cell"].to_numpy(np.int64).astype(np.uint64)
    out = {}
    for res in resolutions:
        if res > tallies.RESOLUTION:
            raise ValueError(f"the tallies hold cells down to resolution {tallies.RESOLUTION}")
        parents = cells if res == tallies.RESOLUTION else np.fromiter(
            (h3int.cell_to_parent(int(c), res) for c in cells.tolist()), np.uint64,
            count=len(cells))
        grouped = fine[["issues", "open", "overdue"]].groupby(parents, sort=True).sum()
        out[res] = CellCounts(cell=[h3int.int_to_str(int(c)) for c in grouped.index],
                              issues=grouped["issues"].astype(np.int64).tolist(),
                              open=grouped["open"].astype(np.int64).tolist(),
                              overdue=grouped["overdue"].astype(np.int64).tolist())
    return out


@dataclass(frozen=True)
class CommunityMeasure:
    """A community's issues, open issues and points lost in a period."""

    code: str
    issues: int
    open: int
    points_lost: float


def community_measures(conn: psycopg.Connection[Any], p: Period, *, street: int | None = None
                       ) -> list[CommunityMeasure]:
    """Per community (by code): issues, open issues and points lost (as layers.supervision.scores
    defines them) of the issues reported in the period on its ground (its polygon and its
    grids'), from the tallies per jurisdiction, rolled up to the communities; of one street's
    issues only with ``street`` (its id)."""
    per = tallies.count(conn, tallies.Selection(p, street=street), ("jurisdiction_id",),
                        ("issues", "open", "points_lost"))
    if per.empty:
        return []
    rows = conn.execute("""
        SELECT j.id, m.code FROM jurisdiction j
        JOIN jurisdiction m ON m.level = 'community' AND m.id = CASE
             WHEN j.level = 'community' THEN j.id ELSE j.parent_id END""").fetchall()
    community = dict(rows)
    per["code"] = [community.get(None if pd.isna(j) else int(j)) for j in per["jurisdiction_id"]]
    summed = per.dropna(subset=["code"]).groupby("code", sort=True)[
        ["issues", "open", "points_lost"]].sum()
    return [CommunityMeasure(code=str(code), issues=int(n), open=int(o), points_lost=float(lost))
            for code, n, o, lost in zip(summed.index, summed["issues"].tolist(),
                                        summed["open"].tolist(), summed["points_lost"].tolist(),
                                        strict=True)]


@dataclass(frozen=True)
class SiteStatus:
    """A site's open and overdue issues now, and its last inspection visit (or None)."""

    id: int
    code: str | None
    open_issues: int
    overdue: int
    last_inspection: datetime | None


@dataclass(frozen=True)
class Site:
    """A site with its layer's names, its unit's name and its status; geometry in EPSG:4326."""

    code: str | None
    name: str
    layer: str
    layer_zh: str
    layer_en: str
    unit: str | None
    open_issues: int
    overdue: int
    last_inspection: datetime | None
    geometry: BaseGeometry


def sites(conn: psycopg.Connection[Any]) -> list[Site]:
    """Every site (code, name, layer names, unit) with its open and overdue issues now and
    its last inspection visit, by layer and code."""
    status = {s.id: s for s in site_status(conn)}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("""
            SELECT s.id, s.code, s.name, s.layer, l.name_zh AS layer_zh, l.name_en AS layer_en,
                   u.name AS unit, ST_AsBinary(s.geom) AS wkb
            FROM site s JOIN site_layer l ON l.code = s.layer
            LEFT JOIN unit u ON u.id = s.unit_id ORDER BY s.layer, s.code""").fetchall()
    out = []
    for r, geometry in zip(rows, shapely.from_wkb([bytes(r["wkb"]) for r in rows]),
                           strict=True):
        now = status[r["id"]]
        out.append(Site(code=r["code"], name=r["name"], layer=r["layer"],
                        layer_zh=r["layer_zh"], layer_en=r["layer_en"], unit=r["unit"],
                        open_issues=now.open_issues, overdue=now.overdue,
                        last_inspection=now.last_inspection, geometry=geometry))
    return out


# Open and overdue issues per site now, from issue_open_site_idx alone (migration 0029).
OPEN_BY_SITE = """
    SELECT site_id, count(*) AS open,
           count(*) FILTER (WHERE issue_is_overdue(status, deadline, now())) AS overdue
    FROM issue WHERE issue_is_open(status) AND site_id IS NOT NULL GROUP BY site_id"""


def site_status(conn: psycopg.Connection[Any]) -> list[SiteStatus]:
    """Per site: open and overdue issues now, and the last inspection visit (or None)."""
    with conn.cursor(row_factory=class_row(SiteStatus)) as cur:
        return cur.execute(sql.SQL("""
            SELECT s.id, s.code,
                   coalesce(o.open, 0) AS open_issues, coalesce(o.overdue, 0) AS overdue,
                   v.last_inspection
            FROM site s
            LEFT JOIN ({}) o ON o.site_id = s.id
            -- Each site's last visit from the end of its index, not a pass over every visit.
            LEFT JOIN LATERAL (SELECT max(visited_at) AS last_inspection
                               FROM inspection_stop WHERE site_id = s.id) v ON true
            """).format(sql.SQL(OPEN_BY_SITE))).fetchall()


@dataclass(frozen=True)
class UnitIssue:
    """An open issue of a unit, public fields and the deadline traffic light only."""

    public_id: str
    category_zh: str
    category_en: str
    status: str
    reported_at: datetime
    deadline: datetime | None
    lead_unit: str | None
    site: str | None
    traffic_light: str | None
    overdue: bool | None
    lon: float
    lat: float


def unit_issues(conn: psycopg.Connection[Any], unit: str, *, limit: int = 2000
                ) -> list[UnitIssue]:
    """A unit's open issues (it leads, owns the ground or is the department), most urgent
    first, with public fields and the deadline traffic light; ``lon``/``lat`` in WGS84."""
    with conn.cursor(row_factory=class_row(UnitIssue)) as cur:
        return cur.execute("""
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


@dataclass(frozen=True)
class UnitRow:
    """A unit's id, code, name, kind and leader."""

    id: int
    code: str
    name: str
    kind: str
    leader: str | None


def unit_row(conn: psycopg.Connection[Any], unit: str) -> UnitRow | None:
    """The unit's code, name, kind and leader, or None."""
    with conn.cursor(row_factory=class_row(UnitRow)) as cur:
        return cur.execute("SELECT id, code, name, kind, leader FROM unit WHERE code = %s",
                           [unit]).fetchone()


_TILE = sql.SQL("""
    WITH env AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS e),
    pts AS (
        SELECT i.public_id AS id, i.status, i.category_code AS category,
               -- Local clock times: to_char shows a timestamptz in the session's TimeZone,
               -- the district's (layers.db.database.conninfo).
               to_char(i.reported_at, 'YYYY-MM-DD HH24:MI') AS reported_at,
               coalesce(to_char(i.deadline, 'YYYY-MM-DD HH24:MI'), '') AS deadline,
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


def issue_tile(conn: psycopg.Connection[Any], z: int, x: int, y: int, p: Period, *,
               shift: tuple[float, float] = (0.0, 0.0), limit: int = TILE_LIMIT,
               street: int | None = None) -> bytes:
    """One Mapbox vector tile (layer ``issues``) of single issues with public fields; of one
    street's issues only with ``street`` (its id: the street view of the overview).

    ``shift`` (degrees) moves the tile's points, e.g. the GCJ-02 offset at the tile's centre
    (the offset changes by well under a metre across a tile at the zooms served). An empty
    tile is ``b""``. ValidationFailed for a tile outside the zoom range or the world.
    """
    check_tile(z, x, y)
    where, params = _where(p)
    if street is not None:
        where = sql.SQL("{} AND i.street_id = %(street)s").format(where)
        params["street"] = street
    row = conn.execute(_TILE.format(where=where), {
        "z": z, "x": x, "y": y, "dx": shift[0], "dy": shift[1],
        "limit": limit, **params}).fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""
