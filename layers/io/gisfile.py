"""Read GIS files and spreadsheets into WGS84 frames numbered the way their users see them.

Formats, chosen by file suffix: GeoJSON (``.geojson``, ``.json``), GeoPackage (``.gpkg``, its
first layer), zipped Shapefile (``.zip`` holding one ``.shp`` with ``.shx``/``.dbf`` and
usually ``.prj``), KML (``.kml``, all folders), CSV and XLSX (``.csv``, ``.xlsx``, first
sheet) with ``lon``/``lat`` columns (or ``longitude``/``latitude``, ``经度``/``纬度``, ``x``/``y``)
or a ``wkt`` column. Every frame gets a 1-based ``row`` column: the spreadsheet row number
(the header is row 1) or the feature number of a GIS file.

Coordinates come out in EPSG:4326. A GIS file's own CRS is honoured; a file without one (a
Shapefile without ``.prj``) needs ``crs``. Spreadsheets carry no CRS: ``crs`` declares it and
defaults to WGS84. GCJ-02 (phone map SDKs) is never guessed: it must be declared.

Problems confined to one row (a formula with no cached value, a coordinate that is not a
number) are collected per row, so the importer can list them with its own checks; problems
with the whole file (unreadable, unknown CRS, zip bomb) raise ``ValidationFailed`` at once.
"""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import shapely

from geo.crs import CGCS2000, GCJ02, WGS84, lonlat_to_wgs84, normalize_crs, to_wgs84
from layers.errors import ValidationFailed
from layers.io.gissource import gdal_source
from layers.text import quoted

ROW = "row"
GIS_SUFFIXES = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GeoPackage",
                ".kml": "KML", ".zip": "zipped Shapefile"}
SHEET_SUFFIXES = {".csv": "CSV", ".xlsx": "XLSX"}
SUFFIXES = {**GIS_SUFFIXES, **SHEET_SUFFIXES}
# Zip bombs: an upload is at most 50 MB, so anything that inflates past these is hostile.
MAX_UNCOMPRESSED = 200 * 1024 * 1024
MAX_RATIO = 100
# Tiny archives legitimately exceed the ratio (a DBF of blank padding compresses ~1000x) and
# cannot hurt anyone; the ratio test starts above this size.
_RATIO_FLOOR = 1024 * 1024
LON_NAMES = ("lon", "lng", "longitude", "经度", "x")
LAT_NAMES = ("lat", "latitude", "纬度", "y")
WKT_NAMES = ("wkt", "geom", "几何")
_FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# Files that make GDAL open other files or URLs; a zipped shapefile needs none of them.
_POINTER_SUFFIXES = (".vrt", ".gdalg.json", ".ovr", ".aux.xml")
_SHP_MAGIC = b"\x00\x00\x27\x0a"
# Display settings GDAL's LIBKML driver turns into columns; they are not the user's data.
_LIBKML_STYLE = ("id", "timestamp", "begin", "end", "altitudeMode", "tessellate", "extrude",
                 "visibility", "drawOrder", "icon", "snippet")
# A damaged file can also hand GEOS broken WKB, or GDAL undecodable text.
_READ_ERRORS = (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
                pyogrio.errors.FieldError, pyogrio.errors.GeometryError,
                pyogrio.errors.FeatureError, pyogrio.errors.CRSError,
                shapely.errors.GEOSException, ValueError)


@dataclass
class Table:
    """What a file held: the rows (``row`` column first) and the per-row read problems.

    ``geometry_from`` says where the geometry came from: ``"file"`` (a GIS file), ``"lonlat"``
    or ``"wkt"`` (spreadsheet columns), or None when a spreadsheet has no coordinates.
    """

    frame: gpd.GeoDataFrame
    errors: list[dict[str, Any]] = field(default_factory=list)
    geometry_from: str | None = None


def row_error(row: int | None, field_name: str | None, message: str) -> dict[str, Any]:
    """One entry of ``ValidationFailed.details``."""
    return {"row": row, "field": field_name, "message": message}


def read_any(path: Path, *, crs: str | None = None) -> gpd.GeoDataFrame:
    """Read a GIS file or spreadsheet into a GeoDataFrame in EPSG:4326 with a ``row`` column.

    Raises ``ValidationFailed`` for an unreadable file, a missing or unknown CRS, or rows that
    cannot be read (each listed in ``details``).
    """
    table = read_file(path, crs=crs)
    if table.errors:
        raise ValidationFailed(f"{path.name}: some rows cannot be read", details=table.errors)
    return table.frame


def read_file(path: Path, *, crs: str | None = None,
              header_names: frozenset[str] = frozenset()) -> Table:
    """Like :func:`read_any`, but per-row problems are returned in ``Table.errors``.

    ``header_names`` (lower case) helps find a spreadsheet's header row below a title: the
    first row holding two of them is the header (default: the first non-empty row).
    """
    suffix = path.suffix.lower()
    if suffix in SHEET_SUFFIXES:
        sheet = read_sheet(path, header_names=header_names)
        return _sheet_geometry(sheet, crs)
    if suffix in GIS_SUFFIXES:
        return Table(_read_gis(path, suffix, crs), geometry_from="file")
    raise ValidationFailed(f"{path.name}: unsupported file type; use one of "
                           f"{', '.join(sorted(SUFFIXES))}")


# --- spreadsheets -----------------------------------------------------------------------


def read_sheet(path: Path, *, header_names: frozenset[str] = frozenset()) -> Table:
    """A CSV or XLSX sheet as text/number/datetime cells (None when empty); no geometry."""
    errors: list[tuple[int, int, str]] = []
    if path.suffix.lower() == ".csv":
        records = _csv_records(path)
    else:
        records, errors = _xlsx_records(path)
    header_at = _header_index(records, header_names)
    if header_at is None:
        raise ValidationFailed(f"{path.name}: the sheet is empty")
    header_row, header = records[header_at]
    # An export writes Chinese labels with the English field names on the row below.
    if header_at + 1 < len(records) and _is_field_name_row(records[header_at + 1][1]):
        header_row, header = records[header_at + 1]
        header_at += 1
    names = [str(h).strip() if h is not None else "" for h in header]
    # These two names are taken by the frame itself: a sheet's own "geometry" column can
    # only be WKT, and its own "row" column is kept under another name.
    renamed = {"geometry": "wkt", ROW: f"{ROW}_in_file"}
    names = [renamed.get(n.lower(), n) for n in names]
    seen = [n.lower() for n in names if n]
    duplicated = sorted({n for n in seen if seen.count(n) > 1})
    if duplicated:
        raise ValidationFailed(f"{path.name}: duplicate column names: "
                               f"{', '.join(quoted(n) for n in duplicated[:10])}")
    keep = [i for i, n in enumerate(names) if n]
    rows = [(number, [cells[i] if i < len(cells) else None for i in keep])
            for number, cells in records[header_at + 1:]]
    frame = pd.DataFrame([cells for _, cells in rows], columns=[names[i] for i in keep],
                         dtype=object)
    frame.insert(0, ROW, [number for number, _ in rows])
    row_errors = [row_error(row, names[column] if column < len(names) else None, message)
                  for row, column, message in errors if row > header_row]
    return Table(gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([None] * len(frame),
                                                                crs=WGS84)), row_errors)


def _csv_records(path: Path) -> list[tuple[int, list[Any]]]:
    raw = path.read_bytes()
    # Excel in a Chinese locale saves CSV as GBK; UTF-8 (with or without BOM) is tried first.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise ValidationFailed(f"{path.name}: the text encoding is neither UTF-8 nor GBK")
    try:
        parsed = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        raise ValidationFailed(f"{path.name}: not a readable CSV file") from None
    records = []
    for number, cells in enumerate(parsed, start=1):
        values = [c.strip() or None for c in cells]
        if any(v is not None for v in values):
            records.append((number, values))
    return records


def _xlsx_records(path: Path) -> tuple[list[tuple[int, list[Any]]], list[tuple[int, int, str]]]:
    """Cell values (merged ranges filled from their top-left cell) and formula errors.

    Values are the results Excel cached (``data_only``); a formula never calculated (a file
    written by a script, not saved by Excel) has none, and guessing would be worse.
    """
    from openpyxl import load_workbook

    # An XLSX is a zip of XML parts; openpyxl parses them with defusedxml (a dependency for
    # this reason too), which refuses entity expansion.
    check_zip(path)
    try:
        values_book = load_workbook(path, data_only=True)
        formula_book = load_workbook(path, data_only=False)
    except Exception:
        # openpyxl fails on a damaged workbook with whatever its parsers raise (zlib, XML,
        # KeyError, TypeError from its descriptors, ...): all of them mean a damaged file.
        raise ValidationFailed(f"{path.name}: not a readable XLSX workbook (damaged, "
                               "truncated or an old .xls?)") from None
    sheet, formulas = values_book.worksheets[0], formula_book.worksheets[0]
    grid = [list(r) for r in sheet.iter_rows(min_row=1, min_col=1, values_only=True)]
    for merged in sheet.merged_cells.ranges:
        top_left = grid[merged.min_row - 1][merged.min_col - 1]
        for r in range(merged.min_row, merged.max_row + 1):
            for c in range(merged.min_col, merged.max_col + 1):
                grid[r - 1][c - 1] = top_left
    errors: list[tuple[int, int, str]] = []
    for formula_row in formulas.iter_rows(min_row=1, min_col=1):
        for cell in formula_row:
            if (cell.data_type == "f" and cell.row is not None and cell.column is not None
                    and grid[cell.row - 1][cell.column - 1] is None):
                errors.append((cell.row, cell.column - 1,
                               f"cell {cell.coordinate} is a formula without a calculated "
                               "value; open and save the file in Excel"))
    records = []
    for number, cells in enumerate(grid, start=1):
        values = [v.strip() or None if isinstance(v, str) else v for v in cells]
        if any(v is not None for v in values):
            records.append((number, values))
    return records, errors


def _header_index(records: list[tuple[int, list[Any]]], names: frozenset[str]) -> int | None:
    if not records:
        return None
    if names:
        for i, (_, cells) in enumerate(records[:20]):
            if sum(str(c).strip().lower() in names for c in cells if c is not None) >= 2:
                return i
    return 0


def _is_field_name_row(cells: list[Any]) -> bool:
    texts = [c for c in cells if c is not None]
    return len(texts) >= 2 and all(isinstance(c, str) and _FIELD_NAME.match(c) for c in texts)


def find_column(frame: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    """The frame's column matching one of ``names`` (case-insensitive), in ``names`` order."""
    lower = {str(c).strip().lower(): str(c) for c in frame.columns}
    return next((lower[n] for n in names if n in lower), None)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _sheet_geometry(sheet: Table, crs: str | None) -> Table:
    frame, errors = sheet.frame, sheet.errors
    label = _declared(crs) if crs is not None else WGS84
    wkt_column = find_column(frame, WKT_NAMES)
    lon_column, lat_column = find_column(frame, LON_NAMES), find_column(frame, LAT_NAMES)
    if wkt_column is None and (lon_column is None or lat_column is None):
        return sheet
    n = len(frame)
    geoms: list[Any] = [None] * n
    lon = np.full(n, np.nan)
    lat = np.full(n, np.nan)
    for i, row in enumerate(frame.itertuples(index=False)):
        values = dict(zip(frame.columns, row, strict=True))
        number = int(values[ROW])
        text = values.get(wkt_column) if wkt_column else None
        if text is not None:
            try:
                geoms[i] = shapely.from_wkt(str(text))
            except shapely.errors.GEOSException:
                errors.append(row_error(number, wkt_column, "not a valid WKT geometry"))
            continue
        if lon_column is None or lat_column is None:
            continue
        for name, column, out, limit in ((lon_column, lon_column, lon, 180.0),
                                         (lat_column, lat_column, lat, 90.0)):
            cell = values[column]
            x = _number(cell)
            if cell is None:
                errors.append(row_error(number, name, "missing coordinate"))
            elif x is None or not math.isfinite(x):
                errors.append(row_error(number, name, f"{quoted(cell)} is not a finite number"))
            elif label in (WGS84, CGCS2000, GCJ02) and not -limit <= x <= limit:
                errors.append(row_error(number, name, f"{x} is outside ±{limit:g} degrees"))
            else:
                out[i] = x
    ok = np.isfinite(lon) & np.isfinite(lat)
    if ok.any():
        try:
            wgs_lon, wgs_lat = lonlat_to_wgs84(lon[ok], lat[ok], label)
        except ValueError as exc:
            raise ValidationFailed(str(exc)) from None
        points = np.asarray(shapely.points(wgs_lon, wgs_lat), dtype=object).tolist()
        for k, point in zip(np.flatnonzero(ok).tolist(), points, strict=True):
            geoms[k] = point
    wkt_rows = [i for i, g in enumerate(geoms) if g is not None and not ok[i]]
    if wkt_rows and label != WGS84:
        moved = to_wgs84(gpd.GeoDataFrame(geometry=[geoms[i] for i in wkt_rows]), label)
        for i, g in zip(wkt_rows, moved.geometry, strict=True):
            geoms[i] = g
    frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=WGS84))
    return Table(frame, errors, "wkt" if wkt_column and lon_column is None else "lonlat")


# --- GIS files ----------------------------------------------------------------------------


def check_zip(path: Path) -> list[zipfile.ZipInfo]:
    """The archive's members; ValidationFailed for a damaged archive or a zip bomb."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    # A damaged directory can also name an unsupported zip version or compression method.
    except (zipfile.BadZipFile, OSError, NotImplementedError, ValueError, EOFError):
        raise ValidationFailed(f"{path.name}: not a readable zip archive (damaged or "
                               "truncated?)") from None
    total = sum(m.file_size for m in members)
    packed = sum(m.compress_size for m in members)
    if total > MAX_UNCOMPRESSED or (total > _RATIO_FLOOR and total > MAX_RATIO * max(packed, 1)):
        raise ValidationFailed(f"{path.name}: refused: the archive inflates to {total} bytes "
                               f"(limits: {MAX_UNCOMPRESSED} bytes, {MAX_RATIO}x compression)")
    return members


def _shapefile_source(path: Path) -> str:
    """The ``/vsizip/`` source of the one ``.shp`` in our own archive ``path``.

    Refuses member names that would leave the archive or reach another GDAL file system,
    members that make GDAL open other files (``.vrt``), and a ``.shp`` that is not a shapefile
    (GDAL would open a VRT named ``.shp`` as a VRT).
    """
    members = [m.filename for m in check_zip(path) if not m.is_dir()
               and not m.filename.startswith("__MACOSX/")]
    for member in members:
        _check_member(path, member)
    shapes = [m for m in members if m.lower().endswith(".shp")]
    if len(shapes) != 1:
        raise ValidationFailed(f"{path.name}: the archive must hold exactly one .shp file "
                               f"(found {len(shapes)})")
    stem = shapes[0][:-4].lower()
    missing = [ext for ext in (".shx", ".dbf") if stem + ext not in {m.lower() for m in members}]
    if missing:
        raise ValidationFailed(f"{path.name}: the shapefile is incomplete: "
                               f"{' and '.join(missing)} missing")
    with zipfile.ZipFile(path) as archive, archive.open(shapes[0]) as shp:
        if shp.read(4) != _SHP_MAGIC:
            raise ValidationFailed(f"{path.name}: the .shp file in the archive is not a "
                                   "shapefile")
    return f"/vsizip/{path.resolve()}/{shapes[0]}"


def _check_member(path: Path, name: str) -> None:
    parts = PurePosixPath(name).parts
    if (name.startswith(("/", "\\")) or "\\" in name or ":" in name or ".." in parts
            or "/vsi" in name.lower() or not name.isprintable()):
        raise ValidationFailed(f"{path.name}: refused: unsafe member name {quoted(name)} in "
                               "the archive")
    if name.lower().endswith(_POINTER_SUFFIXES):
        raise ValidationFailed(f"{path.name}: refused: the archive holds {quoted(name)}; a "
                               "zipped shapefile holds only .shp, .shx, .dbf, .prj, .cpg files")


def _read_gis(path: Path, suffix: str, crs: str | None) -> gpd.GeoDataFrame:
    kind = GIS_SUFFIXES[suffix]
    source = _shapefile_source(path) if suffix == ".zip" else gdal_source(path, suffix)
    try:
        layers = [str(name) for name, *_ in pyogrio.list_layers(source)]
        if not layers:
            raise ValidationFailed(f"{path.name}: the {kind} file holds no layer")
        # KML folders are one data set split for display; a GeoPackage's layers are not.
        wanted = layers if suffix == ".kml" else layers[:1]
        # NaN coordinates in a file make shapely's WKB parser warn; the geometry checks
        # report those rows, so the warning is only noise.
        with np.errstate(invalid="ignore"):
            parts = [pyogrio.read_dataframe(source, layer=name) for name in wanted]
    except _READ_ERRORS:
        raise ValidationFailed(f"{path.name}: not a readable {kind} file (damaged or "
                               "truncated?)") from None
    frame = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name is None:
        raise ValidationFailed(f"{path.name}: the {kind} file has no geometry")
    frame = frame.reset_index(drop=True)
    if suffix == ".kml":
        frame = frame.drop(columns=[c for c in _LIBKML_STYLE if c in frame.columns])
    if frame.geometry.name != "geometry":
        frame = frame.rename_geometry("geometry")
    if ROW in frame.columns:
        frame = frame.rename(columns={ROW: f"{ROW}_in_file"})
    frame.insert(0, ROW, np.arange(1, len(frame) + 1))
    frame = _reproject(frame, crs, path.name)
    flat = shapely.force_2d(frame.geometry.to_numpy())
    return frame.set_geometry(gpd.GeoSeries(flat, index=frame.index, crs=WGS84))


def _declared(crs: str) -> str:
    try:
        return normalize_crs(crs)
    except ValueError as exc:
        raise ValidationFailed(str(exc), details=[row_error(None, "crs", str(exc))]) from None


def _reproject(frame: gpd.GeoDataFrame, crs: str | None, name: str) -> gpd.GeoDataFrame:
    label = _declared(crs) if crs is not None else None
    if frame.crs is None and label is None:
        raise ValidationFailed(f"{name}: the file declares no coordinate reference system "
                               "(a shapefile without .prj?); state it with crs, e.g. "
                               "crs=EPSG:4490 / 请指定坐标系")
    own = normalize_crs(frame.crs.to_string()) if frame.crs is not None else None
    # GeoJSON is WGS84 by definition, and CGCS2000 equals WGS84 at the metre level, so a
    # declaration of either on a file labelled with the other is not a contradiction.
    if label in (WGS84, CGCS2000) and own in (WGS84, CGCS2000):
        label = None
    try:
        moved: gpd.GeoDataFrame = to_wgs84(frame, label)
    except ValueError as exc:
        raise ValidationFailed(f"{name}: {exc}") from None
    return moved


# --- geometry checks ----------------------------------------------------------------------


@dataclass(frozen=True)
class GeometryCheck:
    """One row's geometry verdict: the geometry to store, or an error; a repair note."""

    geometry: Any = None
    error: str | None = None
    repair: str | None = None


POLYGONAL = ("Polygon", "MultiPolygon")
# A boundary digitised from survey data has thousands of vertices; one with more than this is
# a digitising accident (or an attack), and every point-in-polygon test, map page and tile
# would carry its weight.
MAX_VERTICES = 200_000
# Repairs may move the area by less than this share; more means make_valid guessed.
REPAIR_AREA_TOLERANCE = 0.01


def check_geometries(geoms: Any, allowed: tuple[str, ...]) -> list[GeometryCheck]:
    """Check each geometry: present, non-empty, finite, in range, of an allowed type, at most
    ``MAX_VERTICES`` vertices, valid.

    An invalid polygon is repaired with ``shapely.make_valid`` only when the repair is
    unambiguous: the result is still a Polygon or MultiPolygon and its area differs from the
    original's by under 1 %. A bow-tie whose halves cancel out (area 0) is therefore refused,
    while a polygon with a small twisted corner is repaired and reported.
    """
    values = np.asarray(geoms, dtype=object)
    missing = shapely.is_missing(values)
    present = values.copy()
    present[missing] = None
    empty = shapely.is_empty(present) & ~missing
    coords, index = shapely.get_coordinates(present, return_index=True)
    bad_coords = np.zeros(len(values), dtype=bool)
    bad_coords[index[~np.isfinite(coords).all(axis=1)]] = True
    out_of_range = np.zeros(len(values), dtype=bool)
    out_of_range[index[(np.abs(coords[:, 0]) > 180) | (np.abs(coords[:, 1]) > 90)]] = True
    types = shapely.get_type_id(present)
    vertices = shapely.get_num_coordinates(present)
    huge = vertices > MAX_VERTICES
    # Validity of a huge geometry is not needed to refuse it, and costs seconds.
    checkable = present.copy()
    checkable[huge] = None
    valid = shapely.is_valid(checkable)
    checks = []
    for i, geom in enumerate(present):
        name = _TYPE_NAMES.get(int(types[i]), "?")
        if missing[i]:
            checks.append(GeometryCheck(error="missing geometry"))
        elif empty[i]:
            checks.append(GeometryCheck(error="empty geometry"))
        elif bad_coords[i]:
            checks.append(GeometryCheck(error="coordinates are not finite numbers (NaN/inf)"))
        elif out_of_range[i]:
            checks.append(GeometryCheck(error="coordinates are outside lon ±180 / lat ±90 "
                                              "(swapped, or a wrong crs?)"))
        elif name not in allowed:
            checks.append(GeometryCheck(error=f"a {name} where {' or '.join(allowed)} is "
                                              "expected"))
        elif huge[i]:
            checks.append(GeometryCheck(error=f"{int(vertices[i]):,} vertices (at most "
                                              f"{MAX_VERTICES:,}): simplify it in the GIS "
                                              "software first"))
        elif valid[i]:
            checks.append(GeometryCheck(geometry=geom))
        else:
            checks.append(_repair(geom, name))
    return checks


_TYPE_NAMES = {0: "Point", 1: "LineString", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint",
               5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}


def _repair(geom: Any, name: str) -> GeometryCheck:
    reason = shapely.is_valid_reason(geom)
    if name not in POLYGONAL:
        return GeometryCheck(error=f"invalid geometry ({reason})")
    fixed = shapely.make_valid(geom)
    before, after = float(geom.area), float(fixed.area)
    change = abs(after - before) / before if before > 0 else math.inf
    if fixed.geom_type not in POLYGONAL or change >= REPAIR_AREA_TOLERANCE:
        return GeometryCheck(error=f"invalid geometry ({reason}) with no unambiguous repair: "
                                   "fix it in the GIS software")
    parts = shapely.get_num_geometries(fixed)
    return GeometryCheck(geometry=fixed, repair=(
        f"{reason}: repaired by make_valid into a {fixed.geom_type} of {parts} part(s), "
        f"area changed {change:.2%}"))


def cell_text(value: Any) -> str | None:
    """A cell as trimmed text: None when empty; ``12.0`` (a number typed as code) as ``12``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value).strip()
    return text or None
