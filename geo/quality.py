"""Data-quality report over the street > community > grid jurisdiction hierarchy.

Misrouted reports at borders are the most common complaint against FixMyStreet-style systems,
and they come from the polygons: siblings that overlap (two units both own the ground, or each
thinks the other does), gaps (nobody owns it), children that stick out of their parent, broken
geometries and dangling parent codes. :func:`check_jurisdictions` finds all of these before
the layer is loaded, so an import can be refused or fixed instead of misrouting issues later.
"""

from __future__ import annotations

import re
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

__all__ = ["COLUMNS", "KINDS", "check_jurisdictions", "summary"]

WGS84 = "EPSG:4326"
#: Every kind of finding, in the order the report lists them.
KINDS = ("invalid", "duplicate_code", "orphan", "overlap", "gap", "outside_parent")
#: Columns of the findings frame.
COLUMNS = ("kind", "level", "codes", "area_m2", "detail", "detail_zh", "geometry")

GeomArray = NDArray[np.object_]
_REQUIRED = ("code", "name", "level", "parent")
_LOCATION = re.compile(r"\[(\S+) (\S+)\]")
_POLYGON = 3  # shapely.GeometryType.POLYGON
# CGCS2000 / 3-degree Gauss-Kruger CM 75E .. CM 135E are EPSG:4534 .. EPSG:4554.
_GK_FIRST_EPSG, _GK_FIRST_CM, _GK_LAST_CM = 4534, 75, 135


def check_jurisdictions(
    frame: gpd.GeoDataFrame, *, min_area_m2: float = 1.0
) -> gpd.GeoDataFrame:
    """Report the defects of a jurisdiction hierarchy, one row per finding.

    Kinds of finding:

    ``invalid``
        The geometry is missing, empty, not polygonal or invalid (the reason from
        :func:`shapely.is_valid_reason` is in ``detail``); the finding's geometry is the
        reported location when GEOS gives one, else the geometry itself. ``area_m2`` is NaN.
        The remaining checks use the geometry repaired with :func:`shapely.make_valid`.
    ``duplicate_code``
        Several features share one code; parent lookups use the first of them.
    ``orphan``
        ``parent`` names a code that does not exist; geometry is the feature's.
    ``overlap``
        Two siblings (same parent, same level; features without a parent are siblings of each
        other) overlap; geometry is one connected piece of their intersection.
    ``gap``
        A piece of a parent that none of its children covers (checked only for parents that
        have children); ``level`` is the parent's.
    ``outside_parent``
        A piece of a child outside its parent; ``level`` is the child's.

    Area findings are reported per connected piece and kept when the piece is larger than
    ``min_area_m2``: digitising noise along a shared border makes many tiny slivers, which
    must not bury the real problems.

    Areas are computed in the CGCS2000 3-degree Gauss-Kruger zone whose central meridian is
    nearest the centre of the data (EPSG:4534-4554, the projection of Chinese official
    survey data; CGCS2000 is taken as WGS84, a centimetre-level approximation). Within
    1.5 degrees of the central meridian its area scale error stays under 0.1 %, and on the
    meridian it is exact. Data outside China's longitudes uses its UTM zone
    (``estimate_utm_crs``) instead.

    Parameters
    ----------
    frame : geopandas.GeoDataFrame
        Columns ``code``, ``name``, ``level`` (``street``, ``community`` or ``grid``),
        ``parent`` (the parent's code; None, NaN or ``""`` for none) and polygonal geometry,
        in EPSG:4326 (another CRS is converted). Codes are compared as strings.
    min_area_m2 : float, default 1.0
        Overlaps, gaps and outside pieces up to this area are ignored.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``kind, level, codes, area_m2, detail, detail_zh, geometry`` (see
        :data:`COLUMNS`), EPSG:4326, ordered by kind as in :data:`KINDS`. ``codes`` is a list
        of the codes involved; ``detail`` is short English, ``detail_zh`` Chinese.

    Raises
    ------
    ValueError
        If a required column or the CRS is missing.

    Examples
    --------
    >>> cells = gpd.GeoSeries(
    ...     [shapely.box(0, 0, 200, 100), shapely.box(0, 0, 100, 100),
    ...      shapely.box(90, 0, 200, 100)], crs="EPSG:4549").translate(500000, 3465000)
    >>> frame = gpd.GeoDataFrame(
    ...     {"code": ["S", "C1", "C2"], "name": ["街道", "一社区", "二社区"],
    ...      "level": ["street", "community", "community"], "parent": [None, "S", "S"]},
    ...     geometry=cells.to_crs("EPSG:4326"))
    >>> findings = check_jurisdictions(frame)
    >>> findings[["kind", "codes"]].to_dict("records")
    [{'kind': 'overlap', 'codes': ['C1', 'C2']}]
    >>> round(findings["area_m2"].iloc[0])
    1000
    >>> summary(findings)["overlap"]
    1
    """
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"Jurisdictions lack column(s) {missing} / 辖区数据缺少字段 {missing}")
    if frame.crs is None:
        raise ValueError("Jurisdictions have no CRS / 辖区数据未声明坐标系")
    frame = frame.to_crs(WGS84).reset_index(drop=True)
    if frame.empty:
        return _findings([], [])
    table = _Table(frame)
    metric_crs = _metric_crs(frame.geometry)
    # Everything after the validity check works on repaired polygonal geometry in metres.
    geoms = _polygonal(shapely.make_valid(
        frame.geometry.to_crs(metric_crs).to_numpy(), method="structure",
        keep_collapsed=False))
    in_degrees = [*_invalid(table, frame.geometry.to_numpy()),
                  *_duplicates(table, frame.geometry.to_numpy()),
                  *_orphans(table, frame.geometry.to_numpy(), shapely.area(geoms))]
    in_metres = [*_overlaps(table, geoms, min_area_m2),
                 *_gaps(table, geoms, min_area_m2),
                 *_outside(table, geoms, min_area_m2)]
    metric = gpd.GeoSeries([row.pop("geometry") for row in in_metres], crs=metric_crs)
    for row, geom in zip(in_metres, metric.to_crs(WGS84), strict=True):
        row["geometry"] = geom
    return _findings(in_degrees, in_metres)


def summary(findings: gpd.GeoDataFrame) -> dict[str, int]:
    """Count findings per kind, listing every kind (zero when absent) in report order.

    Examples
    --------
    >>> empty = gpd.GeoDataFrame({"kind": []}, geometry=[], crs="EPSG:4326")
    >>> summary(empty)
    {'invalid': 0, 'duplicate_code': 0, 'orphan': 0, 'overlap': 0, 'gap': 0, 'outside_parent': 0}
    """
    counts = findings["kind"].value_counts()
    return {kind: int(counts.get(kind, 0)) for kind in KINDS}


class _Table:
    """The attribute columns as plain arrays, plus lookups by code."""

    def __init__(self, frame: gpd.GeoDataFrame) -> None:
        self.code = frame["code"].astype(str).to_numpy()
        self.name = frame["name"].fillna("").astype(str).to_numpy()
        self.level = frame["level"].astype(str).to_numpy()
        parent = frame["parent"]
        has_parent = parent.notna() & (parent.astype(str).str.strip() != "")
        self.parent = np.where(has_parent, parent.astype(str), "")
        self.has_parent = has_parent.to_numpy()
        positions = pd.Series(np.arange(len(self.code)), index=self.code)
        # First occurrence wins for duplicated codes (reported separately); NaN: no parent.
        positions = positions[~positions.index.duplicated(keep="first")]
        self.parent_idx = positions.reindex(self.parent).to_numpy(dtype=float)

    def label(self, i: int | np.integer[Any]) -> str:
        return f"{self.name[i]} ({self.code[i]})" if self.name[i] else str(self.code[i])


def _invalid(table: _Table, raw: GeomArray) -> list[dict[str, Any]]:
    reasons = shapely.is_valid_reason(raw)
    polygonal = np.isin(shapely.get_type_id(raw), [3, 6])  # Polygon, MultiPolygon
    usable = ~shapely.is_missing(raw) & ~shapely.is_empty(raw)
    rows = []
    for i in np.flatnonzero(~(usable & polygonal & shapely.is_valid(raw))):
        if not usable[i]:
            reason, reason_zh = "missing or empty geometry", "几何图形缺失或为空"
        elif not polygonal[i]:
            type_name = shapely.GeometryType(shapely.get_type_id(raw[i])).name
            reason = f"not a polygon ({type_name})"
            reason_zh = f"不是面状图形（{type_name}）"
        else:
            reason = reason_zh = str(reasons[i])
        location = _LOCATION.search(reason) if usable[i] else None
        geom = (shapely.Point(float(location[1]), float(location[2])) if location
                else raw[i])
        rows.append(_row("invalid", table.level[i], [table.code[i]], np.nan,
                         f"{table.label(i)}: invalid geometry: {reason}",
                         f"{table.label(i)}：几何图形无效：{reason_zh}", geom))
    return rows


def _duplicates(table: _Table, raw: GeomArray) -> list[dict[str, Any]]:
    codes = pd.Series(table.code)
    counts = codes.value_counts()
    rows = []
    for code in codes[codes.duplicated(keep="first")].unique():
        where = np.flatnonzero(table.code == code)
        rows.append(_row("duplicate_code", table.level[where[0]], [str(code)], np.nan,
                         f"code {code} is used by {counts[code]} features",
                         f"编码 {code} 被 {counts[code]} 个辖区重复使用",
                         shapely.union_all(raw[where])))
    return rows


def _orphans(table: _Table, raw: GeomArray, areas: NDArray[np.float64]) -> list[dict[str, Any]]:
    rows = []
    for i in np.flatnonzero(table.has_parent & np.isnan(table.parent_idx)):
        parent = table.parent[i]
        rows.append(_row("orphan", table.level[i], [table.code[i], parent], float(areas[i]),
                         f"{table.label(i)}: parent {parent} does not exist",
                         f"{table.label(i)}：上级编码 {parent} 不存在", raw[i]))
    return rows


def _overlaps(table: _Table, geoms: GeomArray, min_area: float) -> list[dict[str, Any]]:
    # Candidate pairs from the spatial index, then siblings only: never all pairs.
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    siblings = (pd.Series(table.parent, dtype=str) + "\x1f" + pd.Series(table.level)).to_numpy()
    keep = (left < right) & (siblings[left] == siblings[right])
    left, right = left[keep], right[keep]
    pieces, owner = _pieces(shapely.intersection(geoms[left], geoms[right]), min_area)
    rows = []
    for piece, k in zip(pieces, owner, strict=True):
        a, b, area = int(left[k]), int(right[k]), shapely.area(piece)
        rows.append(_row("overlap", table.level[a], [table.code[a], table.code[b]], area,
                         f"{table.label(a)} and {table.label(b)} overlap by {area:.1f} m²",
                         f"{table.label(a)}与{table.label(b)}重叠 {area:.1f} 平方米", piece))
    return rows


def _gaps(table: _Table, geoms: GeomArray, min_area: float) -> list[dict[str, Any]]:
    children = np.flatnonzero(~np.isnan(table.parent_idx))
    groups = list(pd.Series(children).groupby(table.parent_idx[children].astype(int)))
    parents = np.array([parent for parent, _ in groups], dtype=int)
    # One union per parent: a loop over parents (tens), each union_all vectorised.
    covered = np.array([shapely.union_all(geoms[members.to_numpy()]) for _, members in groups],
                       dtype=object)
    pieces, owner = _pieces(shapely.difference(geoms[parents], covered), min_area)
    rows = []
    for piece, k in zip(pieces, owner, strict=True):
        p, area = int(parents[k]), shapely.area(piece)
        rows.append(_row("gap", table.level[p], [table.code[p]], area,
                         f"{area:.1f} m² of {table.label(p)} is not covered by its children",
                         f"{table.label(p)}有 {area:.1f} 平方米未被下级辖区覆盖", piece))
    return rows


def _outside(table: _Table, geoms: GeomArray, min_area: float) -> list[dict[str, Any]]:
    children = np.flatnonzero(~np.isnan(table.parent_idx))
    parents = table.parent_idx[children].astype(int)
    pieces, owner = _pieces(shapely.difference(geoms[children], geoms[parents]), min_area)
    rows = []
    for piece, k in zip(pieces, owner, strict=True):
        c, p, area = int(children[k]), int(parents[k]), shapely.area(piece)
        rows.append(_row("outside_parent", table.level[c], [table.code[c], table.code[p]],
                         area,
                         f"{area:.1f} m² of {table.label(c)} lies outside {table.label(p)}",
                         f"{table.label(c)}有 {area:.1f} 平方米超出上级辖区{table.label(p)}",
                         piece))
    return rows


def _row(kind: str, level: str, codes: list[str], area: float, detail: str, detail_zh: str,
         geometry: Any) -> dict[str, Any]:
    return {"kind": kind, "level": str(level), "codes": [str(c) for c in codes],
            "area_m2": float(area), "detail": detail, "detail_zh": detail_zh,
            "geometry": geometry}


def _findings(*groups: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    rows = [row for group in groups for row in group]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["area_m2"] = frame["area_m2"].astype(float)
    order = frame["kind"].map({kind: i for i, kind in enumerate(KINDS)})
    # A stable sort keeps each kind's rows in the order they were found (input order).
    frame = frame.iloc[np.argsort(order.to_numpy(), kind="stable")].reset_index(drop=True)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=WGS84)


def _metric_crs(geometry: gpd.GeoSeries) -> Any:
    usable = geometry[~(geometry.isna() | geometry.is_empty)]
    if not len(usable):
        # Without any coordinates there is no area to measure; any metric CRS will do.
        return "EPSG:3857"
    minx, _, maxx, _ = usable.total_bounds
    central = round((minx + maxx) / 6.0) * 3
    if _GK_FIRST_CM <= central <= _GK_LAST_CM:
        return f"EPSG:{_GK_FIRST_EPSG + (central - _GK_FIRST_CM) // 3}"
    return usable.estimate_utm_crs()


def _polygonal(geoms: GeomArray) -> GeomArray:
    """Keep only the polygonal parts of each geometry (MultiPolygon, possibly empty)."""
    parts, owner = _flat_parts(geoms)
    keep = shapely.get_type_id(parts) == _POLYGON
    out = np.array([shapely.MultiPolygon()] * len(geoms), dtype=object)
    polygons: GeomArray = shapely.multipolygons(parts[keep], indices=owner[keep], out=out)
    return polygons


def _pieces(geoms: GeomArray, min_area: float) -> tuple[GeomArray, NDArray[np.intp]]:
    """Connected polygon pieces of ``geoms`` above ``min_area``, with the index they came from."""
    parts, owner = _flat_parts(geoms)
    keep = (shapely.get_type_id(parts) == _POLYGON) & (shapely.area(parts) > min_area)
    return parts[keep], owner[keep]


def _flat_parts(geoms: GeomArray) -> tuple[GeomArray, NDArray[np.intp]]:
    # Overlay results can be collections holding multi-geometries: flatten two levels.
    parts, owner = shapely.get_parts(geoms, return_index=True)
    parts, inner = shapely.get_parts(parts, return_index=True)
    return parts, owner[inner]
