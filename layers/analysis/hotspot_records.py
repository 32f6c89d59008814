"""The hotspot analyses' results as records: what :mod:`layers.analysis.hotspots` hands to
``api/`` (REST features, snapshots, the CLI) instead of geo's frames.

geo.hotspots computes on frames whose columns are named there (``CELL_COLUMNS``,
``AREA_COLUMNS``, ``CHRONIC_COLUMNS``, the cluster summary); each frame is read here, column
by column, into one frozen dataclass per row, so that a column renamed in geo fails in this
module (a KeyError on the first run of any test) and a field renamed in a record fails type
checking where api/ reads it. Missing values come out as None, never NaN.

Cost: a grid is at most 20,000 cells (geo.hotspots.budget). Converting 20,000 cells takes
about 60 ms (columns to lists, then one dataclass a row), less than the ``to_dict("records")``
the feature builder used to call on the frame (about 100 ms) and some 2 % of building the
features themselves (about 2.5 s of pydantic models and GeoJSON mappings); measured on the
2-core development machine, November 2026. Areas, chronic sites and clusters are tens of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
from shapely.geometry.base import BaseGeometry

from layers.frames import text, whole


@dataclass(frozen=True)
class Cell:
    """A study cell: its issues, the value Gi* ran on, z, two-sided p, FDR-adjusted p and
    class (−3..3; ±3/±2/±1 at 99/95/90 % confidence); geometry in EPSG:4326."""

    cell: str
    count: int
    value: float
    z: float
    p: float
    p_fdr: float
    gi_bin: int
    geometry: BaseGeometry


@dataclass(frozen=True)
class Area:
    """Hot cells merged into one area, ordered by ``peak_z`` (``area_id`` 1 is the hottest).

    ``categories`` are the top (category, issues) pairs; ``shares`` the (jurisdiction id,
    share of the area) pairs, largest first, and ``outside_share`` what lies outside them;
    the jurisdiction and units are the assignment engine's at a point on the largest piece.
    """

    area_id: int
    cells: list[str]
    issue_count: int
    peak_z: float
    categories: list[tuple[str, int]]
    shares: list[tuple[int, float]]
    outside_share: float
    jurisdiction_id: int | None
    territorial_unit_id: int | None
    functional_unit_id: int | None
    lead_unit_id: int | None
    area_km2: float
    geometry: BaseGeometry


@dataclass(frozen=True)
class GiResult:
    """Gi* cells and hot areas of one query, and the issues that fell outside the grid."""

    cells: list[Cell]
    areas: list[Area]
    outside: int


@dataclass(frozen=True)
class ChronicPair:
    """A (site, category) pair whose problem keeps coming back within the window after
    closure, most chronic first (geo.hotspots.chronic), with the site's code, name and layer
    (None if the site is gone)."""

    site_id: int
    code: str | None
    name: str | None
    layer: str | None
    category: str
    recurrences: int
    issues: int
    share: float
    site_recurrences: int
    first_reported: date  # local days
    last_reported: date


@dataclass(frozen=True)
class Cluster:
    """A DBSCAN cluster of single reports: its reports, most frequent category and convex
    hull (EPSG:4326)."""

    cluster: int
    reports: int
    top_category: str
    geometry: BaseGeometry


def cells(frame: pd.DataFrame) -> list[Cell]:
    """geo.hotspots' cells frame (``CELL_COLUMNS``) as records."""
    return [Cell(cell=str(c), count=n, value=v, z=z, p=p, p_fdr=q, gi_bin=b, geometry=g)
            for c, n, v, z, p, q, b, g in zip(*_columns(frame, (
                "cell", "count", "value", "z", "p", "p_fdr", "gi_bin", "geometry")),
                strict=True)]


def areas(frame: pd.DataFrame) -> list[Area]:
    """geo.hotspots' areas frame (``AREA_COLUMNS``) as records."""
    return [Area(
        area_id=int(r["area_id"]), cells=[str(c) for c in r["cells"]],
        issue_count=int(r["issue_count"]), peak_z=float(r["peak_z"]),
        categories=[(str(c), int(n)) for c, n in r["categories"]],
        shares=[(int(j), float(s)) for j, s in r["shares"]],
        outside_share=float(r["outside_share"]), jurisdiction_id=whole(r["jurisdiction_id"]),
        territorial_unit_id=whole(r["territorial_unit_id"]),
        functional_unit_id=whole(r["functional_unit_id"]),
        lead_unit_id=whole(r["lead_unit_id"]), area_km2=float(r["area_km2"]),
        geometry=r["geometry"]) for r in frame.to_dict("records")]


def chronic(frame: pd.DataFrame) -> list[ChronicPair]:
    """geo.hotspots' chronic frame (``CHRONIC_COLUMNS``) merged with the sites' ``code``,
    ``name`` and ``layer``, as records (first and last reports as local days)."""
    return [ChronicPair(
        site_id=int(r["site_id"]), code=text(r["code"]), name=text(r["name"]),
        layer=text(r["layer"]), category=str(r["category"]),
        recurrences=int(r["recurrences"]), issues=int(r["issues"]), share=float(r["share"]),
        site_recurrences=int(r["site_recurrences"]), first_reported=r["first_reported"],
        last_reported=r["last_reported"]) for r in frame.to_dict("records")]


def clusters(frame: pd.DataFrame) -> list[Cluster]:
    """geo.hotspots' cluster summary as records."""
    return [Cluster(cluster=int(r["cluster"]), reports=int(r["reports"]),
                    top_category=str(r["top_category"]), geometry=r["geometry"])
            for r in frame.to_dict("records")]


def _columns(frame: pd.DataFrame, names: tuple[str, ...]) -> list[list[Any]]:
    # tolist() turns numpy scalars into Python ints and floats in one call per column.
    return [frame[name].tolist() for name in names]
