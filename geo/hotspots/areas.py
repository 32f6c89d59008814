"""Hotspot areas: contiguous significant hot cells merged into polygons, put on their ground.

An *area* is a connected set of cells whose Gi* class is hot at or above the chosen
confidence (cells that share an edge or a corner are connected). Each area carries its
issue count, its dominant categories, its peak z, its **split across jurisdictions by area
overlap** (shares of the area's surface measured in the assignment engine's metric CRS; the
part outside every jurisdiction is reported as ``outside_share``) and its units, decided by
the assignment engine (:class:`geo.assign.Assigner`) exactly as for an issue: at a point on
the surface of the area's largest jurisdiction piece, with the area's dominant category.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy.sparse import csgraph, csr_array

from geo.assign import LEVEL_RANK, NONE, Assigner, _project
from geo.hotspots.binning import StudyGrid
from geo.hotspots.getis import GiStar

GeomArray = NDArray[np.object_]
IntArray = NDArray[np.int64]
# Cell polygons are computed one by one, so shared vertices can differ in the last bits;
# snapping to 1e-8 degrees (about 1 mm) closes those slivers when merging.
_SNAP_DEG = 1e-8
AREA_COLUMNS = ["area_id", "cells", "issue_count", "peak_z", "categories", "shares",
                "outside_share", "jurisdiction_id", "territorial_unit_id",
                "functional_unit_id", "lead_unit_id", "area_km2", "geometry"]


def hot_components(grid: StudyGrid, hot: NDArray[np.bool_]) -> IntArray:
    """A component label per cell (−1 for cells that are not hot), ordered by first cell."""
    index = np.flatnonzero(hot)
    labels = np.full(grid.size, -1, np.int64)
    if not len(index):
        return labels
    polys = grid.polygons[index]
    left, right = shapely.STRtree(polys).query(polys, predicate="dwithin",
                                               distance=_SNAP_DEG * 10)
    adjacency = csr_array((np.ones(len(left)), (left, right)), shape=(len(index),) * 2)
    _, component = csgraph.connected_components(adjacency, directed=False)
    labels[index] = component
    return labels


def split_by_jurisdiction(assigner: Assigner, geoms: GeomArray, level: str = "community"
                          ) -> list[list[tuple[int, float]]]:
    """Each polygon's (jurisdiction id, share of its area) at ``level``, largest first.

    Shares are of the polygon's own area, measured in the engine's local metric CRS; they sum
    to 1 minus the part outside every jurisdiction of that level.

    Examples
    --------
    >>> import pandas as pd
    >>> left = shapely.box(120.70, 31.30, 120.71, 31.31)
    >>> right = shapely.box(120.71, 31.30, 120.72, 31.31)
    >>> j = pd.DataFrame({"id": [1, 2], "code": ["a", "b"], "level": ["community"] * 2,
    ...                   "parent_id": [None, None], "unit_id": [10, 20],
    ...                   "geometry": [left, right]})
    >>> empty = pd.DataFrame(columns=["id", "layer", "unit_id", "buffer_m", "geometry"])
    >>> rules = pd.DataFrame(columns=["category_code", "jurisdiction_id", "site_id",
    ...                               "unit_id", "precedence"])
    >>> cats = pd.DataFrame({"code": ["x"], "site_layer": [None], "functional_unit_id": [None]})
    >>> engine = Assigner.build(j, empty, rules, cats)
    >>> area = shapely.box(120.7075, 31.30, 120.7175, 31.31)  # 1/4 in a, 3/4 in b
    >>> [(j, round(s, 2)) for j, s in split_by_jurisdiction(engine, np.array([area]))[0]]
    [(2, 0.75), (1, 0.25)]
    """
    rank = LEVEL_RANK[level]
    members = np.flatnonzero(assigner.j_rank == rank)
    metric = _project(np.asarray(geoms, dtype=object), assigner.to_metric)
    out: list[list[tuple[int, float]]] = [[] for _ in range(len(metric))]
    if not len(members) or not len(metric):
        return out
    targets = assigner.j_metric[members]
    gi, ji = shapely.STRtree(targets).query(metric, predicate="intersects")
    pieces = shapely.area(shapely.intersection(metric[gi], targets[ji]))
    whole = shapely.area(metric)
    frame = pd.DataFrame({"g": gi, "j": assigner.j_ids[members[ji]],
                          "share": pieces / whole[gi]})
    frame = frame[frame["share"] > 0].sort_values(["g", "share"], ascending=[True, False])
    for g in frame["g"].unique().tolist():
        part = frame[frame["g"] == g]
        out[int(g)] = [(int(j), float(s)) for j, s in zip(part["j"], part["share"],
                                                             strict=True)]
    return out


def hot_areas(grid: StudyGrid, result: GiStar, issue_cell: IntArray,
              issue_category: NDArray[np.object_], assigner: Assigner, *,
              min_bin: int = 2, level: str = "community", top_categories: int = 3,
              weight: IntArray | None = None) -> pd.DataFrame:
    """Merge cells with Gi bin ≥ ``min_bin`` into areas; one row per area (``AREA_COLUMNS``).

    ``issue_cell`` is each issue's cell index (−1 outside), ``issue_category`` its category
    code; with ``weight``, each row stands for that many issues (counts per cell and
    category, as the tallies give them). ``min_bin`` 3/2/1 asks for 99/95/90 % confidence.
    Areas are ordered by peak z.
    """
    weight = np.ones(len(issue_cell), np.int64) if weight is None else np.asarray(
        weight, np.int64)
    labels = hot_components(grid, result.gi_bin >= min_bin)
    n_areas = int(labels.max()) + 1
    if n_areas == 0:
        return pd.DataFrame(columns=AREA_COLUMNS)
    geoms = np.array([shapely.union_all(grid.polygons[labels == k], grid_size=_SNAP_DEG)
                      for k in range(n_areas)], dtype=object)
    inside = issue_cell >= 0
    issue_area = np.full(len(issue_cell), -1, np.int64)
    issue_area[inside] = labels[issue_cell[inside]]
    shares = split_by_jurisdiction(assigner, geoms, level)
    dominant = [_dominant(issue_category[issue_area == k], weight[issue_area == k],
                          top_categories) for k in range(n_areas)]
    units = _units(assigner, geoms, shares, dominant)
    frame = pd.DataFrame({
        "cells": [list(grid.ids[labels == k]) for k in range(n_areas)],
        "issue_count": np.bincount(issue_area[issue_area >= 0],
                                   weights=weight[issue_area >= 0],
                                   minlength=n_areas).astype(np.int64),
        "peak_z": [float(result.z[labels == k].max()) for k in range(n_areas)],
        "categories": dominant,
        "shares": shares,
        "outside_share": [max(0.0, 1.0 - sum(s for _, s in sh)) for sh in shares],
        **units,
        "area_km2": [float(grid.area_km2[labels == k].sum()) for k in range(n_areas)],
        "geometry": geoms,
    })
    frame = frame.sort_values("peak_z", ascending=False, kind="stable").reset_index(drop=True)
    frame.insert(0, "area_id", np.arange(1, len(frame) + 1))
    return frame[AREA_COLUMNS]


def _dominant(categories: NDArray[np.object_], weights: IntArray, top: int
              ) -> list[tuple[str, int]]:
    counts: Counter[str] = Counter()
    for c, w in zip(categories.tolist(), weights.tolist(), strict=True):
        counts[str(c)] += int(w)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def _units(assigner: Assigner, geoms: GeomArray, shares: list[list[tuple[int, float]]],
           dominant: list[list[tuple[str, int]]]) -> dict[str, Any]:
    """Units by the engine, at a point on the largest jurisdiction piece of each area."""
    anchors = []
    for geom, sh in zip(geoms, shares, strict=True):
        piece = geom
        if sh:
            j = int(np.flatnonzero(assigner.j_ids == sh[0][0])[0])
            overlap = shapely.intersection(geom, assigner.j_geoms[j])
            piece = overlap if not overlap.is_empty else geom
        anchors.append(shapely.point_on_surface(piece))
    xy = shapely.get_coordinates(np.array(anchors, dtype=object))
    fallback = next(iter(sorted(assigner.category_layer)), "")
    cats = [d[0][0] if d else fallback for d in dominant]
    if not len(xy):
        return {k: [] for k in ("jurisdiction_id", "territorial_unit_id",
                                "functional_unit_id", "lead_unit_id")}
    result = assigner.assign(xy[:, 0], xy[:, 1], np.array(cats, dtype=object))
    return {k: [None if v == NONE else int(v) for v in result[k]] for k in (
        "jurisdiction_id", "territorial_unit_id", "functional_unit_id", "lead_unit_id")}
