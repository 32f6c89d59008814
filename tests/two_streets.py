"""A district of two streets side by side, for the street-scope tests: 东湖街道 (code ALPHAST,
west) and 西湖街道 (code BRAVOST, east) — each with one community, a market and two open
issues, and one issue on the border between them (which the engine gives to ALPHA, the
smaller code). A district department (城管, CG) answers for markets in
both streets
(the catalog's default department of MKT-01).

Coordinates: the streets split the box at :data:`BORDER`; the border issue lies on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg

from layers.assignment import load_assigner
from layers.issues import records

WEST, BORDER, EAST = 120.70, 120.71, 120.72
SOUTH, NORTH = 31.30, 31.31


def box(west: float, east: float, south: float = SOUTH, north: float = NORTH
        ) -> dict[str, Any]:
    """A GeoJSON MultiPolygon box."""
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "MultiPolygon", "coordinates": [[ring]]}


@dataclass(frozen=True)
class Street:
    """One street's codes and ids as the tests compare them."""

    code: str
    community: str
    market: str
    issues: list[str]  # public ids


@dataclass(frozen=True)
class District:
    """Both streets and the issue on their border (which belongs to ``a``)."""

    a: Street
    b: Street
    border_issue: str


def build(conn: psycopg.Connection[Any]) -> District:
    """Units, streets, communities, markets and issues (assigned by the engine)."""
    conn.execute("INSERT INTO unit (code, name, kind) VALUES"
                 " ('JA', '东湖街道办', 'territorial'), ('JB', '西湖街道办', 'territorial'),"
                 " ('CA', '东湖社区', 'territorial'), ('CB', '西湖社区', 'territorial')")
    streets = {}
    for code, name, unit, west, east, community, cname, cunit in (
            ("ALPHAST", "东湖街道", "JA", WEST, BORDER, "ALPHAC1", "东湖社区", "CA"),
            ("BRAVOST", "西湖街道", "JB", BORDER, EAST, "BRAVOC1", "西湖社区", "CB")):
        conn.execute("INSERT INTO jurisdiction (code, name, level, unit_id, geom) SELECT"
                     " %s, %s, 'street', (SELECT id FROM unit WHERE code = %s),"
                     " ST_GeomFromGeoJSON(%s)", [code, name, unit, json.dumps(box(west, east))])
        conn.execute("INSERT INTO jurisdiction (code, name, level, parent_id, unit_id, geom)"
                     " SELECT %s, %s, 'community', (SELECT id FROM jurisdiction WHERE code = %s),"
                     " (SELECT id FROM unit WHERE code = %s), ST_GeomFromGeoJSON(%s)",
                     [community, cname, code, cunit, json.dumps(box(west, east))])
        middle = (west + east) / 2
        conn.execute("INSERT INTO site (layer, code, name, geom, buffer_m) VALUES"
                     " ('market', %s, %s, ST_Multi(ST_GeomFromGeoJSON(%s)), 30)",
                     [code.replace("ST", "MKT"), f"{name}农贸市场",
                      json.dumps(box(middle - 0.001, middle + 0.001, 31.304, 31.306))])
        streets[code] = middle
    points = [(streets["ALPHAST"] - 0.003, "CMP-03"), (streets["ALPHAST"], "MKT-01"),
              (streets["BRAVOST"] + 0.003, "CMP-03"), (streets["BRAVOST"], "MKT-01"),
              (BORDER, "CMP-03")]
    prepared = records.prepare(load_assigner(conn), [
        records.NewIssue(category=category, lon=lon, lat=31.305, description=f"问题 {i}")
        for i, (lon, category) in enumerate(points)])
    public = records.store(conn, *prepared, actor="巡查员", actor_role="inspector")
    return District(
        a=Street("ALPHAST", "ALPHAC1", "ALPHAMKT", public[0:2]),
        b=Street("BRAVOST", "BRAVOC1", "BRAVOMKT", public[2:4]),
        border_issue=public[4])
