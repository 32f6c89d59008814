"""Assignment by polygon: the one engine that puts an issue on its ground, site and units.

Single issues (``POST /api/v1/issues``), imports, the demo and bulk reassignment all call
:meth:`Assigner.assign` on arrays of points, so no two implementations can disagree.

Rules (DESIGN.md, "Assignment by polygon"):

1. **Territorial.** The finest jurisdiction (grid < community < street) whose polygon covers
   the point, boundary included. On a border shared by several polygons of that level (an
   edge, or a vertex shared by three), the polygon with the smallest ``code`` wins and the
   issue is flagged ``on_boundary``; a point on the outer edge of its only polygon is flagged
   too. A point covered by no polygon (outside the street, in a gap, inside a hole) goes to the
   nearest finest-level polygon within ``tolerance_m`` and is flagged ``outside_all``; beyond
   the tolerance it gets no jurisdiction (the unassigned queue), also flagged ``outside_all``.
2. **Site.** The site whose polygon covers the point; among overlapping sites the smallest
   (most specific) wins, then the lowest id. Otherwise the site whose surroundings buffer
   (``buffer_m``, measured in a local metric CRS) reaches it, nearest first, flagged
   ``via_buffer``; the buffer edge is inclusive. A category bound to a site layer only links
   to sites of that layer.
3. **Functional.** Responsibility rules, most specific first: site (+category) > jurisdiction
   (+category, finer before coarser) > category rule > the catalog's default department. The
   lead unit is the functional unit, or else the territorial owner.

Containment is decided in EPSG:4326 on the stored coordinates, exactly; only distances
(tolerance, buffers) are measured in the local metric CRS.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import NDArray
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info

LEVEL_RANK = {"grid": 0, "community": 1, "street": 2}
_NO_IDS = np.empty(0, np.int64)
NONE = -1  # "no id" in integer id arrays
# numpy's stubs cannot follow dtypes through indexing and pandas conversions; these aliases
# document intent without fighting them.
IntArray = NDArray[Any]
GeomArray = NDArray[Any]
RESULT_COLUMNS = ["jurisdiction_id", "territorial_unit_id", "on_boundary", "outside_all",
                  "site_id", "via_buffer", "functional_unit_id", "lead_unit_id"]


def local_metric_crs(geoms: GeomArray) -> pyproj.CRS:
    """The UTM zone holding the centre of ``geoms`` (EPSG:4326), for metre distances.

    Examples
    --------
    >>> local_metric_crs(np.array([shapely.Point(120.7, 31.3)])).to_epsg()
    32651
    """
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    return pyproj.CRS.from_epsg(_utm_epsg(round((minx + maxx) / 2, 2),
                                          round((miny + maxy) / 2, 2)))


@functools.cache
def _utm_epsg(lon: float, lat: float) -> int:
    # PROJ's search of its database takes 0.12 s a call (measured: 0.49 s of a 3.4 s hotspot
    # page, which builds two study grids), and a district asks the same question every time;
    # the centre is rounded to 0.01° (1 km) so that the answers can be kept.
    info = query_utm_crs_info(datum_name="WGS 84",
                              area_of_interest=AreaOfInterest(lon, lat, lon, lat))
    return int(info[0].code)


def _ids(values: Any) -> IntArray:
    """Integer ids with None/NaN as NONE."""
    series = pd.Series(values, dtype="object")
    return series.where(series.notna(), NONE).astype(np.int64).to_numpy()


@dataclass(frozen=True, eq=False)
class Assigner:
    """Jurisdictions, sites and rules prepared for fast, vectorised assignment.

    Build it with :meth:`build`; it is immutable and safe to share between threads.
    """

    j_ids: IntArray
    j_rank: IntArray
    j_priority: IntArray  # tie-break order: finest level first, then smallest code
    j_unit: IntArray
    j_geoms: GeomArray
    j_metric: GeomArray
    s_ids: IntArray
    s_layer: NDArray[np.object_]
    s_buffer: NDArray[np.float64]
    s_area: NDArray[np.float64]
    s_geoms: GeomArray
    s_metric: GeomArray
    # (category or None, jurisdiction id, site id, unit id) in application order
    rules: list[tuple[str | None, int, int, int]]
    descendants: dict[int, IntArray]
    category_layer: dict[str, str | None]
    category_unit: dict[str, int]
    active_categories: frozenset[str]
    to_metric: pyproj.Transformer
    j_tree: shapely.STRtree = field(init=False)
    j_metric_tree: shapely.STRtree = field(init=False)
    s_tree: shapely.STRtree = field(init=False)
    s_metric_tree: shapely.STRtree = field(init=False)

    def __post_init__(self) -> None:
        # Frozen for sharing; the trees are derived once here.
        object.__setattr__(self, "j_tree", shapely.STRtree(self.j_geoms))
        object.__setattr__(self, "j_metric_tree", shapely.STRtree(self.j_metric))
        object.__setattr__(self, "s_tree", shapely.STRtree(self.s_geoms))
        object.__setattr__(self, "s_metric_tree", shapely.STRtree(self.s_metric))

    @classmethod
    def build(cls, jurisdictions: pd.DataFrame, sites: pd.DataFrame, rules: pd.DataFrame,
              categories: pd.DataFrame) -> Assigner:
        """Prepare the engine from plain tables (geometries as shapely objects, EPSG:4326).

        Parameters
        ----------
        jurisdictions : columns ``id, code, level, parent_id, unit_id, geometry``.
        sites : columns ``id, layer, buffer_m, geometry`` (a site's own unit plays no part).
        rules : columns ``category_code, jurisdiction_id, site_id, unit_id, precedence``.
        categories : columns ``code, site_layer, functional_unit_id`` and optionally
            ``active`` (default: all active).
        """
        j_geoms = np.asarray(jurisdictions["geometry"], dtype=object)
        s_geoms = np.asarray(sites["geometry"], dtype=object)
        anchor = j_geoms if len(j_geoms) else s_geoms
        crs = local_metric_crs(anchor) if len(anchor) else pyproj.CRS.from_epsg(32651)
        to_metric = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
        j_ids = jurisdictions["id"].to_numpy(np.int64)
        j_rank = jurisdictions["level"].map(LEVEL_RANK).to_numpy(np.int8)
        priority = np.empty(len(j_ids), np.int64)
        priority[np.lexsort((jurisdictions["code"].to_numpy(str), j_rank))] = np.arange(len(j_ids))
        s_metric = _project(s_geoms, to_metric)
        return cls(
            j_ids=j_ids, j_rank=j_rank, j_priority=priority,
            j_unit=_ids(jurisdictions["unit_id"]), j_geoms=j_geoms,
            j_metric=_project(j_geoms, to_metric),
            s_ids=sites["id"].to_numpy(np.int64),
            s_layer=sites["layer"].to_numpy(object),
            s_buffer=sites["buffer_m"].to_numpy(np.float64),
            s_area=shapely.area(s_metric), s_geoms=s_geoms, s_metric=s_metric,
            rules=_prepare_rules(rules, jurisdictions),
            descendants=_descendants(j_ids, _ids(jurisdictions["parent_id"])),
            category_layer={str(c): (None if pd.isna(lyr) else str(lyr))
                            for c, lyr in zip(categories["code"], categories["site_layer"],
                                              strict=True)},
            category_unit={str(c): int(u) for c, u in zip(
                categories["code"], _ids(categories["functional_unit_id"]), strict=True)},
            active_categories=frozenset(
                categories["code"][categories["active"].astype(bool)] if "active" in categories
                else categories["code"]),
            to_metric=to_metric,
        )

    def assign(self, lon: NDArray[np.float64], lat: NDArray[np.float64],
               category: Sequence[str] | NDArray[np.object_], *, tolerance_m: float = 50.0
               ) -> pd.DataFrame:
        """Assign points (EPSG:4326) with their category codes; one result row per point.

        Ids are ``NONE`` (-1) where there is none; see the module docstring for the rules.
        """
        lon = np.asarray(lon, np.float64)
        lat = np.asarray(lat, np.float64)
        category = np.asarray(category, dtype=object)
        which = self._category_index(category)
        points = np.asarray(shapely.points(lon, lat), dtype=object)
        mx, my = self.to_metric.transform(lon, lat)
        metric = np.asarray(shapely.points(mx, my), dtype=object)
        jur, on_boundary, outside = self._territorial(points, metric, tolerance_m)
        layer = self._category_layers[which]
        site, via_buffer = self._site(points, metric, layer)
        territorial_unit = _take(self.j_unit, jur)
        jurisdiction_id = _take(self.j_ids, jur)
        site_id = _take(self.s_ids, site)
        functional = self._functional(category, which, jurisdiction_id, site_id)
        return pd.DataFrame({
            "jurisdiction_id": jurisdiction_id,
            "territorial_unit_id": territorial_unit,
            "on_boundary": on_boundary,
            "outside_all": outside,
            "site_id": site_id,
            "via_buffer": via_buffer,
            "functional_unit_id": functional,
            "lead_unit_id": np.where(functional >= 0, functional, territorial_unit),
        })

    def outside_service_area(self, lon: NDArray[np.float64], lat: NDArray[np.float64],
                             margin_m: float) -> NDArray[np.bool_]:
        """Whether points lie beyond the jurisdictions' extent grown by ``margin_m``.

        Such points are wrong coordinates (swapped axes, a GCJ-02 fix declared as WGS84
        elsewhere), not problems in the district. With no jurisdictions, nothing is outside.
        """
        if not len(self.j_geoms):
            return np.zeros(len(lon), bool)
        minx, miny, maxx, maxy = shapely.total_bounds(self.j_metric)
        x, y = self.to_metric.transform(np.asarray(lon), np.asarray(lat))
        return np.asarray((x < minx - margin_m) | (x > maxx + margin_m)
                          | (y < miny - margin_m) | (y > maxy + margin_m), bool)

    def _territorial(self, points: GeomArray, metric: GeomArray, tolerance_m: float
                     ) -> tuple[IntArray, NDArray[np.bool_], NDArray[np.bool_]]:
        n = len(points)
        chosen = np.full(n, NONE, np.int64)
        pi, gi = self.j_tree.query(points, predicate="intersects")
        if len(pi):
            order = np.lexsort((self.j_priority[gi], pi))
            pi, gi = pi[order], gi[order]
            first = np.unique(pi, return_index=True)[1]
            chosen[pi[first]] = gi[first]
            # Several polygons of the winning level cover the point: it is on a shared border.
            same_level = self.j_rank[gi] == self.j_rank[chosen[pi]]
            shared = np.bincount(pi[same_level], minlength=n) > 1
        else:
            shared = np.zeros(n, bool)
        covered = chosen >= 0
        on_edge = np.zeros(n, bool)
        on_edge[covered] = shapely.touches(points[covered], self.j_geoms[chosen[covered]])
        outside = ~covered
        if outside.any() and len(self.j_ids):
            chosen[outside] = self._nearest(metric[outside], tolerance_m)
        return chosen, shared | on_edge, outside

    def _nearest(self, metric: GeomArray, tolerance_m: float) -> IntArray:
        """The finest, then nearest, polygon within the tolerance of each point, else NONE."""
        found = np.full(len(metric), NONE, np.int64)
        pi, gi = self.j_metric_tree.query(metric, predicate="dwithin", distance=tolerance_m)
        if len(pi):
            dist = shapely.distance(metric[pi], self.j_metric[gi])
            order = np.lexsort((self.j_priority[gi], dist, self.j_rank[gi], pi))
            pi, gi = pi[order], gi[order]
            first = np.unique(pi, return_index=True)[1]
            found[pi[first]] = gi[first]
        return found

    def _site(self, points: GeomArray, metric: GeomArray, layer: NDArray[np.object_]
              ) -> tuple[IntArray, NDArray[np.bool_]]:
        n = len(points)
        chosen = np.full(n, NONE, np.int64)
        via_buffer = np.zeros(n, bool)
        if not len(self.s_ids):
            return chosen, via_buffer
        pi, si = self.s_tree.query(points, predicate="intersects")
        keep = _layer_fits(layer[pi], self.s_layer[si])
        pi, si = pi[keep], si[keep]
        if len(pi):
            order = np.lexsort((self.s_ids[si], self.s_area[si], pi))
            pi, si = pi[order], si[order]
            first = np.unique(pi, return_index=True)[1]
            chosen[pi[first]] = si[first]
        rest = np.flatnonzero(chosen < 0)
        reach = float(self.s_buffer.max())
        if len(rest) and reach > 0:
            qi, si = self.s_metric_tree.query(metric[rest], predicate="dwithin", distance=reach)
            dist = shapely.distance(metric[rest][qi], self.s_metric[si])
            keep = (dist <= self.s_buffer[si]) & _layer_fits(layer[rest][qi], self.s_layer[si])
            qi, si, dist = qi[keep], si[keep], dist[keep]
            if len(qi):
                order = np.lexsort((self.s_ids[si], self.s_area[si], dist, qi))
                qi, si = qi[order], si[order]
                first = np.unique(qi, return_index=True)[1]
                chosen[rest[qi[first]]] = si[first]
                via_buffer[rest[qi[first]]] = True
        return chosen, via_buffer

    @property
    def _category_codes(self) -> NDArray[np.object_]:
        return np.array(sorted(self.category_layer), dtype=object)

    @property
    def _category_layers(self) -> NDArray[np.object_]:
        return np.array([self.category_layer[c] for c in self._category_codes], dtype=object)

    def _category_index(self, category: NDArray[np.object_]) -> IntArray:
        """Each point's position in the sorted catalog; ValueError for unknown codes."""
        codes = self._category_codes
        which = np.searchsorted(codes, category) if len(codes) else np.zeros(len(category), int)
        which = np.minimum(which, max(len(codes) - 1, 0))
        known = codes[which] == category if len(codes) else np.zeros(len(category), bool)
        if not np.all(known):
            raise ValueError(f"unknown categories: {sorted(set(category[~known]))}")
        return which

    def _functional(self, category: NDArray[np.object_], which: IntArray,
                    jurisdiction_id: IntArray, site_id: IntArray) -> IntArray:
        defaults = np.array([self.category_unit[c] for c in self._category_codes], np.int64)
        unit = defaults[which]
        # Rules are few and points many: one vectorised mask per rule, least specific first,
        # so that a more specific rule overwrites a less specific one.
        for code, area, site, owner in self.rules:
            mask = np.ones(len(category), bool)
            if code is not None:
                mask &= category == code
            if site != NONE:
                mask &= site_id == site
            if area != NONE:
                mask &= np.isin(jurisdiction_id, self.descendants.get(area, _NO_IDS))
            unit[mask] = owner
        return unit


def _project(geoms: GeomArray, transformer: pyproj.Transformer) -> GeomArray:
    """``geoms`` with every coordinate transformed (vectorised over all vertices)."""
    coords = shapely.get_coordinates(geoms)
    x, y = transformer.transform(coords[:, 0], coords[:, 1])
    return shapely.set_coordinates(np.array(geoms, dtype=object), np.column_stack([x, y]))


def _take(values: IntArray, index: IntArray) -> IntArray:
    """``values[index]`` with NONE where ``index`` is NONE (safe on empty ``values``)."""
    out = np.full(len(index), NONE, np.int64)
    found = index >= 0
    out[found] = values[index[found]]
    return out


def _layer_fits(wanted: NDArray[np.object_], layer: NDArray[np.object_]) -> NDArray[np.bool_]:
    """A category without a site layer fits any site; otherwise only its own layer."""
    return np.asarray(pd.isna(wanted) | (wanted == layer), bool)


def _descendants(ids: IntArray, parents: IntArray) -> dict[int, IntArray]:
    """Each jurisdiction id with itself and every id below it."""
    children: dict[int, list[int]] = {}
    for child, parent in zip(ids.tolist(), parents.tolist(), strict=True):
        children.setdefault(parent, []).append(child)
    out: dict[int, IntArray] = {}
    for root in ids.tolist():
        found, stack = [], [root]
        while stack:
            node = stack.pop()
            found.append(node)
            stack.extend(children.get(node, []))
        out[root] = np.asarray(found, np.int64)
    return out


def _prepare_rules(rules: pd.DataFrame, jurisdictions: pd.DataFrame
                   ) -> list[tuple[str | None, int, int, int]]:
    """Rules in application order: least specific first; finer jurisdictions later."""
    rank = dict(zip(jurisdictions["id"].astype(np.int64),
                    jurisdictions["level"].map(LEVEL_RANK), strict=True))
    out = pd.DataFrame({
        "category_code": rules["category_code"].astype(object).where(
            rules["category_code"].notna(), None),
        "jurisdiction_id": _ids(rules["jurisdiction_id"]),
        "site_id": _ids(rules["site_id"]),
        "unit_id": rules["unit_id"].astype(np.int64),
        "precedence": rules["precedence"].astype(np.int64),
    })
    out["rank"] = [rank.get(j, 3) for j in out["jurisdiction_id"]]
    # Ascending precedence; at equal precedence coarse (high rank) before fine; then by id
    # descending via the stable sort of the incoming order reversed.
    ordered = out.iloc[::-1].sort_values(["precedence", "rank"], ascending=[True, False],
                                         kind="stable")
    return [(None if c is None else str(c), int(j), int(s), int(u)) for c, j, s, u in zip(
        ordered["category_code"], ordered["jurisdiction_id"], ordered["site_id"],
        ordered["unit_id"], strict=True)]
