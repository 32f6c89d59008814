"""The jurisdiction hierarchy (街道 > 社区 > 网格): the ``jurisdiction`` table.

Geometry goes in and out as GeoJSON geometry objects in EPSG:4326; PostGIS parses and
writes it, and stores every area as a MultiPolygon. References (parent, owner unit) are
codes. A parent is always exactly one level up, so the hierarchy can never form a cycle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors, sql
from psycopg.rows import class_row

from layers import history, revisions
from layers.catalog import hierarchy, tables, units
from layers.catalog.tables import BBox
from layers.db import statements
from layers.errors import Conflict, NotFound, ValidationFailed
from layers.vocab import LEVELS, Level


@dataclass(frozen=True)
class Jurisdiction:
    """A jurisdiction; ``parent`` and ``unit`` (its territorial owner) are codes, ``geometry``
    a GeoJSON MultiPolygon in EPSG:4326."""

    code: str
    name: str
    level: Level
    parent: str | None
    unit: str | None
    geometry: dict[str, Any]


FIELDS = ("code", "name", "level", "parent", "unit", "geometry")
_SELECT = sql.SQL(
    "SELECT j.code, j.name, j.level, p.code AS parent, u.code AS unit,"
    " ST_AsGeoJSON(j.geom)::json AS geometry"
    " FROM jurisdiction j LEFT JOIN jurisdiction p ON p.id = j.parent_id"
    " LEFT JOIN unit u ON u.id = j.unit_id")
# GeoJSON in, 2D MultiPolygon in EPSG:4326 out, whatever the input's dimension.
_AREA = sql.SQL("ST_Multi(ST_Force2D(ST_SetSRID(ST_GeomFromGeoJSON({}::text), 4326)))")


def features(
    conn: psycopg.Connection[Any],
    *,
    level: Level | None = None,
    parent: str | None = None,
    bbox: BBox | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Jurisdiction]:
    """Jurisdictions, filtered, coarsest level first, then by
    code (a stable order for paging)."""
    clauses: list[sql.Composable] = []
    params: list[Any] = []
    if level is not None:
        clauses.append(sql.SQL("j.level = %s"))
        params.append(level)
    if parent is not None:
        clauses.append(sql.SQL("p.code = %s"))
        params.append(parent)
    if bbox is not None:
        clauses.append(tables.in_bbox("j"))
        params.extend(bbox)
    query = tables.where(_SELECT, clauses) + sql.SQL(
        " ORDER BY array_position(%s::text[], j.level), j.code LIMIT %s OFFSET %s")
    params.extend([list(LEVELS), limit, offset])
    with conn.cursor(row_factory=class_row(Jurisdiction)) as cur:
        return cur.execute(query, params).fetchall()


def get(conn: psycopg.Connection[Any], code: str) -> Jurisdiction:
    """The jurisdiction with ``code``; NotFound otherwise."""
    return tables.by_code(conn, _SELECT, "j", code, "jurisdiction", Jurisdiction)


def _columns(conn: psycopg.Connection[Any], values: Mapping[str, Any]
             ) -> tuple[dict[str, sql.Composable], dict[str, Any]]:
    """Request fields as column -> SQL expression, plus the parameters those expressions
    name; references are resolved to ids here so an unknown code is a clear 422."""
    tables.check_fields(values, FIELDS, "jurisdiction")
    exprs: dict[str, sql.Composable] = {}
    params: dict[str, Any] = {}
    for field, value in values.items():
        if field == "geometry":
            exprs["geom"] = _AREA.format(sql.Placeholder("geom"))
            params["geom"] = json.dumps(value)
            continue
        column = {"parent": "parent_id", "unit": "unit_id"}.get(field, field)
        if value is not None and field == "parent":
            value = tables.id_of(conn, "jurisdiction", value,
                                 f"no parent jurisdiction with code {value!r}")
        elif value is not None and field == "unit":
            value = units.resolve_id(conn, value)
        exprs[column] = sql.Placeholder(column)
        params[column] = value
    return exprs, params


def _check_hierarchy(conn: psycopg.Connection[Any], code: str) -> None:
    """After a write, inside its transaction: the stored children of ``code`` still fit it
    (the row's own parent is checked before the write, by ``hierarchy.require_fit``)."""
    bad = hierarchy.misfits(conn, code)
    if bad:
        raise ValidationFailed(hierarchy.misfit_message(*bad[0]))


def _write(conn: psycopg.Connection[Any], query: sql.Composed, params: dict[str, Any],
           code: str) -> None:
    # The schema's checks: geometry valid and non-empty, street <=> no parent.
    tables.write(conn, query, params,
                 taken=f"a jurisdiction with code {code!r} already exists",
                 broken="the jurisdiction breaks a data rule: its geometry must be a valid, "
                        "non-empty area and only a street has no parent")


def create(
    conn: psycopg.Connection[Any],
    *,
    code: str,
    name: str,
    level: Level,
    geometry: Mapping[str, Any],
    parent: str | None = None,
    unit: str | None = None,
    actor: str = "sitewatch",
) -> Jurisdiction:
    """Insert a jurisdiction (geometry: GeoJSON Polygon or MultiPolygon) and return it.

    Open issues it now covers (or is nearest to) are reassigned in the same transaction.
    """
    with conn.transaction():
        hierarchy.require_fit(conn, level, parent)
        exprs, params = _columns(conn, {"code": code, "name": name, "level": level,
                                        "parent": parent, "unit": unit, "geometry": geometry})
        with tables.reassigning(conn, "jurisdiction", code, actor=actor):
            _write(conn, statements.insert("jurisdiction", exprs), params, code)
            _check_hierarchy(conn, code)
        return get(conn, code)


def update(conn: psycopg.Connection[Any], code: str, changes: Mapping[str, Any], *,
           actor: str = "sitewatch") -> Jurisdiction:
    """Apply ``changes`` (a subset of :data:`FIELDS`) and return the jurisdiction."""
    with conn.transaction():
        current = get(conn, code)
        if {"level", "parent"} & set(changes):
            hierarchy.require_fit(conn, changes.get("level", current.level),
                                  changes.get("parent", current.parent))
        exprs, params = _columns(conn, changes)
        if not exprs:
            return get(conn, code)
        exprs["updated_at"] = sql.SQL("now()")
        new_code = str(changes.get("code", code))
        # Open issues follow the new boundary or owner; closed ones keep theirs.
        with tables.reassigning(conn, "jurisdiction", code, new_code=new_code, actor=actor,
                                when=bool(set(changes) - {"name", "code"}),
                                only_shape=set(changes) <= {"geometry", "name", "code"}):
            _write(conn, statements.update_by_code("jurisdiction", exprs),
                   {**params, "_code": code}, new_code)
            _check_hierarchy(conn, new_code)
        return get(conn, new_code)


def delete(conn: psycopg.Connection[Any], code: str, *, actor: str = "sitewatch") -> None:
    """Delete a jurisdiction; Conflict while it has children or issues refer to it.

    No issue moves (none may refer to it), but the change of the lines is a revision."""
    with conn.transaction():
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM jurisdiction c WHERE c.parent_id = j.id),"
            " EXISTS (SELECT 1 FROM issue i WHERE i.jurisdiction_id = j.id)"
            " FROM jurisdiction j WHERE j.code = %s FOR UPDATE", [code]).fetchone()
        if row is None:
            raise NotFound(f"no jurisdiction with code {code!r}")
        has_children, has_issues = row
        if has_children:
            raise Conflict(f"jurisdiction {code!r} has child jurisdictions; delete or move "
                           "them first")
        if has_issues:
            raise Conflict(f"issues are assigned to jurisdiction {code!r}; it cannot be "
                           "deleted")
        try:
            with conn.transaction():
                conn.execute("DELETE FROM jurisdiction WHERE code = %s", [code])
        except errors.ForeignKeyViolation:
            # A child or issue added concurrently after the check above.
            raise Conflict(f"jurisdiction {code!r} is still referenced") from None
        history.record_line_change(conn, revisions.Origin("edit", f"jurisdiction {code}"),
                                   actor=actor)
