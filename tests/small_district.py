"""A district small enough for the fast tests of revisions: one street, two communities side
by side (湖西 owned by unit W, 湖东 by unit E), five open issues of a category without a
functional department (so the community leads), and a redrawn boundary file that hands the
two issues near the border from 湖东 to 湖西."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from geo.assign import RESULT_COLUMNS
from layers.assignment import load_assigner
from layers.issues import records

WEST, MIDDLE, EAST = 120.70, 120.71, 120.72
SOUTH, NORTH = 31.30, 31.31
# The redrawn border: 湖西 grows east to here, taking the issues between it and MIDDLE.
REDRAWN = 120.714


def box(west: float, east: float) -> dict[str, Any]:
    """A MultiPolygon from ``west`` to ``east`` across the district's height."""
    ring = [[west, SOUTH], [east, SOUTH], [east, NORTH], [west, NORTH], [west, SOUTH]]
    return {"type": "MultiPolygon", "coordinates": [[ring]]}


@dataclass(frozen=True)
class District:
    """The ids the tests compare against."""

    issues: list[str]  # public ids, west to east
    moving: list[str]  # the two the redrawn file moves
    east_unit: int
    west_unit: int


def build(conn: psycopg.Connection[Any]) -> District:
    """Units, jurisdictions and issues (reported and assigned by the engine)."""
    conn.execute("INSERT INTO unit (code, name, kind) VALUES ('E', '湖东社区', 'territorial'),"
                 " ('W', '湖西社区', 'territorial')")
    conn.execute("INSERT INTO jurisdiction (code, name, level, geom) VALUES"
                 " ('S', '星湖街道', 'street', ST_GeomFromGeoJSON(%s))",
                 [json.dumps(box(WEST, EAST))])
    for code, name, unit, west, east in (("CW", "湖西", "W", WEST, MIDDLE),
                                         ("CE", "湖东", "E", MIDDLE, EAST)):
        conn.execute("INSERT INTO jurisdiction (code, name, level, parent_id, unit_id, geom)"
                     " SELECT %s, %s, 'community', (SELECT id FROM jurisdiction WHERE"
                     " code = 'S'), (SELECT id FROM unit WHERE code = %s),"
                     " ST_GeomFromGeoJSON(%s)", [code, name, unit, json.dumps(box(west, east))])
    lons = [120.703, 120.707, 120.711, 120.713, 120.717]
    issues = records.prepare(load_assigner(conn), [
        records.NewIssue(category="CMP-03", lon=lon, lat=31.305, description=f"乱堆乱放 {i}")
        for i, lon in enumerate(lons)])
    ids = records.store(conn, *issues, actor="巡查员", actor_role="inspector")
    units = dict(conn.execute("SELECT code, id FROM unit WHERE code IN ('E', 'W')").fetchall())
    return District(ids, ids[2:4], int(units["E"]), int(units["W"]))


def redrawn_file(folder: Path, *, bad_level: bool = False) -> Path:
    """The two communities with the border moved east to :data:`REDRAWN`, as GeoJSON."""
    features = [{"type": "Feature", "geometry": box(west, east), "properties": {
        "code": code, "name": name, "level": "community" if not bad_level else "village",
        "parent": "S", "unit": unit}}
        for code, name, unit, west, east in (("CW", "湖西", "W", WEST, REDRAWN),
                                             ("CE", "湖东", "E", REDRAWN, EAST))]
    path = folder / "redrawn.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}),
                    encoding="utf-8")
    return path


#: The tables an import or edit of the lines writes to, directly or by trigger.
WRITTEN_TABLES = ("jurisdiction", "site", "responsibility_rule", "issue", "issue_event",
                  "revision", "revision_change", "outbox", "delivery", "layers_version",
                  "jurisdiction_version", "site_version", "responsibility_rule_version")


def checksum(conn: psycopg.Connection[Any]) -> dict[str, str | None]:
    """A digest of every row of each of :data:`WRITTEN_TABLES`: equal before and after
    means nothing was stored."""
    out: dict[str, str | None] = {}
    for table in WRITTEN_TABLES:
        row = conn.execute(sql.SQL("SELECT md5(string_agg(t::text, '|' ORDER BY t::text))"
                                   " FROM {} t").format(sql.Identifier(table))).fetchone()
        out[table] = row[0] if row else None
    return out


def answers(conn: psycopg.Connection[Any]) -> dict[int, tuple[Any, ...]]:
    """Every issue's stored assignment answer (geo.assign.RESULT_COLUMNS), by id."""
    columns = ", ".join(RESULT_COLUMNS)
    return {r[0]: tuple(r[1:]) for r in conn.execute(
        f"SELECT id, {columns} FROM issue ORDER BY id").fetchall()}
