"""The preview of an import of jurisdictions, sites or responsibility rules: nothing written.

The file is read and checked by the import's own checks (``imports.check_*``), so a file the
import refuses is refused here with the same errors. Its rows are then upserted in memory over
the stored rows of that table, as the import's ``INSERT ... ON CONFLICT`` would upsert them
(by code; rules by category, community and site), and the new set of lines goes to
:func:`layers.preview.of_lines`, which runs the one assignment engine over the open issues.
Rows the file adds get ids above every stored id, in file order, as the sequence would give
them: the engine breaks ties between sites, and orders rules, by id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import shapely

from layers import assignment, preview
from layers.catalog import hierarchy
from layers.errors import ValidationFailed
from layers.io import imports
from layers.io.gisfile import cell_text
from layers.vocab import LEVELS

#: The imports a preview can show: those that change what assignment depends on.
PREVIEW_KINDS = ("jurisdictions", "sites", "responsibilities")
_TABLES: dict[str, preview.Table] = {"jurisdictions": "jurisdiction", "sites": "site",
                                     "responsibilities": "responsibility_rule"}
# The columns a preview compares besides those the engine reads (assignment.ENGINE_INPUTS).
_EXTRA = {"jurisdictions": "name", "sites": "code, name, inspection_interval_days, attributes",
          "rules": "id, task, leader, contact"}
# Coordinates of the outlines drawn on the preview's map: 1e-7 degrees is about 1 cm.
_DIGITS = 7


def preview_import(conn: psycopg.Connection[Any], kind: str, path: Path, *,
                   crs: str | None = None, layer: str | None = None,
                   include_closed: bool = False) -> preview.Preview:
    """What importing ``path`` as ``kind`` (one of :data:`PREVIEW_KINDS`) would do; nothing
    is written. A file that fails validation raises ``ValidationFailed`` as the import does.
    ``include_closed``: over closed issues too, as ``reassign(include_closed=True)`` would
    (benchmarks; the import itself moves open issues only)."""
    if kind not in _TABLES:
        raise ValidationFailed(f"a preview is for {', '.join(PREVIEW_KINDS)}, not {kind}")
    # One transaction for the checks and the reads; it writes nothing.
    with conn.transaction():
        inputs = assignment.engine_inputs(conn, _EXTRA)
        if kind == "jurisdictions":
            return _jurisdictions(conn, imports.check_jurisdictions(conn, path, crs=crs), inputs,
                                  include_closed)
        if kind == "sites":
            return _sites(conn, imports.check_sites(conn, path, layer=layer, crs=crs), inputs,
                          include_closed)
        return _rules(conn, imports.check_responsibilities(conn, path), inputs, include_closed)


def _jurisdictions(conn: psycopg.Connection[Any], checked: imports.Checked,
                   inputs: dict[str, pd.DataFrame], include_closed: bool) -> preview.Preview:
    new = _Rows(inputs["jurisdictions"])
    by_code = {str(r["code"]): k for k, r in enumerate(new.records)}
    has_unit = checked.found["unit"] is not None
    notes = _Notes()
    # Parents first, as the import upserts level by level.
    for level in LEVELS:
        for row in (r for r in checked.rows if r["level"] == level):
            parent = cell_text(row["parent"])
            values = {"code": row["code"], "name": row["name"], "level": level,
                      "parent_id": None if parent not in by_code
                      else int(new.records[by_code[parent]]["id"]),
                      "geometry": shapely.multipolygons(shapely.get_parts(row["geometry"]))
                      if row["geometry"].geom_type == "Polygon" else row["geometry"]}
            if has_unit or row["code"] not in by_code:
                values["unit_id"] = row["unit_id"]
            _upsert(new, by_code, row["code"], values, notes)
    frame = new.frame()
    bad = hierarchy.misfits_among([str(c) for c in frame["code"]], list(frame["level"]),
                                  _parent_codes(frame))
    imports.raise_misfits(bad, checked)
    quality = _quality(frame, conn)
    return preview.of_lines(conn, "jurisdiction", {**inputs, "jurisdictions": frame},
                            notes.rows(), quality=quality, lines=notes.lines(),
                            repaired=checked.report.repaired, include_closed=include_closed)


def _sites(conn: psycopg.Connection[Any], checked: imports.Checked,
           inputs: dict[str, pd.DataFrame], include_closed: bool) -> preview.Preview:
    new = _Rows(inputs["sites"])
    by_code = {str(r["code"]): k for k, r in enumerate(new.records) if r["code"] is not None}
    has = {key: checked.found[column] is not None for key, column in (
        ("unit_id", "unit"), ("buffer_m", "buffer_m"),
        ("inspection_interval_days", "inspection_interval_days"))}
    notes = _Notes()
    for row in checked.rows:
        code = row["code"]
        values: dict[str, Any] = {"code": code, "name": row["name"], "layer": row["layer"],
                                  "geometry": row["geometry"]}
        stored = by_code.get(code) if code is not None else None
        # As the upsert: a missing buffer is 0, on insert and on update alike.
        given = {"unit_id": row["unit_id"], "buffer_m": row["buffer_m"] or 0.0,
                 "inspection_interval_days": row["interval"]}
        attributes = json.loads(row["attributes"])
        if stored is None:
            values.update(given, attributes=attributes)
        else:
            values.update({k: v for k, v in given.items() if has[k]})
            values["attributes"] = {**(new.records[stored]["attributes"] or {}), **attributes}
        _upsert(new, by_code, code, values, notes, label=code or row["name"])
    return preview.of_lines(conn, "site", {**inputs, "sites": new.frame()}, notes.rows(),
                            lines=notes.lines(), repaired=checked.report.repaired,
                            include_closed=include_closed)


def _rules(conn: psycopg.Connection[Any], checked: imports.Checked,
           inputs: dict[str, pd.DataFrame], include_closed: bool) -> preview.Preview:
    new = _Rows(inputs["rules"])
    key = ["category_code", "jurisdiction_id", "site_id"]
    by_key = {_rule_key(r[k] for k in key): k for k, r in enumerate(new.records)}
    labels = _rule_labels(conn)
    notes = _Notes()
    for row in checked.rows:
        values = {k: row[k] for k in imports.RULE_FIELDS}
        # The schema's generated precedence: site > jurisdiction > category, a category
        # narrowing any (migration 0001).
        values["precedence"] = ((300 if row["site_id"] is not None else 200
                                 if row["jurisdiction_id"] is not None else 100)
                                + (10 if row["category_code"] is not None else 0))
        label = " / ".join([row["category_code"] or "*",
                            labels["jurisdiction"].get(row["jurisdiction_id"], "*"),
                            labels["site"].get(row["site_id"], "*")])
        _upsert(new, by_key, _rule_key(tuple(row[k] for k in key)), values, notes,
                label=label)
    return preview.of_lines(conn, "responsibility_rule", {**inputs, "rules": new.frame()},
                            notes.rows(), repaired=checked.report.repaired,
                            include_closed=include_closed)


@dataclass
class _Notes:
    """What the upserts change: labels of rows added and changed, outlines before and after."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    olds: list[dict[str, Any]] = field(default_factory=list)
    news: list[dict[str, Any]] = field(default_factory=list)

    def rows(self) -> preview.RowChanges:
        added, changed = sorted(self.added), sorted(self.changed)
        cap = preview.MAX_ROWS_LISTED
        return preview.RowChanges(len(added), 0, len(changed), added[:cap], [], changed[:cap])

    def lines(self) -> tuple[list[preview.Line], list[preview.Line]]:
        return _lines(self.olds), _lines(self.news)


class _Rows:
    """A table's rows as records, upserted in place (per-cell writes to a DataFrame cost
    0.5 ms each: a second for a 2,000-grid file), then a frame again."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.columns = [str(c) for c in frame.columns]
        self.records: list[dict[str, Any]] = [
            {str(k): v for k, v in r.items()} for r in frame.to_dict("records")]
        self.next_id = int(frame["id"].max()) + 1 if len(frame) else 1

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.records, columns=self.columns)


def _upsert(rows: _Rows, index: dict[Any, int], key: Any, values: dict[str, Any],
            notes: _Notes, *, label: str | None = None) -> None:
    """Set ``values`` on the row whose key is ``key`` (when ``key`` is not None and ``index``
    holds it) or append a new row with the next id; note what it changes."""
    label = label or str(key)
    at = index.get(key) if key is not None else None
    if at is None:
        values["id"] = rows.next_id
        rows.next_id += 1
        rows.records.append({c: None for c in rows.columns} | values)
        if key is not None:
            index[key] = len(rows.records) - 1
        notes.added.append(label)
        if "geometry" in values:
            notes.news.append(values)
        return
    before = rows.records[at]
    if any(not _same(before[k], v) for k, v in values.items()):
        notes.changed.append(label)
        if "geometry" in values:
            notes.olds.append(dict(before))
            notes.news.append({**before, **values})
    before.update(values)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, shapely.Geometry) or isinstance(b, shapely.Geometry):
        return bool(isinstance(a, shapely.Geometry) and isinstance(b, shapely.Geometry)
                    and shapely.get_type_id(a) == shapely.get_type_id(b)
                    and shapely.equals_exact(a, b, 0))
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    if isinstance(a, np.generic):
        a = a.item()
    return bool(a == b)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _lines(rows: list[dict[str, Any]]) -> list[preview.Line]:
    if not rows:
        return []
    shapes = shapely.transform(np.array([r["geometry"] for r in rows], dtype=object),
                               lambda c: np.round(c, _DIGITS))
    return [preview.Line(str(r.get("code") or ""), str(r.get("name") or ""), str(text))
            for r, text in zip(rows, shapely.to_geojson(shapes).tolist(), strict=True)]


def _rule_key(values: Any) -> tuple[Any, ...]:
    return tuple(None if _missing(v) else (int(v) if isinstance(v, float | np.integer) else v)
                 for v in values)


def _rule_labels(conn: psycopg.Connection[Any]) -> dict[str, dict[int, str]]:
    return {"jurisdiction": dict(conn.execute("SELECT id, code FROM jurisdiction").fetchall()),
            "site": dict(conn.execute("SELECT id, coalesce(code, name) FROM site").fetchall())}


def _parent_codes(frame: pd.DataFrame) -> list[str | None]:
    code_of = {int(i): str(c) for i, c in zip(frame["id"], frame["code"], strict=True)}
    return [None if _missing(p) else code_of.get(int(p)) for p in frame["parent_id"]]


def _quality(frame: pd.DataFrame, conn: psycopg.Connection[Any]) -> preview.Quality:
    """The data-quality report of the new set, as ``sitewatch check`` reports a stored one."""
    import geopandas as gpd

    units = dict(conn.execute("SELECT id, name FROM unit").fetchall())
    ordered = frame.assign(parent=pd.Series(_parent_codes(frame), index=frame.index,
                                            dtype=object),
                           unit=pd.Series([None if _missing(u) else units.get(int(u))
                                           for u in frame["unit_id"]], index=frame.index,
                                          dtype=object))
    ordered = ordered.sort_values(["level", "code"], kind="stable")
    jurisdictions = gpd.GeoDataFrame(
        ordered[["code", "name", "level", "parent", "unit"]].reset_index(drop=True),
        geometry=list(ordered["geometry"]), crs="EPSG:4326")
    return preview.quality_of(jurisdictions)
