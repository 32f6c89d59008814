"""Hotspot analysis: where problems are significantly concentrated, and whose ground that is.

Modules: :mod:`~geo.hotspots.binning` (study grids, empty cells included),
:mod:`~geo.hotspots.getis` (Gi*, two-sided p, FDR), :mod:`~geo.hotspots.areas` (merged
hot areas split across jurisdictions), :mod:`~geo.hotspots.emerging` (space-time trends),
:mod:`~geo.hotspots.chronic` (recurring problems at sites) and
:mod:`~geo.hotspots.clusters` (DBSCAN of single reports). :func:`analyse` runs the cell and
area pipeline on points, :func:`analyse_counts` on counts per cell and category.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from geo.assign import Assigner
from geo.hotspots.areas import hot_areas
from geo.hotspots.binning import StudyGrid
from geo.hotspots.getis import gi_star

Normalise = Literal["none", "km2", "site"]
CELL_COLUMNS = ["cell", "count", "value", "z", "p", "p_fdr", "gi_bin", "geometry"]


@dataclass(frozen=True)
class Hotspots:
    """Cells (``CELL_COLUMNS``), areas
    (:data:`geo.hotspots.areas.AREA_COLUMNS`) and the number of issues outside the grid."""

    cells: pd.DataFrame
    areas: pd.DataFrame
    outside: int


def sites_per_cell(grid: StudyGrid, sites: NDArray[np.object_]) -> NDArray[np.float64]:
    """How many of ``sites`` (polygons or points, EPSG:4326) touch each cell."""
    counts = np.zeros(grid.size)
    if len(sites):
        cell, _ = shapely.STRtree(np.asarray(sites, dtype=object)).query(
            grid.polygons, predicate="intersects")
        counts = np.bincount(cell, minlength=grid.size).astype(np.float64)
    return counts


def cell_values(grid: StudyGrid, counts: NDArray[np.float64], normalise: Normalise = "none",
                sites: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """The variable Gi* is computed on: counts, counts per km², or counts per site.

    Per site, a cell without any site counts as one place, so that reports on open ground
    are not dropped.
    """
    if normalise == "km2":
        return counts / grid.area_km2
    if normalise == "site":
        if sites is None:
            raise ValueError("normalising per site needs the sites per cell")
        return counts / np.maximum(sites, 1.0)
    return counts.astype(np.float64)


def analyse(grid: StudyGrid, lon: NDArray[np.float64], lat: NDArray[np.float64],
            category: NDArray[np.object_], assigner: Assigner, *,
            normalise: Normalise = "none", sites: NDArray[np.float64] | None = None,
            fdr: bool = True, min_bin: int = 2, level: str = "community") -> Hotspots:
    """Bin issues, run Gi* with FDR, merge hot cells into areas and split them by ground.

    ``min_bin`` is the class an area's cells need (3/2/1: 99/95/90 % confidence, on
    FDR-adjusted p-values when ``fdr``).
    """
    return analyse_counts(grid, grid.locate(lon, lat), np.asarray(category, dtype=object),
                          np.ones(len(lon), np.int64), assigner, normalise=normalise,
                          sites=sites, fdr=fdr, min_bin=min_bin, level=level)


def analyse_counts(grid: StudyGrid, cell: NDArray[np.int64], category: NDArray[np.object_],
                   count: NDArray[np.int64], assigner: Assigner, *,
                   normalise: Normalise = "none", sites: NDArray[np.float64] | None = None,
                   fdr: bool = True, min_bin: int = 2, level: str = "community") -> Hotspots:
    """:func:`analyse` on issues already counted: ``count`` issues of ``category`` in the
    grid's cell ``cell`` (an index, −1 outside) per row."""
    count = np.asarray(count, np.int64)
    counts = grid.counts(cell, count.astype(np.float64))
    values = cell_values(grid, counts, normalise, sites)
    result = gi_star(values, grid.neighbours, fdr=fdr)
    cells = pd.DataFrame({
        "cell": grid.ids, "count": counts.astype(np.int64), "value": values, "z": result.z,
        "p": result.p, "p_fdr": result.p_fdr, "gi_bin": result.gi_bin,
        "geometry": grid.polygons})
    areas = hot_areas(grid, result, cell, category, assigner, min_bin=min_bin, level=level,
                      weight=count)
    return Hotspots(cells=cells, areas=areas, outside=int(count[cell < 0].sum()))
