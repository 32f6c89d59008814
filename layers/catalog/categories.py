"""The problem catalog (问题类别): the ``category`` table.

Categories are never deleted, because issues keep referring to them; they are retired with
``active = false``. The default functional department is named by unit code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors, sql
from psycopg.rows import class_row

from layers.catalog import sites, tables, units
from layers.db import statements
from layers.errors import Conflict
from layers.vocab import CampaignAction


@dataclass(frozen=True)
class Category:
    """A problem category of the assessment standard (测评标准).

    ``functional_unit`` is the default functional department's code; ``deadline_working_days``,
    when set, replaces ``deadline_hours`` by working days of the office calendar;
    ``campaign_action`` is which of the five rectification actions it belongs to.
    """

    code: str
    name_zh: str
    name_en: str
    site_layer: str | None
    functional_unit: str | None
    deadline_hours: int
    deadline_working_days: int | None
    points: float
    dcm_event_class: str | None
    active: bool
    campaign_action: CampaignAction | None = None

COLUMNS = ("code", "name_zh", "name_en", "site_layer", "functional_unit", "deadline_hours",
           "deadline_working_days", "points", "dcm_event_class", "active", "campaign_action")
_SELECT = sql.SQL(
    "SELECT c.code, c.name_zh, c.name_en, c.site_layer, u.code AS functional_unit,"
    " c.deadline_hours, c.deadline_working_days, c.points::float8 AS points,"
    " c.dcm_event_class, c.active, c.campaign_action"
    " FROM category c LEFT JOIN unit u ON u.id = c.functional_unit_id")


def list_all(conn: psycopg.Connection[Any], *, active: bool | None = None
             ) -> list[Category]:
    """The catalog by code; ``active`` narrows it to current or retired categories."""
    query = sql.Composed([_SELECT])
    params: list[Any] = []
    if active is not None:
        query += sql.SQL(" WHERE c.active = %s")
        params.append(active)
    with conn.cursor(row_factory=class_row(Category)) as cur:
        return cur.execute(query + sql.SQL(" ORDER BY c.code"), params).fetchall()


def get(conn: psycopg.Connection[Any], code: str) -> Category:
    """The category with ``code``; NotFound otherwise."""
    return tables.by_code(conn, _SELECT, "c", code, "category", Category)


def _columns(conn: psycopg.Connection[Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Request fields to table columns: the unit code becomes its id, references checked."""
    tables.check_fields(values, COLUMNS, "category")
    columns = dict(values)
    if columns.get("site_layer") is not None:
        sites.check_layer(conn, columns["site_layer"])
    if "functional_unit" in columns:
        unit = columns.pop("functional_unit")
        columns["functional_unit_id"] = None if unit is None else units.resolve_id(conn, unit)
    return columns


def create(
    conn: psycopg.Connection[Any],
    *,
    code: str,
    name_zh: str,
    name_en: str,
    deadline_hours: int,
    points: float,
    deadline_working_days: int | None = None,
    site_layer: str | None = None,
    functional_unit: str | None = None,
    dcm_event_class: str | None = None,
    active: bool = True,
    campaign_action: CampaignAction | None = None,
) -> Category:
    """Add a category and return it; Conflict when the code is taken."""
    with conn.transaction():
        columns = _columns(conn, {
            "code": code, "name_zh": name_zh, "name_en": name_en, "site_layer": site_layer,
            "functional_unit": functional_unit, "deadline_hours": deadline_hours,
            "deadline_working_days": deadline_working_days, "points": points,
            "dcm_event_class": dcm_event_class, "active": active,
            "campaign_action": campaign_action})
        query = statements.insert("category", statements.placeholders(columns))
        tables.write(conn, query, columns,
                     taken=f"a category with code {code!r} already exists")
        return get(conn, code)


def update(conn: psycopg.Connection[Any], code: str, changes: Mapping[str, Any]
           ) -> Category:
    """Apply ``changes`` (a subset of :data:`COLUMNS`) and return the category.

    Renaming the code is refused while issues or rules use it: they would point nowhere.
    """
    with conn.transaction():
        get(conn, code)
        columns = _columns(conn, changes)
        if not columns:
            return get(conn, code)
        query = statements.update_by_code("category", statements.placeholders(columns))
        try:
            tables.write(conn, query, {**columns, "_code": code},
                         taken=f"a category with code {changes.get('code')!r} already exists")
        except errors.ForeignKeyViolation:
            raise Conflict(f"category {code!r} is used by issues or responsibility rules;"
                           " its code cannot change") from None
        return get(conn, columns.get("code", code))
