"""Feature collections for OGC API Features: jurisdictions, one per site layer, and issues.

PostGIS writes each feature's GeoJSON itself (``json_build_object`` + ``ST_AsGeoJSON``), so
a page of features goes from the database to the client without being parsed and re-encoded
in Python. Features are ordered by a stable key, so ``offset`` paging never skips or repeats.

Issues show public fields to everyone; the reporter's name and contact are added only for the
roles that handle reports (admin, supervisor). Sites show only the attributes their layer's
``public_attributes`` names (an admin's choice); admins and supervisors see all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from layers.errors import NotFound


@dataclass(frozen=True)
class Collection:
    """One collection: where its features come from and what they show."""

    id: str
    title: str
    description: str
    source: str  # FROM ... (aliases used by the expressions below)
    fid: str  # the feature id expression
    properties: str  # a json_build_object(...) expression
    geom: str = "f.geom"
    where: str = "true"
    order: str = "f.id"
    temporal: str | None = None  # the column the datetime parameter filters
    private: str | None = None  # properties added (or replaced) for access.sees_personal_data


_JURISDICTIONS = Collection(
    id="jurisdictions", title="辖区 Jurisdictions",
    description="街道 > 社区 > 网格 (street > community > grid) with their owner units",
    source="jurisdiction f LEFT JOIN jurisdiction p ON p.id = f.parent_id"
           " LEFT JOIN unit u ON u.id = f.unit_id",
    fid="f.code",
    properties="json_build_object('code', f.code, 'name', f.name, 'level', f.level,"
               " 'parent', p.code, 'unit', u.code, 'unit_name', u.name,"
               " 'updated_at', f.updated_at)")

_ISSUES = Collection(
    id="issues", title="问题 Issues",
    description="Geotagged problems with their stage, deadline light and responsible unit",
    source="issue f JOIN category c ON c.code = f.category_code"
           " LEFT JOIN jurisdiction j ON j.id = f.jurisdiction_id"
           " LEFT JOIN site s ON s.id = f.site_id LEFT JOIN unit lu ON lu.id = f.lead_unit_id",
    fid="f.public_id",
    properties="json_build_object('id', f.public_id, 'category', f.category_code,"
               " 'category_zh', c.name_zh, 'category_en', c.name_en, 'status', f.status,"
               " 'source', f.source, 'description', f.description,"
               " 'reported_at', f.reported_at, 'deadline', f.deadline,"
               " 'closed_at', f.closed_at,"
               " 'traffic_light', issue_traffic_light(f.status, f.reported_at, f.deadline),"
               " 'jurisdiction', j.code, 'jurisdiction_name', j.name, 'site', s.code,"
               " 'site_name', s.name, 'lead_unit', lu.code, 'lead_unit_name', lu.name,"
               " 'rework_count', f.rework_count)",
    temporal="f.reported_at",
    private="json_build_object('reporter', f.reporter, 'reporter_contact', f.reporter_contact)")


def _site_layer(code: str, name_zh: str, name_en: str) -> Collection:
    return Collection(
        id=code, title=f"{name_zh} {name_en}",
        description=f"Monitored sites of the layer {code} with their responsible units",
        source="site f JOIN site_layer sl ON sl.code = f.layer"
               " LEFT JOIN unit u ON u.id = f.unit_id",
        fid="coalesce(f.code, 'site-' || f.id)",
        properties="json_build_object('code', f.code, 'name', f.name, 'layer', f.layer,"
                   " 'unit', u.code, 'unit_name', u.name, 'buffer_m', f.buffer_m,"
                   " 'inspection_interval_days', f.inspection_interval_days,"
                   " 'attributes', (SELECT coalesce(jsonb_object_agg(a.key, a.value), '{}')"
                   "  FROM jsonb_each(f.attributes) a WHERE a.key = ANY(sl.public_attributes)),"
                   " 'updated_at', f.updated_at)",
        where="f.layer = %(layer)s",
        private="json_build_object('attributes', f.attributes)")


def collections(conn: psycopg.Connection[Any]) -> list[Collection]:
    """Every collection: jurisdictions, one per site layer (builtin first), issues."""
    layers = conn.execute("SELECT code, name_zh, name_en FROM site_layer"
                          " ORDER BY NOT builtin, code").fetchall()
    return [_JURISDICTIONS, *(_site_layer(*row) for row in layers), _ISSUES]


def collection(conn: psycopg.Connection[Any], collection_id: str) -> Collection:
    """The collection ``collection_id``; NotFound otherwise."""
    for c in collections(conn):
        if c.id == collection_id:
            return c
    raise NotFound(f"no collection {collection_id!r}")


def _query(*parts: str) -> str:
    """A statement from this module's constant pieces; every value a client sends travels as
    a %(name)s parameter, never as SQL text."""
    return " ".join(parts)


def _params(c: Collection) -> dict[str, Any]:
    return {"layer": c.id}


def extent(conn: psycopg.Connection[Any], c: Collection
           ) -> tuple[list[float] | None, list[datetime | None] | None]:
    """The collection's bounding box (lon/lat) and, if it has one, its time span."""
    times = f"min({c.temporal}), max({c.temporal})" if c.temporal else "NULL, NULL"
    row = conn.execute(_query(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), t0, t1 FROM (SELECT",
        f"ST_Extent({c.geom}) AS e, {times} FROM", c.source, "WHERE", c.where,
        ") q(e, t0, t1)"), _params(c)).fetchone()
    assert row is not None
    bbox = [float(v) for v in row[:4]] if row[0] is not None else None
    return bbox, ([row[4], row[5]] if c.temporal else None)


@dataclass(frozen=True)
class Query:
    """What a client asked of a collection's items."""

    limit: int
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # inclusive
    private: bool = False


def _filter(c: Collection, q: Query) -> tuple[str, dict[str, Any]]:
    where = [c.where]
    params = _params(c)
    if q.bbox is not None:
        where.append(f"{c.geom} && ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326)"
                     f" AND ST_Intersects({c.geom},"
                     " ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326))")
        params.update(zip(("x0", "y0", "x1", "y1"), q.bbox, strict=True))
    # Features without a time dimension are not filtered by time (OGC API Features 7.15.4).
    if c.temporal and q.since is not None:
        where.append(f"{c.temporal} >= %(since)s")
        params["since"] = q.since
    if c.temporal and q.until is not None:
        where.append(f"{c.temporal} <= %(until)s")
        params["until"] = q.until
    return " AND ".join(where), params


def _feature_sql(c: Collection, private: bool) -> str:
    properties = f"({c.properties})::jsonb"
    if private and c.private:
        properties += f" || ({c.private})::jsonb"
    return (f"json_build_object('type', 'Feature', 'id', {c.fid},"
            f" 'geometry', ST_AsGeoJSON({c.geom}, 7)::json, 'properties', {properties})::text")


def items(conn: psycopg.Connection[Any], c: Collection, q: Query) -> tuple[list[str], int]:
    """A page of features as GeoJSON text, in a stable order, and how many match in all."""
    where, params = _filter(c, q)
    rows = conn.execute(_query(
        "SELECT", _feature_sql(c, q.private), "FROM", c.source, "WHERE", where,
        "ORDER BY", c.order, "LIMIT %(limit)s OFFSET %(offset)s"),
        {**params, "limit": q.limit, "offset": q.offset}).fetchall()
    total = conn.execute(_query("SELECT count(*) FROM", c.source, "WHERE", where),
                         params).fetchone()
    return [str(r[0]) for r in rows], int(total[0]) if total else 0


def item(conn: psycopg.Connection[Any], c: Collection, fid: str, *, private: bool) -> str:
    """One feature as GeoJSON text; NotFound otherwise."""
    row = conn.execute(_query(
        "SELECT", _feature_sql(c, private), "FROM", c.source, "WHERE", c.where, "AND", c.fid,
        "= %(fid)s"), {**_params(c), "fid": fid}).fetchone()
    if row is None:
        raise NotFound(f"no feature {fid!r} in {c.id}")
    return str(row[0])
