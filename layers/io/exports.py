"""Export a stored layer (jurisdictions, a site layer, issues) to a GIS file or spreadsheet.

Formats: ``geojson`` and ``gpkg`` (through pyogrio, EPSG:4326), ``csv`` (UTF-8 with BOM so
Excel shows Chinese; ``lon``/``lat`` columns for points, a ``wkt`` column for areas) and
``xlsx`` (openpyxl). An XLSX sheet has two header rows: Chinese labels on row 1 for people, the
English field names on row 2 for machines; data starts on row 3 and the headers stay frozen.
The importers recognise row 2, so an exported sheet can be edited and imported back.

Timestamps keep their time zone: ISO 8601 with offset in GeoJSON, CSV and XLSX (Excel has no
zone-aware type), UTC in GeoPackage (the GeoPackage spec stores DateTime as UTC). Issues are
exported to the second.

An export is two steps, so that a server holds a pooled connection only for the first:
:func:`extract` reads (issues: COPY into a spool file), :func:`write` formats, one chunk at a
time, in time linear in the rows and memory independent of them. Text from people stays text
in every spreadsheet (:mod:`layers.io.xlsx`: no formulas, no characters XML cannot hold).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql
from psycopg.rows import dict_row

from layers.errors import DomainError, NotFound, ValidationFailed
from layers.io import xlsx
from layers.issues import records

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
# The issue columns an export holds, in order, as read back from the spool.
_ISSUE_DTYPES: dict[str, Any] = {
    "public_id": str, "category": str, "category_zh": str, "description": str, "source": str,
    "status": str, "reported_at": str, "deadline": str, "closed_at": str,
    "overdue": "boolean", "jurisdiction": str, "site": str, "lead_unit": str,
    "territorial_unit": str, "functional_unit": str, "on_boundary": "boolean",
    "outside_all": "boolean", "via_buffer": "boolean", "rework_count": "Int64",
    "lon": "float64", "lat": "float64"}
_ISSUE_TIMES = ("reported_at", "deadline", "closed_at")
# ISO 8601 with the offset of the session's time zone, to the second (to_char's pattern).
_ISO_8601 = 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM'
# Issues are read back from their spool this many at a time.
CHUNK_ROWS = 20_000
# One Excel sheet holds 1,048,576 rows; two are the header rows.
XLSX_MAX_ROWS = 1_048_576 - 2


def layer_names(conn: psycopg.Connection[Any]) -> list[str]:
    """Every exportable layer: jurisdictions, each site layer, issues."""
    layers = [str(r[0]) for r in conn.execute("SELECT code FROM site_layer ORDER BY code")]
    return ["jurisdictions", *layers, "issues"]


class ExportsBusy(DomainError, status=503, code="exports-busy", title="Service unavailable"):
    """Every export slot of this process is taken; the client may retry shortly."""


@dataclass(frozen=True)
class Extract:
    """A layer read out of the database: formatting it needs no connection.

    Jurisdictions and sites (bounded by what an import may hold) are a frame in memory;
    issues, which grow without bound, a CSV file that COPY wrote and that is read back in
    chunks of CHUNK_ROWS, so memory stays flat however many there are.
    """

    layer: str
    rows: int
    frame: gpd.GeoDataFrame | None = None
    spool: Path | None = None

    def chunks(self) -> Iterator[gpd.GeoDataFrame]:
        """The features in order, time columns as ISO 8601 text; at least one chunk."""
        if self.spool is None:
            assert self.frame is not None  # extract() sets one of the two
            yield self.frame
            return
        empty = True
        for chunk in pd.read_csv(self.spool, chunksize=CHUNK_ROWS, dtype=_ISSUE_DTYPES,
                                 true_values=["t"], false_values=["f"],
                                 keep_default_na=False, na_values=[""]):
            empty = False
            yield _issue_chunk(chunk)
        if empty:
            yield _issue_chunk(pd.DataFrame({c: pd.Series(dtype=t)
                                             for c, t in _ISSUE_DTYPES.items()}))


def export_layer(conn: psycopg.Connection[Any], layer: str, path: Path, *, fmt: str) -> int:
    """Write ``layer`` to ``path`` in ``fmt``; return the number of features written.

    Unknown layer: NotFound. (A server does the two steps itself, to hand its connection
    back between them: :func:`extract` and :func:`write`.)
    """
    with tempfile.TemporaryDirectory(prefix="sw-spool-") as folder:
        return write(extract(conn, layer, Path(folder), fmt=fmt), path, fmt)


def extract(conn: psycopg.Connection[Any], layer: str, folder: Path, *, fmt: str) -> Extract:
    """Read ``layer`` for an export in ``fmt`` (a spool file goes into ``folder``).

    This is the only step that needs ``conn``: a server hands its connection back before
    :func:`write`. An XLSX export over one sheet's rows is refused here, before formatting.
    """
    if fmt not in FORMATS:
        raise ValidationFailed(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    cap = XLSX_MAX_ROWS if fmt == "xlsx" else None
    if layer == "issues":
        found = _spool_issues(conn, folder / "issues.spool.csv",
                              limit=None if cap is None else cap + 1)
    elif layer == "jurisdictions":
        found = Extract(layer, 0, frame=_jurisdictions(conn))
    elif layer in layer_names(conn):
        found = Extract(layer, 0, frame=_sites(conn, layer))
    else:
        raise NotFound(f"no layer {layer!r}; layers: {', '.join(layer_names(conn))}")
    if found.frame is not None:
        found = dataclasses.replace(found, rows=len(found.frame),
                                    frame=_iso_times(found.frame))
    if cap is not None and found.rows > cap:
        raise ValidationFailed(f"{layer} has more than {cap:,} rows, more than one Excel sheet "
                               "holds; export it as CSV, GeoJSON or "
                               "GeoPackage instead")
    return found


def write(found: Extract, path: Path, fmt: str) -> int:
    """Format ``found`` into ``path`` in ``fmt``, in one pass over its chunks; return the
    number of features written."""
    if fmt not in FORMATS:
        raise ValidationFailed(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    # One layer per file: the export replaces an existing file instead of appending to it.
    path.unlink(missing_ok=True)
    if fmt == "geojson":
        _write_geojson(found.chunks(), path, found.layer)
    elif fmt == "gpkg":
        _write_gpkg(found.chunks(), path, found.layer)
    elif fmt == "csv":
        _write_csv(found.chunks(), path)
    else:
        _write_xlsx(found.chunks(), path, found.layer)
    return found.rows


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


def _spool_issues(conn: psycopg.Connection[Any], spool: Path, *, limit: int | None
                  ) -> Extract:
    """COPY the issues (newest first, at most ``limit``) into ``spool`` as CSV.

    COPY streams at the server's pace into a file, so the connection is busy only as long as
    the rows take to arrive, and Python holds no row longer than one chunk of text.
    """
    times = {c: sql.SQL("to_char(i.{c}, {f}) AS {c}").format(
        c=sql.Identifier(c), f=sql.Literal(_ISO_8601)) for c in _ISSUE_TIMES}
    columns = sql.SQL(", ").join(times.get(c, sql.SQL("i.{}").format(sql.Identifier(c)))
                                 for c in _ISSUE_DTYPES)
    query = sql.SQL("SELECT {columns} FROM ({select}) i"
                    " ORDER BY i.reported_at DESC, i.id DESC{limit}").format(
        columns=columns, select=records.ISSUE_SELECT,
        limit=sql.SQL("") if limit is None else sql.SQL(" LIMIT {}").format(limit))
    with conn.cursor() as cur, spool.open("wb") as out:
        with cur.copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER)").format(query)
                      ) as copy:
            for data in copy:
                out.write(data)
        rows = cur.rowcount
    return Extract("issues", rows, spool=spool)


def _issue_chunk(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    """Issues read back from the spool: points from lon/lat, missing text as None."""
    points = shapely.points(frame.pop("lon").to_numpy(np.float64),
                            frame.pop("lat").to_numpy(np.float64))
    for column, dtype in _ISSUE_DTYPES.items():
        if dtype is str and column in frame:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(points, index=frame.index),
                            crs="EPSG:4326")


def _time_columns(frame: pd.DataFrame) -> list[str]:
    return [str(c) for c in frame.columns if str(c).endswith("_at") or c == "deadline"]


def _iso_times(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Timestamps as ISO 8601 with offset, as the issues spool has them."""
    out = frame.copy()
    for column in _time_columns(out):
        out[column] = [None if v is None or pd.isna(v) else pd.Timestamp(v).isoformat()
                       for v in out[column]]
    return out


def _write_geojson(chunks: Iterator[gpd.GeoDataFrame], path: Path, layer: str) -> None:
    """A FeatureCollection written feature by feature.

    Measured reason for not using pyogrio here: appending to a GeoJSON file re-reads it,
    so chunked appends grow quadratically (0.45 s for the first 50,000 features, 2.2 s for
    the twelfth), and writing in one call needs the whole layer in memory.
    """
    with path.open("w", encoding="utf-8") as out:
        out.write('{"type": "FeatureCollection", "name": ' + json.dumps(layer)
                  + ', "features": [\n')
        separator = ""
        for chunk in chunks:
            geometries = shapely.to_geojson(chunk.geometry.to_numpy())
            table = pd.DataFrame(chunk.drop(columns=chunk.geometry.name))
            for properties, geometry in zip(_records(table), geometries, strict=True):
                out.write(f'{separator}{{"type": "Feature", "properties": '
                          f'{json.dumps(properties, ensure_ascii=False, default=_plain)}, '
                          f'"geometry": {geometry or "null"}}}')
                separator = ",\n"
        out.write("\n]}\n")


def _write_gpkg(chunks: Iterator[gpd.GeoDataFrame], path: Path, layer: str) -> None:
    # GeoPackage is SQLite: appending a chunk costs the chunk, not the file.
    for n, chunk in enumerate(chunks):
        out = chunk.copy()
        for column in _time_columns(out):
            out[column] = pd.to_datetime(out[column], utc=True, format="ISO8601")
        out.to_file(path, driver="GPKG", engine="pyogrio", layer=layer, append=n > 0)


def _write_csv(chunks: Iterator[gpd.GeoDataFrame], path: Path) -> None:
    # utf-8-sig writes the BOM once, at the start, however many chunks follow.
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        for n, chunk in enumerate(chunks):
            table = _tabular(chunk)
            for column in table.columns:
                if table[column].dtype == object:
                    table[column] = table[column].map(
                        lambda v: xlsx.csv_text(v) if isinstance(v, str) else v)
            # CRLF (RFC 4180) also makes the writer quote a cell holding a bare CR, which
            # with "\n" line ends it would not, and a spreadsheet would split the row there.
            table.to_csv(out, index=False, header=n == 0, lineterminator="\r\n")


def _tabular(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """Geometry as lon/lat (all points) or WKT."""
    geoms = frame.geometry.to_numpy()
    table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    if len(geoms) == 0 or bool((shapely.get_type_id(geoms) == 0).all()):
        table["lon"] = shapely.get_x(geoms)
        table["lat"] = shapely.get_y(geoms)
    else:
        table["wkt"] = shapely.to_wkt(geoms, rounding_precision=WKT_DECIMALS, trim=True)
    return table


def _write_xlsx(chunks: Iterator[gpd.GeoDataFrame], path: Path, layer: str) -> None:
    from openpyxl import Workbook

    tables = (_tabular(chunk) for chunk in chunks)
    first = next(tables)
    # Write-only: rows stream to disk as they come, in linear time and flat memory.
    book = Workbook(write_only=True)
    sheet = book.create_sheet(layer[:31])
    rows = (row for table in chain([first], tables) for row in _cells(table))
    xlsx.write_table(sheet, [str(c) for c in first.columns], LABELS, rows)
    book.save(path)


def _plain(value: object) -> object:
    """Numpy scalars as Python values for JSON."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts, missing values (None, NaN, NA) as None."""
    plain = table.astype(object)
    # Column names are strings: the frames are built from SQL and attribute keys.
    return cast(list[dict[str, Any]], plain.where(plain.notna(), None).to_dict("records"))


def _cells(table: pd.DataFrame) -> Iterator[list[Any]]:
    """The table's rows as plain Python values, each cell within Excel's limit."""
    for values in table.itertuples(index=False):
        row = [None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else
               v.item() if isinstance(v, np.generic) else v for v in values]
        if any(isinstance(v, str) and len(v) > XLSX_CELL_LIMIT for v in row):
            raise ValidationFailed("a value is too long for an Excel cell (a geometry too "
                                   "detailed?); export this layer as GeoPackage or GeoJSON")
        yield row
