"""Monitored sites (markets, construction sites, old compounds, ...) and their layers.

One ``site`` table with a ``layer`` column; layers are rows of ``site_layer`` so an admin can
add one without a migration. Geometry goes in and out as GeoJSON in EPSG:4326 (a Point,
Polygon or MultiPolygon, stored as given). Sites are addressed by their ``code``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import shapely
from numpy.typing import NDArray
from psycopg import errors, sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from geo.assign import Assigner
from layers import assignment
from layers.catalog import tables, units
from layers.catalog.tables import BBox
from layers.db import statements
from layers.errors import Conflict, NotFound, ValidationFailed
from layers.issues.records import SERVICE_MARGIN_M


@dataclass(frozen=True)
class SiteLayer:
    """A site layer (market, construction site, ...); built-in ones ship with the schema.
    ``public_attributes``: the attribute names the public OGC collection shows."""

    code: str
    name_zh: str
    name_en: str
    builtin: bool
    public_attributes: list[str]


@dataclass(frozen=True)
class Site:
    """A monitored site (an imported one may have no code); ``unit`` is the responsible
    unit's code, ``buffer_m`` its surroundings (及周边) in metres, ``geometry`` a GeoJSON
    Point, Polygon or MultiPolygon in EPSG:4326."""

    code: str | None
    name: str
    layer: str
    unit: str | None
    buffer_m: float
    inspection_interval_days: int | None
    attributes: dict[str, Any]
    geometry: dict[str, Any]


FIELDS = ("code", "name", "layer", "unit", "buffer_m", "inspection_interval_days",
          "attributes", "geometry")
_SELECT = sql.SQL(
    "SELECT s.code, s.name, s.layer, u.code AS unit, s.buffer_m,"
    " s.inspection_interval_days, s.attributes, ST_AsGeoJSON(s.geom)::json AS geometry"
    " FROM site s LEFT JOIN unit u ON u.id = s.unit_id")
_GEOM = sql.SQL("ST_Force2D(ST_SetSRID(ST_GeomFromGeoJSON({}::text), 4326))")
OUTSIDE = (f"the site lies outside the district's service area (more than "
           f"{SERVICE_MARGIN_M / 1000:g} km beyond its jurisdictions): swapped lon/lat or a wrong "
           "crs?")


def outside_service_area(assigner: Assigner, geometries: Sequence[Any]) -> NDArray[np.bool_]:
    """Whether each geometry (shapely; None counts as inside) has a vertex beyond the
    district's service area.

    The rule that refuses reports (``Assigner.outside_service_area`` with
    ``layers.issues.records.SERVICE_MARGIN_M``), applied to every vertex: a site there is a wrong
    coordinate, and would pull the district's map and extent across the globe. With no
    jurisdictions yet nothing is outside, as for reports: an office setting up often has
    its site lists (from other departments) before the boundary file, and the boundaries are
    checked on their own when they arrive.
    """
    values = np.asarray(geometries, dtype=object)
    coords, index = shapely.get_coordinates(values, return_index=True)
    far = assigner.outside_service_area(coords[:, 0], coords[:, 1], SERVICE_MARGIN_M)
    out = np.zeros(len(values), bool)
    out[index[far]] = True
    return out


def _check_service_area(conn: psycopg.Connection[Any], code: str) -> None:
    """Refuse the stored (not yet committed) site ``code`` if it lies outside the area."""
    row = conn.execute("SELECT ST_AsBinary(geom) FROM site WHERE code = %s", [code]).fetchone()
    if row is None:
        return
    if outside_service_area(assignment.load_assigner(conn), [shapely.from_wkb(row[0])])[0]:
        raise ValidationFailed(OUTSIDE, details=[{"field": "geometry", "message": OUTSIDE}])


def site_layers(conn: psycopg.Connection[Any]) -> list[SiteLayer]:
    """Every site layer, built-in ones first."""
    with conn.cursor(row_factory=class_row(SiteLayer)) as cur:
        return cur.execute("SELECT code, name_zh, name_en, builtin, public_attributes"
                           " FROM site_layer ORDER BY NOT builtin, code").fetchall()


def create_layer(conn: psycopg.Connection[Any], *, code: str, name_zh: str, name_en: str,
                 public_attributes: Sequence[str] = ()) -> SiteLayer:
    """Add a site layer and return it; Conflict when the code is taken.

    ``public_attributes``: the attribute names the public OGC collection shows (none else).
    """
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(SiteLayer)) as cur:
            row = cur.execute(
                "INSERT INTO site_layer (code, name_zh, name_en, public_attributes)"
                " VALUES (%s, %s, %s, %s)"
                " RETURNING code, name_zh, name_en, builtin, public_attributes",
                [code, name_zh, name_en, list(public_attributes)],
            ).fetchone()
    except errors.UniqueViolation:
        raise Conflict(f"a site layer with code {code!r} already exists") from None
    assert row is not None
    return row


def update_layer(conn: psycopg.Connection[Any], code: str, changes: dict[str, Any]
                 ) -> SiteLayer:
    """Change a layer's names or public attributes; NotFound for an unknown layer."""
    allowed = {"name_zh", "name_en", "public_attributes"}
    fields = {k: v for k, v in changes.items() if k in allowed}
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in fields)
    with conn.cursor(row_factory=class_row(SiteLayer)) as cur:
        if fields:
            cur.execute(sql.SQL("UPDATE site_layer SET {} WHERE code = %(code)s").format(
                assignments), {**fields, "code": code})
        row = cur.execute("SELECT code, name_zh, name_en, builtin, public_attributes"
                          " FROM site_layer WHERE code = %s", [code]).fetchone()
    if row is None:
        raise NotFound(f"no site layer with code {code!r}")
    return row


def check_layer(conn: psycopg.Connection[Any], layer: str) -> None:
    """Refuse a site layer that does not exist (a request names it)."""
    if conn.execute("SELECT 1 FROM site_layer WHERE code = %s", [layer]).fetchone() is None:
        raise ValidationFailed(f"no site layer with code {layer!r}")


def features(
    conn: psycopg.Connection[Any], *, layer: str | None = None, bbox: BBox | None = None,
    limit: int | None = None, offset: int = 0,
) -> list[Site]:
    """Sites, by layer and code (a stable order for paging);
    an unknown layer is a 422."""
    clauses: list[sql.Composable] = []
    params: list[Any] = []
    if layer is not None:
        check_layer(conn, layer)
        clauses.append(sql.SQL("s.layer = %s"))
        params.append(layer)
    if bbox is not None:
        clauses.append(tables.in_bbox("s"))
        params.extend(bbox)
    query = tables.where(_SELECT, clauses) + sql.SQL(
        " ORDER BY s.layer, s.code, s.id LIMIT %s OFFSET %s")
    with conn.cursor(row_factory=class_row(Site)) as cur:
        return cur.execute(query, [*params, limit, offset]).fetchall()


def get(conn: psycopg.Connection[Any], code: str) -> Site:
    """The site with ``code``; NotFound otherwise."""
    return tables.by_code(conn, _SELECT, "s", code, "site", Site)


def _columns(conn: psycopg.Connection[Any], values: Mapping[str, Any]
             ) -> tuple[dict[str, sql.Composable], dict[str, Any]]:
    """Request fields as column -> SQL expression plus the parameters they name."""
    tables.check_fields(values, FIELDS, "site")
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
            check_layer(conn, value)
        elif field == "unit" and value is not None:
            value = units.resolve_id(conn, value)
        elif field == "attributes":
            value = Jsonb(dict(value or {}))
        params[column] = value
    return exprs, params


def _write(conn: psycopg.Connection[Any], query: sql.Composed, params: dict[str, Any],
           code: str | None) -> None:
    tables.write(conn, query, params, taken=f"a site with code {code!r} already exists",
                 broken="the site breaks a data rule: its geometry must be a valid, non-empty "
                        "point or area and buffer_m within 0..1000")


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
) -> Site:
    """Insert a site (geometry: GeoJSON Point, Polygon or MultiPolygon) and return it.

    Open issues within its area or surroundings are relinked in the same transaction.
    """
    with conn.transaction():
        exprs, params = _columns(conn, {
            "code": code, "name": name, "layer": layer, "unit": unit, "buffer_m": buffer_m,
            "inspection_interval_days": inspection_interval_days,
            "attributes": attributes, "geometry": geometry})
        with tables.reassigning(conn, "site", code, actor=actor):
            _write(conn, statements.insert("site", exprs), params, code)
            _check_service_area(conn, code)
        return get(conn, code)


def update(conn: psycopg.Connection[Any], code: str, changes: Mapping[str, Any], *,
           actor: str = "sitewatch") -> Site:
    """Apply ``changes`` (a subset of :data:`FIELDS`) and return the site."""
    with conn.transaction():
        get(conn, code)
        exprs, params = _columns(conn, changes)
        if not exprs:
            return get(conn, code)
        exprs["updated_at"] = sql.SQL("now()")
        new_code = str(changes.get("code", code))
        with tables.reassigning(conn, "site", code, new_code=new_code, actor=actor,
                                when=bool(set(changes) & {"geometry", "buffer_m", "layer",
                                                          "unit"})):
            _write(conn, statements.update_by_code("site", exprs), {**params, "_code": code},
                   new_code)
            if "geometry" in changes:
                _check_service_area(conn, new_code)
        return get(conn, new_code)


def delete(conn: psycopg.Connection[Any], code: str, *, actor: str = "sitewatch") -> None:
    """Delete a site; its issues stay and lose the link, its specific rules go with it.

    Open issues it held are relinked to whatever site now takes them, if any.
    """
    with conn.transaction(), tables.reassigning(conn, "site", code, actor=actor):
        cur = conn.execute("DELETE FROM site WHERE code = %s", [code])
        if cur.rowcount == 0:
            raise NotFound(f"no site with code {code!r}")
