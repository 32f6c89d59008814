"""Responsible units (社区, functional departments): the ``unit`` table.

Units are addressed by their stable ``code``; other layers refer to them by code too
(:func:`resolve_id` turns a code from a request into the row id).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors, sql
from psycopg.rows import class_row

from layers.catalog import tables
from layers.db import statements
from layers.errors import Conflict, NotFound
from layers.vocab import UnitKind


@dataclass(frozen=True)
class Unit:
    """A responsible unit: a community (territorial) or a functional department."""

    code: str
    name: str
    name_en: str | None
    kind: UnitKind
    leader: str | None
    contact: str | None


COLUMNS = ("code", "name", "name_en", "kind", "leader", "contact")
_SELECT = sql.SQL("SELECT code, name, name_en, kind, leader, contact FROM unit")
_RETURNING = sql.SQL(" RETURNING {}").format(sql.SQL(", ").join(map(sql.Identifier, COLUMNS)))


def list_all(conn: psycopg.Connection[Any]) -> list[Unit]:
    """Every unit, territorial ones first, then by code."""
    with conn.cursor(row_factory=class_row(Unit)) as cur:
        return cur.execute(_SELECT + sql.SQL(" ORDER BY kind DESC, code")).fetchall()


def get(conn: psycopg.Connection[Any], code: str) -> Unit:
    """The unit with ``code``; NotFound otherwise."""
    return tables.by_code(conn, _SELECT, "unit", code, "unit", Unit)


def resolve_id(conn: psycopg.Connection[Any], code: str) -> int:
    """The row id of the unit a request names by ``code``; ValidationFailed if unknown."""
    return tables.id_of(conn, "unit", code, f"no unit with code {code!r}")


def _write(conn: psycopg.Connection[Any], query: sql.Composed, params: Mapping[str, Any]
           ) -> Unit | None:
    """The unit ``query`` returns (written in a savepoint); Conflict naming the code or the
    name that is taken."""
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(Unit)) as cur:
            return cur.execute(query + _RETURNING, params).fetchone()
    except errors.UniqueViolation as exc:
        # The constraint name says which key clashed; the database's own text is never shown.
        if exc.diag.constraint_name == "unit_name_key":
            raise Conflict(f"a unit named {params.get('name')!r} already exists") from None
        raise Conflict(f"a unit with code {params.get('code')!r} already exists") from None


def create(
    conn: psycopg.Connection[Any],
    *,
    code: str,
    name: str,
    kind: UnitKind,
    name_en: str | None = None,
    leader: str | None = None,
    contact: str | None = None,
) -> Unit:
    """Insert a unit and return it; Conflict when its code or name is taken."""
    values = {"code": code, "name": name, "name_en": name_en, "kind": kind, "leader": leader,
              "contact": contact}
    row = _write(conn, statements.insert("unit", statements.placeholders(values)), values)
    assert row is not None
    return row


def update(conn: psycopg.Connection[Any], code: str, changes: Mapping[str, Any]) -> Unit:
    """Apply ``changes`` (a subset of :data:`COLUMNS`) to the unit and return it."""
    tables.check_fields(changes, COLUMNS, "unit")
    if not changes:
        return get(conn, code)
    query = statements.update_by_code("unit", statements.placeholders(changes))
    row = _write(conn, query, {**changes, "_code": code})
    if row is None:
        raise NotFound(f"no unit with code {code!r}")
    return row


def delete(conn: psycopg.Connection[Any], code: str) -> None:
    """Delete the unit; Conflict while issues still name it as responsible.

    Jurisdictions, sites and categories it owned keep existing without an owner, and its
    tokens go with it (the schema's ON DELETE rules).
    """
    try:
        with conn.transaction():
            cur = conn.execute("DELETE FROM unit WHERE code = %s", [code])
    except errors.ForeignKeyViolation:
        raise Conflict(f"unit {code!r} is still responsible for issues; "
                       "reassign them before deleting it") from None
    if cur.rowcount == 0:
        raise NotFound(f"no unit with code {code!r}")
