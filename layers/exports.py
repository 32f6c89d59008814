"""Export a stored layer (jurisdictions, a site layer, issues) to a GIS file or spreadsheet.

Formats: ``geojson`` and ``gpkg`` (through pyogrio, EPSG:4326), ``csv`` (UTF-8 with BOM so
Excel shows Chinese; ``lon``/``lat`` columns for points, a ``wkt`` column for areas) and
``xlsx`` (openpyxl). An XLSX sheet has two header rows: Chinese labels on row 1 for people, the
English field names on row 2 for machines; data starts on row 3 and the headers stay frozen.
The importers recognise row 2, so an exported sheet can be edited and imported back.

Timestamps keep their time zone: ISO 8601 with offset in GeoJSON, CSV and XLSX (Excel has no
zone-aware type), UTC in GeoPackage (the GeoPackage spec stores DateTime as UTC).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg.rows import dict_row

from layers import issues, xlsx
from layers.errors import NotFound, ValidationFailed

FORMATS = {"geojson": "GeoJSON", "gpkg": "GPKG", "csv": "CSV", "xlsx": "XLSX"}
MEDIA_TYPES = {
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# Seven decimals of a degree are about 1 cm: finer is noise, and it keeps WKT short.
WKT_DECIMALS = 7
# Excel refuses longer cell text.
XLSX_CELL_LIMIT = 32767
LABELS = {
    "code": "编码", "name": "名称", "level": "级别", "parent": "上级", "unit": "责任单位",
    "layer": "图层", "buffer_m": "周边范围(米)", "inspection_interval_days": "巡查周期(天)",
    "updated_at": "更新时间", "public_id": "编号", "category": "问题类别",
    "category_zh": "类别名称", "description": "问题描述", "source": "来源", "status": "状态",
    "reported_at": "发现时间", "deadline": "整改期限", "closed_at": "办结时间",
    "overdue": "是否超期", "jurisdiction": "所属辖区", "site": "点位", "lead_unit": "牵头单位",
    "territorial_unit": "属地单位", "functional_unit": "职能部门", "on_boundary": "边界点",
    "outside_all": "辖区外", "via_buffer": "周边范围内", "rework_count": "返工次数",
    "lon": "经度", "lat": "纬度", "wkt": "几何(WKT)",
}
_ISSUE_FIELDS = ["public_id", "category", "category_zh", "description", "source", "status",
                 "reported_at", "deadline", "closed_at", "overdue", "jurisdiction", "site",
                 "lead_unit", "territorial_unit", "functional_unit", "on_boundary",
                 "outside_all", "via_buffer", "rework_count"]
# Exports hold every matching issue; the filter's paging is ignored.
_NO_LIMIT = 2**62


def layer_names(conn: psycopg.Connection[Any]) -> list[str]:
    """Every exportable layer: jurisdictions, each site layer, issues."""
    layers = [str(r[0]) for r in conn.execute("SELECT code FROM site_layer ORDER BY code")]
    return ["jurisdictions", *layers, "issues"]


def export_layer(conn: psycopg.Connection[Any], layer: str, path: Path, *, fmt: str,
                 filters: issues.IssueFilter | None = None) -> int:
    """Write ``layer`` to ``path`` in ``fmt``; return the number of features written.

    ``filters`` narrows an issues export (paging ignored). Unknown layer: NotFound.
    """
    if fmt not in FORMATS:
        raise ValidationFailed(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if layer == "jurisdictions":
        frame = _jurisdictions(conn)
    elif layer == "issues":
        frame = _issues(conn, filters or issues.IssueFilter())
    elif layer in layer_names(conn):
        frame = _sites(conn, layer)
    else:
        raise NotFound(f"no layer {layer!r}; layers: {', '.join(layer_names(conn))}")
    if fmt in ("geojson", "gpkg"):
        _write_gis(frame, path, fmt, layer)
    else:
        table = _tabular(frame)
        if fmt == "csv":
            table.to_csv(path, index=False, encoding="utf-8-sig")
        else:
            _write_xlsx(table, path, layer)
    return len(frame)


def _frame(conn: psycopg.Connection[Any], query: str, params: Any = None) -> gpd.GeoDataFrame:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query, params).fetchall()
        columns = [d.name for d in cur.description or []]
    frame = pd.DataFrame(rows, columns=columns)
    geoms: Any = shapely.from_wkb([bytes(b) for b in frame.pop("wkb")]) if len(frame) else []
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, index=frame.index),
                            crs="EPSG:4326")


def _jurisdictions(conn: psycopg.Connection[Any]) -> gpd.GeoDataFrame:
    return _frame(conn, """
        SELECT j.code, j.name, j.level, p.code AS parent, u.code AS unit, j.updated_at,
               ST_AsBinary(j.geom) AS wkb
        FROM jurisdiction j LEFT JOIN jurisdiction p ON p.id = j.parent_id
        LEFT JOIN unit u ON u.id = j.unit_id
        ORDER BY array_position(ARRAY['street', 'community', 'grid'], j.level), j.code""")


def _sites(conn: psycopg.Connection[Any], layer: str) -> gpd.GeoDataFrame:
    frame = _frame(conn, """
        SELECT s.code, s.name, s.layer, u.code AS unit, s.buffer_m,
               s.inspection_interval_days, s.attributes, s.updated_at,
               ST_AsBinary(s.geom) AS wkb
        FROM site s LEFT JOIN unit u ON u.id = s.unit_id WHERE s.layer = %s
        ORDER BY s.code, s.id""", [layer])
    attributes = frame.pop("attributes")
    keys = sorted({k for a in attributes for k in a})
    for key in keys:
        # Attributes become columns of their own, so that re-importing keeps them.
        column = key if key not in frame.columns else f"attributes.{key}"
        frame[column] = _typed([a.get(key) for a in attributes], frame.index)
    return frame.set_geometry("geometry")


def _typed(values: list[Any], index: pd.Index) -> pd.Series:
    """One attribute as a column of one type, so every format can hold it and types return."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pd.Series(values, index=index, dtype="boolean")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pd.Series(values, index=index, dtype="Int64")
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pd.Series(values, index=index, dtype="float64")
    return pd.Series([None if v is None else json.dumps(v, ensure_ascii=False)
                      if isinstance(v, dict | list) else str(v) for v in values],
                     index=index, dtype=object)


def _issues(conn: psycopg.Connection[Any], filters: issues.IssueFilter) -> gpd.GeoDataFrame:
    rows, _ = issues.list_issues(conn, dataclasses.replace(filters, limit=_NO_LIMIT, offset=0))
    columns = [*_ISSUE_FIELDS, "lon", "lat"]
    frame = pd.DataFrame([[r[k] for k in columns] for r in rows], columns=columns)
    points = shapely.points(frame.pop("lon").to_numpy(np.float64),
                            frame.pop("lat").to_numpy(np.float64))
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(points, index=frame.index),
                            crs="EPSG:4326")


def _time_columns(frame: pd.DataFrame) -> list[str]:
    return [str(c) for c in frame.columns if str(c).endswith("_at") or c == "deadline"]


def _write_gis(frame: gpd.GeoDataFrame, path: Path, fmt: str, layer: str) -> None:
    out = frame.copy()
    for column in _time_columns(out):
        out[column] = pd.to_datetime(out[column], utc=fmt == "gpkg")
    kwargs: dict[str, Any] = {"layer": layer} if fmt == "gpkg" else {}
    # One layer per file: the export replaces an existing file instead of appending to it.
    path.unlink(missing_ok=True)
    out.to_file(path, driver=FORMATS[fmt], engine="pyogrio", **kwargs)


def _tabular(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """Geometry as lon/lat (all points) or WKT; timestamps as ISO 8601 with offset."""
    geoms = frame.geometry.to_numpy()
    table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    for column in _time_columns(table):
        table[column] = [None if v is None or pd.isna(v) else pd.Timestamp(v).isoformat()
                         for v in table[column]]
    if len(geoms) and bool((shapely.get_type_id(geoms) == 0).all()):
        table["lon"] = shapely.get_x(geoms)
        table["lat"] = shapely.get_y(geoms)
    else:
        table["wkt"] = shapely.to_wkt(geoms, rounding_precision=WKT_DECIMALS, trim=True)
    return table


def _write_xlsx(table: pd.DataFrame, path: Path, layer: str) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook always has its first sheet
    sheet.title = layer[:31]
    xlsx.write_table(sheet, [str(c) for c in table.columns], LABELS, _cells(table))
    book.save(path)


def _cells(table: pd.DataFrame) -> Iterator[list[Any]]:
    """The table's rows as plain Python values, each cell within Excel's limit."""
    for values in table.itertuples(index=False):
        row = [None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else
               v.item() if isinstance(v, np.generic) else v for v in values]
        if any(isinstance(v, str) and len(v) > XLSX_CELL_LIMIT for v in row):
            raise ValidationFailed("a geometry is too detailed for an Excel cell; export "
                                   "this layer as GeoPackage or GeoJSON")
        yield row
