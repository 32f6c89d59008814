"""Import jurisdictions, sites, issues and responsibility rules from files, all or nothing.

Every row is checked before anything is written; if any row is bad, ``ValidationFailed``
lists every bad row (``{"row", "field", "message"}``, rows numbered as the user sees them,
``row`` None for a problem with the whole file) and the database is untouched. Good files are
written in one transaction, and imports that change what assignment depends on re-run it for
open issues in that same transaction. Column names (DESIGN.md "Import columns") match
case-insensitively, and the Chinese headers an office sheet uses are accepted too.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import shapely

from layers import assignment, history, revisions
from layers.catalog import hierarchy, sites
from layers.db import partitions
from layers.errors import ValidationFailed
from layers.io.gisfile import (
    LAT_NAMES,
    LON_NAMES,
    POLYGONAL,
    ROW,
    SHEET_SUFFIXES,
    WKT_NAMES,
    Table,
    cell_text,
    check_geometries,
    find_column,
    read_file,
    read_sheet,
    row_error,
)
from layers.issues import records
from layers.text import quoted
from layers.vocab import AWAITING_UNIT_STATUSES, LEVELS

CODE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
Columns = Mapping[str, tuple[str, ...]]

JURISDICTION_COLUMNS: Columns = {
    "code": ("code", "编码", "代码"), "name": ("name", "名称"),
    "level": ("level", "级别", "层级"), "parent": ("parent", "上级", "上级编码"),
    "unit": ("unit", "责任单位", "单位")}
SITE_COLUMNS: Columns = {
    "name": ("name", "名称"), "layer": ("layer", "图层", "类型"), "code": ("code", "编码"),
    "unit": ("unit", "责任单位"), "buffer_m": ("buffer_m", "周边范围", "缓冲距离"),
    "inspection_interval_days": ("inspection_interval_days", "巡查周期")}
ISSUE_COLUMNS: Columns = {
    "category": ("category", "问题类别", "类别"),
    "description": ("description", "问题描述", "描述"),
    "reported_at": ("reported_at", "发现时间", "上报时间"), "source": ("source", "来源"),
    "status": ("status", "状态"), "reporter": ("reporter", "上报人")}
RULE_COLUMNS: Columns = {
    "task": ("task", "任务", "工作任务", "任务内容"),
    "category": ("category", "问题类别", "类别"),
    "community": ("community", "社区", "jurisdiction", "辖区"),
    "site": ("site", "点位", "点位名称"), "unit": ("unit", "责任单位", "牵头单位"),
    "leader": ("leader", "挂钩领导", "责任领导"), "contact": ("contact", "联系方式", "联系电话")}
# Columns an export adds that describe the stored row rather than the site.
_EXPORT_ONLY = ("updated_at",)
_LEVEL_NAMES = {"街道": "street", "社区": "community", "网格": "grid"}
_SOURCE_NAMES = {"自查": "self_inspection", "督查": "supervision", "测评": "external_assessment",
                 "外部测评": "external_assessment", "市民": "citizen", "群众": "citizen"}


@dataclass
class ImportReport:
    """What an import did; also the body of ``POST /api/v1/imports``.

    ``repaired`` lists ``{"row", "repair"}`` for each geometry make_valid fixed;
    ``reassigned`` holds the counts of the re-run assignment (examined, changed) and, when
    it moved issues, ``revision``: the id of the revision recording them;
    ``issue_ids`` the public ids of imported issues, in file order.
    """

    kind: str
    rows: int
    created: int = 0
    updated: int = 0
    repaired: list[dict[str, Any]] = field(default_factory=list)
    reassigned: dict[str, int] = field(default_factory=dict)
    issue_ids: list[str] = field(default_factory=list)


@dataclass
class Checked:
    """A file's rows after every check of its import: what the import writes, and what a
    preview (:mod:`layers.io.import_preview`) puts in place of the stored rows."""

    name: str
    rows: list[dict[str, Any]]
    found: dict[str, str | None]
    report: ImportReport


class _Errors:
    """Row errors collected across all checks, raised together."""

    def __init__(self, initial: Iterable[dict[str, Any]] = ()) -> None:
        self.items: list[dict[str, Any]] = list(initial)

    def add(self, row: int | None, field_name: str | None, message: str) -> None:
        self.items.append(row_error(row, field_name, message))

    def rows(self) -> set[int]:
        return {e["row"] for e in self.items}

    def raise_if_any(self, name: str) -> None:
        if self.items:
            bad = sorted(self.rows() - {None})
            self.items.sort(key=lambda e: (e["row"] is not None, e["row"] or 0))
            raise ValidationFailed(f"{name}: {len(bad)} row(s) are not valid; nothing was "
                                   "imported", details=self.items)


def _columns(frame: pd.DataFrame, spec: Columns, required: Iterable[str], name: str
             ) -> dict[str, str | None]:
    found = {key: find_column(frame, aliases) for key, aliases in spec.items()}
    missing = [key for key in required if found[key] is None]
    if missing:
        raise ValidationFailed(
            f"{name}: required column(s) missing: {', '.join(missing)}",
            details=[row_error(None, key, f"column {key!r} is missing (also accepted: "
                                          f"{', '.join(spec[key][1:]) or 'none'})")
                     for key in missing])
    return found


def _records(frame: pd.DataFrame, found: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """Rows as dicts of the spec's keys (None when absent/empty) plus row and geometry."""
    out = []
    for record in frame.to_dict("records"):
        row = {key: (record[column] if column is not None else None)
               for key, column in found.items()}
        row[ROW] = int(record[ROW])
        row["geometry"] = record.get("geometry")
        row["_all"] = record
        out.append(row)
    return out


def _lookup(conn: psycopg.Connection[Any], query: str) -> dict[str, Any]:
    return {str(k): v for k, v in conn.execute(query).fetchall()}


def _unit_ids(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Unit id by code and by name (codes win where a code equals another unit's name)."""
    rows = conn.execute("SELECT id, code, name FROM unit").fetchall()
    return {**{name: i for i, _, name in rows}, **{code: i for i, code, _ in rows}}


def _geometries(rows: list[dict[str, Any]], allowed: tuple[str, ...], errors: _Errors,
                report: ImportReport) -> None:
    """Check and repair each row's geometry in place; rows that failed to read are skipped."""
    unread = errors.rows()
    checks = check_geometries([r["geometry"] for r in rows], allowed)
    for row, check in zip(rows, checks, strict=True):
        row["geometry"] = check.geometry
        if check.error and row[ROW] not in unread:
            errors.add(row[ROW], "geometry", check.error)
        if check.repair:
            report.repaired.append({ROW: row[ROW], "repair": check.repair})


def _check_code(row: dict[str, Any], errors: _Errors, seen: dict[str, int],
                required: bool) -> str | None:
    code = cell_text(row["code"])
    if code is None:
        if required:
            errors.add(row[ROW], "code", "code is required")
        return None
    if not CODE.match(code):
        errors.add(row[ROW], "code", f"code {quoted(code)} must be 1-40 letters, digits, _ . -")
    elif code in seen:
        errors.add(row[ROW], "code", f"code {quoted(code)} also appears on row {seen[code]}")
    else:
        seen[code] = row[ROW]
    return code


def _check_name(row: dict[str, Any], errors: _Errors, limit: int) -> str | None:
    name = cell_text(row["name"])
    if name is None or len(name) > limit:
        errors.add(row[ROW], "name", f"name is required, at most {limit} characters")
    return name


def _check_unit(row: dict[str, Any], unit_ids: Mapping[str, int], errors: _Errors
                ) -> int | None:
    unit = cell_text(row["unit"])
    if unit is None:
        return None
    if unit not in unit_ids:
        errors.add(row[ROW], "unit", f"no unit with code or name {quoted(unit)}")
        return None
    return unit_ids[unit]


def _upsert(conn: psycopg.Connection[Any], query: str, params: Mapping[str, Any]
            ) -> tuple[int, int]:
    """Run an INSERT ... ON CONFLICT ... RETURNING (xmax = 0); count created and updated."""
    try:
        flags = [bool(r[0]) for r in conn.execute(query, params).fetchall()]
    except psycopg.errors.IntegrityError as exc:
        # Checks above mirror the schema's; this is the backstop, without the database's text.
        raise ValidationFailed("the file breaks a data rule of the database "
                               f"({exc.diag.constraint_name or 'constraint'}); nothing was "
                               "imported") from None
    return sum(flags), len(flags) - sum(flags)


def _reassign(conn: psycopg.Connection[Any], actor: str, path: Path) -> dict[str, int]:
    """Re-run assignment; the lines changed and the issues moved are stored as one revision
    naming the file (none when the file changed nothing)."""
    origin = revisions.Origin.of_file(path)
    counts = assignment.reassign(conn, assignment.load_assigner(conn), actor=actor,
                                 origin=origin)
    stored = history.record_line_change(conn, origin, actor=actor,
                                        examined=counts["examined"])
    return counts if stored is None else {**counts, "revision": stored}


# --- jurisdictions ------------------------------------------------------------------------


def import_jurisdictions(conn: psycopg.Connection[Any], path: Path, *, crs: str | None = None,
                         actor: str) -> ImportReport:
    """Upsert jurisdictions by code (parents first, any file order); reassign open issues."""
    with conn.transaction():
        checked = check_jurisdictions(conn, path, crs=crs)
        rows, report = checked.rows, checked.report
        for level in LEVELS:
            group = [r for r in rows if r["level"] == level]
            if group:
                created, updated = _upsert(conn, _UPSERT_JURISDICTIONS, {
                    "code": [r["code"] for r in group], "name": [r["name"] for r in group],
                    "level": [level] * len(group),
                    "parent": [cell_text(r["parent"]) for r in group],
                    "unit_id": [r["unit_id"] for r in group],
                    "wkb": [shapely.to_wkb(r["geometry"]) for r in group],
                    "has_unit": checked.found["unit"] is not None})
                report.created += created
                report.updated += updated
        raise_misfits(hierarchy.misfits(conn), checked)
        report.reassigned = _reassign(conn, actor, path)
    return report


def check_jurisdictions(conn: psycopg.Connection[Any], path: Path, *, crs: str | None = None
                        ) -> Checked:
    """Read ``path`` and check every row as :func:`import_jurisdictions` does, writing
    nothing; ``ValidationFailed`` lists every bad row. The stored hierarchy is checked once
    the rows are in place (:func:`raise_misfits`)."""
    table = read_file(path, crs=crs)
    found = _columns(table.frame, JURISDICTION_COLUMNS, ("code", "name", "level"), path.name)
    rows = _records(table.frame, found)
    report = ImportReport("jurisdictions", len(rows))
    errors = _Errors(table.errors)
    unit_ids = _unit_ids(conn)
    known = _lookup(conn, "SELECT code, level FROM jurisdiction")
    _geometries(rows, POLYGONAL, errors, report)
    seen: dict[str, int] = {}
    for row in rows:
        row["code"] = _check_code(row, errors, seen, required=True)
        row["name"] = _check_name(row, errors, 100)
        level = cell_text(row["level"])
        row["level"] = _LEVEL_NAMES.get(level or "", (level or "").lower())
        wrong_level = hierarchy.level_problem(row["level"])
        if wrong_level is not None:
            errors.add(row[ROW], "level", wrong_level)
        row["unit_id"] = _check_unit(row, unit_ids, errors)
    levels = {**known, **{r["code"]: r["level"] for r in rows if r["code"]}}
    for row in rows:
        _check_parent(row, levels, errors)
    errors.raise_if_any(path.name)
    return Checked(path.name, rows, found, report)


def _check_parent(row: dict[str, Any], levels: Mapping[str, str], errors: _Errors) -> None:
    """The row's parent (in the file or the database, whose ``levels`` are by code) fits."""
    parent, level = cell_text(row["parent"]), row["level"]
    if hierarchy.level_problem(level) is not None:
        return  # said on the level column
    problem = hierarchy.parent_problem(level, parent, None if parent is None
                                       else levels.get(parent))
    if problem is not None:
        errors.add(row[ROW], "parent", problem)


def raise_misfits(bad: list[tuple[str, str]], checked: Checked) -> None:
    """After the rows are in place: stored children of re-levelled jurisdictions (the
    (child, parent) codes ``bad``) must still fit, else nothing is imported."""
    if bad:
        rows = {r["code"]: r[ROW] for r in checked.rows}
        raise ValidationFailed(
            f"{checked.name}: the hierarchy would break; nothing was imported",
            details=[row_error(rows.get(parent), "level", hierarchy.misfit_message(child, parent))
                     for child, parent in bad])


_UPSERT_JURISDICTIONS = """
INSERT INTO jurisdiction AS j (code, name, level, parent_id, unit_id, geom)
SELECT t.code, t.name, t.level, p.id, t.unit_id, ST_Multi(ST_GeomFromWKB(t.wkb, 4326))
FROM unnest(%(code)s::text[], %(name)s::text[], %(level)s::text[], %(parent)s::text[],
            %(unit_id)s::bigint[], %(wkb)s::bytea[]) AS t(code, name, level, parent, unit_id, wkb)
LEFT JOIN jurisdiction p ON p.code = t.parent
ON CONFLICT (code) DO UPDATE SET
    name = EXCLUDED.name, level = EXCLUDED.level, parent_id = EXCLUDED.parent_id,
    unit_id = CASE WHEN %(has_unit)s THEN EXCLUDED.unit_id ELSE j.unit_id END,
    geom = EXCLUDED.geom, updated_at = now()
RETURNING (xmax = 0)
"""


# --- sites --------------------------------------------------------------------------------


def import_sites(conn: psycopg.Connection[Any], path: Path, *, layer: str | None = None,
                 crs: str | None = None, actor: str) -> ImportReport:
    """Upsert sites (by code when given); unknown columns become attributes; reassign."""
    with conn.transaction():
        checked = check_sites(conn, path, layer=layer, crs=crs)
        rows, found, report = checked.rows, checked.found, checked.report
        if rows:
            report.created, report.updated = _upsert(conn, _UPSERT_SITES, {
                **{k: [r[k] for r in rows] for k in ("code", "name", "layer", "unit_id",
                                                      "buffer_m", "interval", "attributes")},
                "wkb": [shapely.to_wkb(r["geometry"]) for r in rows],
                "has_unit": found["unit"] is not None, "has_buffer": found["buffer_m"] is not None,
                "has_interval": found["inspection_interval_days"] is not None})
        report.reassigned = _reassign(conn, actor, path)
    return report


def check_sites(conn: psycopg.Connection[Any], path: Path, *, layer: str | None = None,
                crs: str | None = None) -> Checked:
    """Read ``path`` and check every row as :func:`import_sites` does, writing nothing."""
    table = read_file(path, crs=crs)
    required = ("name",) if layer else ("name", "layer")
    found = _columns(table.frame, SITE_COLUMNS, required, path.name)
    rows = _records(table.frame, found)
    report = ImportReport("sites", len(rows))
    errors = _Errors(table.errors)
    own = ({c for c in found.values() if c} | _coordinate_columns(table)
           | {ROW, "geometry", *_EXPORT_ONLY})
    unit_ids = _unit_ids(conn)
    layers = set(_lookup(conn, "SELECT code, builtin FROM site_layer"))
    _geometries(rows, ("Point", *POLYGONAL), errors, report)
    far = sites.outside_service_area(assignment.load_assigner(conn),
                                     [r["geometry"] for r in rows])
    seen: dict[str, int] = {}
    for row, outside in zip(rows, far.tolist(), strict=True):
        if outside:
            errors.add(row[ROW], "geometry", sites.OUTSIDE)
        row["code"] = _check_code(row, errors, seen, required=False)
        row["name"] = _check_name(row, errors, 200)
        given = cell_text(row["layer"])
        if layer and given and given != layer:
            errors.add(row[ROW], "layer", f"the row says {quoted(given)} but "
                                          f"{quoted(layer)} was given")
        row["layer"] = given or layer
        if row["layer"] not in layers:
            errors.add(row[ROW], "layer", f"unknown site layer {quoted(row['layer'])}; known: "
                                          f"{', '.join(sorted(layers))}")
        row["unit_id"] = _check_unit(row, unit_ids, errors)
        row["buffer_m"] = _bounded(row, "buffer_m", 0, 1000, errors)
        interval = _bounded(row, "inspection_interval_days", 1, 366, errors)
        row["interval"] = None if interval is None else int(interval)
        row["attributes"] = json.dumps(
            {str(k): _json_value(v) for k, v in row["_all"].items()
             if k not in own and cell_text(v) is not None}, ensure_ascii=False)
    errors.raise_if_any(path.name)
    return Checked(path.name, rows, found, report)


def _coordinate_columns(table: Table) -> set[str]:
    if table.geometry_from in ("lonlat", "wkt"):
        return {c for names in (LON_NAMES, LAT_NAMES, WKT_NAMES)
                if (c := find_column(table.frame, names)) is not None}
    return set()


def _bounded(row: dict[str, Any], key: str, low: float, high: float, errors: _Errors
             ) -> float | None:
    text = cell_text(row[key])
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not low <= value <= high:
        errors.add(row[ROW], key, f"{key} must be a number from {low:g} to {high:g}")
        return None
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


_UPSERT_SITES = """
INSERT INTO site AS s (code, name, layer, unit_id, buffer_m, inspection_interval_days,
                       attributes, geom)
SELECT t.code, t.name, t.layer, t.unit_id, coalesce(t.buffer_m, 0), t.interval,
       t.attributes::jsonb, ST_GeomFromWKB(t.wkb, 4326)
FROM unnest(%(code)s::text[], %(name)s::text[], %(layer)s::text[], %(unit_id)s::bigint[],
            %(buffer_m)s::float8[], %(interval)s::int[], %(attributes)s::text[],
            %(wkb)s::bytea[]) AS t(code, name, layer, unit_id, buffer_m, interval, attributes, wkb)
ON CONFLICT (code) DO UPDATE SET
    name = EXCLUDED.name, layer = EXCLUDED.layer, geom = EXCLUDED.geom,
    unit_id = CASE WHEN %(has_unit)s THEN EXCLUDED.unit_id ELSE s.unit_id END,
    buffer_m = CASE WHEN %(has_buffer)s THEN EXCLUDED.buffer_m ELSE s.buffer_m END,
    inspection_interval_days = CASE WHEN %(has_interval)s THEN EXCLUDED.inspection_interval_days
                                    ELSE s.inspection_interval_days END,
    attributes = s.attributes || EXCLUDED.attributes, updated_at = now()
RETURNING (xmax = 0)
"""


# --- issues -------------------------------------------------------------------------------


def import_issues(conn: psycopg.Connection[Any], path: Path, *, zone: tzinfo,
                  crs: str | None = None, actor: str, actor_role: str) -> ImportReport:
    """Create open issues, assigned like any report (``layers.issues.records.create_many``).

    Times without an offset in the file are the office's wall-clock time: local in ``zone``,
    the district's.
    """
    table = read_file(path, crs=crs)
    found = _columns(table.frame, ISSUE_COLUMNS, ("category", "description"), path.name)
    if table.geometry_from is None:
        raise ValidationFailed(f"{path.name}: the sheet needs lon and lat columns",
                               details=[row_error(None, "lon", "column 'lon' is missing"),
                                        row_error(None, "lat", "column 'lat' is missing")])
    rows = _records(table.frame, found)
    report = ImportReport("issues", len(rows))
    errors = _Errors(table.errors)
    now = datetime.now(UTC)
    with conn.transaction():
        by_name = _lookup(conn, "SELECT name_zh, code FROM category")
        _geometries(rows, ("Point",), errors, report)
        good: list[tuple[int, records.NewIssue]] = []
        for row in rows:
            issue = _new_issue(row, by_name, now, zone, errors)
            if issue is not None:
                good.append((row[ROW], issue))
        # Back-dated reports (an archive) go to their months, not the default partition.
        dated = [issue.reported_at for _, issue in good if issue.reported_at is not None]
        if dated:
            partitions.ensure(conn, min(dated), max(dated))
        try:
            ids = records.create_many(conn, assignment.load_assigner(conn),
                                     [issue for _, issue in good], actor=actor,
                                     actor_role=actor_role)
        except ValidationFailed as exc:
            for detail in exc.details if isinstance(exc.details, list) else []:
                errors.add(good[detail["index"]][0], detail["field"], detail["message"])
            ids = []
        # Rows that failed the checks above were left out of create_many: raising here rolls
        # back whatever it stored for the others.
        errors.raise_if_any(path.name)
        report.created, report.issue_ids = len(ids), ids
    return report


def _new_issue(row: dict[str, Any], categories: Mapping[str, str], now: datetime,
               zone: tzinfo, errors: _Errors) -> records.NewIssue | None:
    n = row[ROW]
    before = len(errors.items)
    category = cell_text(row["category"])
    description = cell_text(row["description"])
    if category is None:
        errors.add(n, "category", "category is required")
    if description is None:
        errors.add(n, "description", "description is required")
    source = cell_text(row["source"]) or "self_inspection"
    source = _SOURCE_NAMES.get(source, source)
    status = cell_text(row["status"])
    # Issues arrive waiting for their unit; the assignment engine decides between reported
    # and assigned.
    if status is not None and status not in AWAITING_UNIT_STATUSES:
        errors.add(n, "status", f"only open issues ({', '.join(AWAITING_UNIT_STATUSES)}) can"
                   " be imported; the assignment decides which")
    try:
        reported_at = _timestamp(row["reported_at"], zone)
    except ValueError:
        reported_at = None
        errors.add(n, "reported_at", "not a date and time (e.g. 2026-05-03 14:30)")
    if reported_at is not None and reported_at > now + timedelta(minutes=10):
        errors.add(n, "reported_at", "reported_at is in the future")
    if row["geometry"] is None or len(errors.items) > before or n in errors.rows():
        return None
    assert description and category
    return records.NewIssue(
        category=categories.get(category, category), lon=float(row["geometry"].x),
        lat=float(row["geometry"].y), description=description, source=source,
        reported_at=reported_at, reporter=cell_text(row["reporter"]))


def _timestamp(value: Any, zone: tzinfo) -> datetime | None:
    """A cell as an aware datetime (naive means local time in ``zone``), None if empty.

    Raises ValueError when the cell is not a date and time.
    """
    if cell_text(value) is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except TypeError:
        raise ValueError(value) from None
    if pd.isna(stamp):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(zone)
    result: datetime = stamp.to_pydatetime()
    return result


# --- responsibility rules (任务分解表) ------------------------------------------------------


def import_responsibilities(conn: psycopg.Connection[Any], path: Path, *, actor: str
                            ) -> ImportReport:
    """Upsert the task breakdown table into ``responsibility_rule``; reassign open issues.

    A row names a category (code or Chinese name) and/or a community (jurisdiction code or
    name) and/or a site (code or name), and the responsible unit (code or name).
    """
    with conn.transaction():
        checked = check_responsibilities(conn, path)
        rows, report = checked.rows, checked.report
        if rows:
            report.created, report.updated = _upsert(conn, _UPSERT_RULES, {
                k: [r[k] for r in rows] for k in RULE_FIELDS})
        report.reassigned = _reassign(conn, actor, path)
    return report


#: What a rule row of the file sets (the upsert's columns).
RULE_FIELDS = ("task", "category_code", "jurisdiction_id", "site_id", "unit_id", "leader",
               "contact")


def check_responsibilities(conn: psycopg.Connection[Any], path: Path) -> Checked:
    """Read ``path`` and check every row as :func:`import_responsibilities` does, writing
    nothing."""
    if path.suffix.lower() not in SHEET_SUFFIXES:
        raise ValidationFailed(f"{path.name}: the task breakdown table must be .xlsx or .csv")
    headers = frozenset(a.lower() for aliases in RULE_COLUMNS.values() for a in aliases)
    table = read_sheet(path, header_names=headers)
    found = _columns(table.frame, RULE_COLUMNS, ("unit",), path.name)
    if not any(found[k] for k in ("category", "community", "site")):
        raise ValidationFailed(f"{path.name}: needs a category, community or site column")
    rows = _records(table.frame, found)
    report = ImportReport("responsibilities", len(rows))
    errors = _Errors(table.errors)
    unit_ids = _unit_ids(conn)
    categories = {**_lookup(conn, "SELECT name_zh, code FROM category"),
                  **_lookup(conn, "SELECT code, code FROM category")}
    places = {"community": _named_ids(conn, "jurisdiction"), "site": _named_ids(conn, "site")}
    seen: dict[tuple[Any, ...], int] = {}
    for row in rows:
        _check_rule(row, categories, places, unit_ids, errors, seen)
    errors.raise_if_any(path.name)
    return Checked(path.name, rows, found, report)


def _named_ids(conn: psycopg.Connection[Any], table: str) -> dict[str, list[int]]:
    """Ids by code and by name; a name may be shared, which makes it ambiguous."""
    query = {"jurisdiction": "SELECT id, code, name FROM jurisdiction",
             "site": "SELECT id, code, name FROM site"}[table]
    out: dict[str, list[int]] = {}
    for i, code, name in conn.execute(query).fetchall():
        out.setdefault(name, []).append(i)
        if code is not None:
            out[code] = [i]
    return out


def _check_rule(row: dict[str, Any], categories: Mapping[str, str],
                places: Mapping[str, Mapping[str, list[int]]], unit_ids: Mapping[str, int],
                errors: _Errors, seen: dict[tuple[Any, ...], int]) -> None:
    n = row[ROW]
    category = cell_text(row["category"])
    row["category_code"] = categories.get(category) if category else None
    if category and row["category_code"] is None:
        errors.add(n, "category", f"unknown category {quoted(category)} (a code or Chinese name)")
    for key, column in (("community", "jurisdiction_id"), ("site", "site_id")):
        name = cell_text(row[key])
        ids = places[key].get(name, []) if name else []
        row[column] = ids[0] if len(ids) == 1 else None
        if name and not ids:
            errors.add(n, key, f"no {key} with code or name {quoted(name)}")
        elif len(ids) > 1:
            errors.add(n, key, f"{len(ids)} {key}s are named {quoted(name)}; use the code")
    if not (category or cell_text(row["community"]) or cell_text(row["site"])):
        errors.add(n, None, "a rule needs a category, community or site")
    row["unit_id"] = _check_unit(row, unit_ids, errors)
    if cell_text(row["unit"]) is None:
        errors.add(n, "unit", "the responsible unit is required")
    row["task"], row["leader"], row["contact"] = (
        cell_text(row["task"]), cell_text(row["leader"]), cell_text(row["contact"]))
    triple = (row["category_code"], row["jurisdiction_id"], row["site_id"])
    if n not in errors.rows():
        if triple in seen:
            errors.add(n, None, f"the same category/community/site as row {seen[triple]}")
        seen.setdefault(triple, n)


_UPSERT_RULES = """
INSERT INTO responsibility_rule AS r (task, category_code, jurisdiction_id, site_id, unit_id,
                                      leader, contact)
SELECT * FROM unnest(%(task)s::text[], %(category_code)s::text[], %(jurisdiction_id)s::bigint[],
                     %(site_id)s::bigint[], %(unit_id)s::bigint[], %(leader)s::text[],
                     %(contact)s::text[])
ON CONFLICT (category_code, jurisdiction_id, site_id) DO UPDATE SET
    task = EXCLUDED.task, unit_id = EXCLUDED.unit_id, leader = EXCLUDED.leader,
    contact = EXCLUDED.contact
RETURNING (xmax = 0)
"""
