"""Monitored sites (markets, construction sites, old compounds, ...) and their layers.

One ``site`` table with a ``layer`` column; layers are rows of ``site_layer`` so an admin can
add one without a migration. Geometry goes in and out as GeoJSON in EPSG:4326 (a Point,
Polygon or MultiPolygon, stored as given). Sites are addressed by their ``code``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import errors, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from layers import assignment, statements, units
from layers.errors import Conflict, NotFound, ValidationFailed

FIELDS = ("code", "name", "layer", "unit", "buffer_m", "inspection_interval_days",
          "attributes", "geometry")
BBox = tuple[float, float, float, float]
_SELECT = sql.SQL(
    "SELECT s.code, s.name, s.layer, u.code AS unit, s.buffer_m,"
    " s.inspection_interval_days, s.attributes, ST_AsGeoJSON(s.geom)::json AS geometry"
    " FROM site s LEFT JOIN unit u ON u.id = s.unit_id")
_GEOM = sql.SQL("ST_Force2D(ST_SetSRID(ST_GeomFromGeoJSON({}::text), 4326))")


def site_layers(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every site layer, built-in ones first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT code, name_zh, name_en, builtin FROM site_layer"
                           " ORDER BY NOT builtin, code").fetchall()


def create_layer(conn: psycopg.Connection[Any], *, code: str, name_zh: str, name_en: str
                 ) -> dict[str, Any]:
    """Add a site layer and return it; Conflict when the code is taken."""
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "INSERT INTO site_layer (code, name_zh, name_en) VALUES (%s, %s, %s)"
                " RETURNING code, name_zh, name_en, builtin", [code, name_zh, name_en],
            ).fetchone()
    except errors.UniqueViolation:
        raise Conflict(f"a site layer with code {code!r} already exists") from None
    assert row is not None
    return row


def _check_layer(conn: psycopg.Connection[Any], layer: str) -> None:
    if conn.execute("SELECT 1 FROM site_layer WHERE code = %s", [layer]).fetchone() is None:
        raise ValidationFailed(f"no site layer with code {layer!r}")


def features(
    conn: psycopg.Connection[Any], *, layer: str | None = None, bbox: BBox | None = None,
    limit: int | None = None, offset: int = 0,
) -> list[dict[str, Any]]:
    """Sites (geometry as a GeoJSON dict), by layer and code (a stable order for paging);
    an unknown layer is a 422."""
    where: list[sql.Composable] = []
    params: list[Any] = []
    if layer is not None:
        _check_layer(conn, layer)
        where.append(sql.SQL("s.layer = %s"))
        params.append(layer)
    if bbox is not None:
        where.append(sql.SQL("ST_Intersects(s.geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))"))
        params.extend(bbox)
    query = sql.Composed([_SELECT])
    if where:
        query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query + sql.SQL(" ORDER BY s.layer, s.code, s.id"
                                           " LIMIT %s OFFSET %s"),
                           [*params, limit, offset]).fetchall()


def get(conn: psycopg.Connection[Any], code: str) -> dict[str, Any]:
    """The site with ``code``; NotFound otherwise."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_SELECT + sql.SQL(" WHERE s.code = %s"), [code]).fetchone()
    if row is None:
        raise NotFound(f"no site with code {code!r}")
    return row


def _columns(conn: psycopg.Connection[Any], values: Mapping[str, Any]
             ) -> tuple[dict[str, sql.Composable], dict[str, Any]]:
    """Request fields as column -> SQL expression plus the parameters they name."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"not site fields: {sorted(unknown)}")
    exprs: dict[str, sql.Composable] = {}
    params: dict[str, Any] = {}
    for field, value in values.items():
        column = {"unit": "unit_id", "geometry": "geom"}.get(field, field)
        if field == "geometry":
            exprs[column] = _GEOM.format(sql.Placeholder(column))
            value = json.dumps(value)
        else:
            exprs[column] = sql.Placeholder(column)
        if field == "layer":
            _check_layer(conn, value)
        elif field == "unit" and value is not None:
            value = units.resolve_id(conn, value)
        elif field == "attributes":
            value = Jsonb(dict(value or {}))
        params[column] = value
    return exprs, params


def _write(conn: psycopg.Connection[Any], query: sql.Composed, params: dict[str, Any],
           code: str | None) -> None:
    try:
        with conn.transaction():
            conn.execute(query, params)
    except errors.UniqueViolation:
        raise Conflict(f"a site with code {code!r} already exists") from None
    except errors.CheckViolation:
        # Backs up the API's validation; the database's own text is never shown.
        raise ValidationFailed("the site breaks a data rule: its geometry must be a valid, "
                               "non-empty point or area and buffer_m within 0..1000") from None


def create(
    conn: psycopg.Connection[Any],
    *,
    code: str,
    name: str,
    layer: str,
    geometry: Mapping[str, Any],
    unit: str | None = None,
    buffer_m: float = 0.0,
    inspection_interval_days: int | None = None,
    attributes: Mapping[str, Any] | None = None,
    actor: str = "sitewatch",
) -> dict[str, Any]:
    """Insert a site (geometry: GeoJSON Point, Polygon or MultiPolygon) and return it.

    Open issues within its area or surroundings are relinked in the same transaction.
    """
    with conn.transaction():
        exprs, params = _columns(conn, {
            "code": code, "name": name, "layer": layer, "unit": unit, "buffer_m": buffer_m,
            "inspection_interval_days": inspection_interval_days,
            "attributes": attributes, "geometry": geometry})
        query = statements.insert("site", exprs)
        _write(conn, query, params, code)
        assignment.reassign_changed(conn, None, assignment.footprint(conn, "site", code),
                                    actor=actor)
        return get(conn, code)


def update(conn: psycopg.Connection[Any], code: str, changes: Mapping[str, Any], *,
           actor: str = "sitewatch") -> dict[str, Any]:
    """Apply ``changes`` (a subset of :data:`FIELDS`) and return the site."""
    with conn.transaction():
        get(conn, code)
        exprs, params = _columns(conn, changes)
        if not exprs:
            return get(conn, code)
        before = assignment.footprint(conn, "site", code)
        exprs["updated_at"] = sql.SQL("now()")
        new_code = str(changes.get("code", code))
        query = statements.update_by_code("site", exprs)
        _write(conn, query, {**params, "_code": code}, new_code)
        if set(changes) & {"geometry", "buffer_m", "layer", "unit"}:
            assignment.reassign_changed(conn, before, assignment.footprint(conn, "site", new_code),
                                        actor=actor)
        return get(conn, new_code)


def delete(conn: psycopg.Connection[Any], code: str, *, actor: str = "sitewatch") -> None:
    """Delete a site; its issues stay and lose the link, its specific rules go with it.

    Open issues it held are relinked to whatever site now takes them, if any.
    """
    with conn.transaction():
        before = assignment.footprint(conn, "site", code)
        cur = conn.execute("DELETE FROM site WHERE code = %s", [code])
        if cur.rowcount == 0:
            raise NotFound(f"no site with code {code!r}")
        assignment.reassign_changed(conn, before, None, actor=actor)
