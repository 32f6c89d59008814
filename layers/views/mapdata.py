"""Read the stored layers as GeoDataFrames for maps and exports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import psycopg
import shapely
from psycopg import sql
from psycopg.rows import dict_row
from shapely.geometry.base import BaseGeometry


def _frame(conn: psycopg.Connection[Any], query: sql.SQL, params: Any = None
           ) -> gpd.GeoDataFrame:
    # pandas.read_sql only supports SQLAlchemy or sqlite3 connections; WKB through psycopg
    # into shapely's vectorised decoder is as fast and needs no extra dependency.
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query, params).fetchall()
        columns = [d.name for d in cur.description or []]
    records = {c: [r[c] for r in rows] for c in columns if c != "wkb"}
    geometry = shapely.from_wkb([bytes(r["wkb"]) for r in rows])
    return gpd.GeoDataFrame(records, geometry=geometry, crs="EPSG:4326")


@dataclass(frozen=True)
class Jurisdiction:
    """A jurisdiction with its level, parent's code and owner unit's name; EPSG:4326."""

    code: str
    name: str
    level: str
    parent: str | None
    unit: str | None
    geometry: BaseGeometry


def jurisdictions(conn: psycopg.Connection[Any], *, streets_only: bool = False
                  ) -> list[Jurisdiction]:
    """Every jurisdiction (or the streets alone, the roots of the hierarchy), by level and
    code."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT j.code, j.name, j.level, p.code AS parent, u.name AS unit,"
            " ST_AsBinary(j.geom) AS wkb"
            " FROM jurisdiction j LEFT JOIN jurisdiction p ON p.id = j.parent_id"
            " LEFT JOIN unit u ON u.id = j.unit_id"
            " WHERE NOT %(streets_only)s OR (j.level = 'street' AND j.parent_id IS NULL)"
            " ORDER BY j.level, j.code", {"streets_only": streets_only}).fetchall()
    return [Jurisdiction(code=r["code"], name=r["name"], level=r["level"], parent=r["parent"],
                         unit=r["unit"], geometry=geometry)
            for r, geometry in zip(rows, shapely.from_wkb([bytes(r["wkb"]) for r in rows]),
                                   strict=True)]


def jurisdiction_frame(conn: psycopg.Connection[Any]) -> gpd.GeoDataFrame:
    """:func:`jurisdictions` as a GeoDataFrame (code, name, level, parent, unit): the input of
    :func:`geo.quality.check_jurisdictions`."""
    found = jurisdictions(conn)
    return gpd.GeoDataFrame(
        {"code": [j.code for j in found], "name": [j.name for j in found],
         "level": [j.level for j in found], "parent": [j.parent for j in found],
         "unit": [j.unit for j in found]},
        geometry=[j.geometry for j in found], crs="EPSG:4326")


def sites(conn: psycopg.Connection[Any]) -> gpd.GeoDataFrame:
    """Every site with its layer names, unit and count of open issues."""
    return _frame(conn, sql.SQL(
        "SELECT s.code, s.name, s.layer, l.name_zh AS layer_zh, l.name_en AS layer_en,"
        " u.name AS unit, s.buffer_m,"
        " (SELECT count(*) FROM issue i WHERE i.site_id = s.id"
        "   AND issue_is_open(i.status)) AS open_issues,"
        " ST_AsBinary(s.geom) AS wkb"
        " FROM site s JOIN site_layer l ON l.code = s.layer"
        " LEFT JOIN unit u ON u.id = s.unit_id ORDER BY s.layer, s.code"))


def issues(conn: psycopg.Connection[Any], *, limit: int = 20000) -> gpd.GeoDataFrame:
    """The most recent issues (newest first) with category, status and lead unit."""
    return _frame(conn, sql.SQL(
        "SELECT i.public_id, i.category_code, c.name_zh AS category_zh,"
        " c.name_en AS category_en, i.status, i.reported_at, i.deadline,"
        " u.name AS lead_unit,"
        " issue_traffic_light(i.status, i.reported_at, i.deadline) AS traffic_light,"
        " ST_AsBinary(i.geom) AS wkb"
        " FROM issue i JOIN category c ON c.code = i.category_code"
        " LEFT JOIN unit u ON u.id = i.lead_unit_id"
        " ORDER BY i.reported_at DESC LIMIT %s"), [limit])
