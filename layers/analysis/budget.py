"""Analysis budgets: refuse an analysis that would not fit before it starts.

The estimates are :mod:`geo.hotspots.budget`'s, fed with what the database says cheaply: how
many issues the query selects and since when (one indexed count), and the study area's size
(the assignment engine's polygons, already in memory). A refusal is a 422 that names the
parameters to change and the figure that was too large, so a client can fix the request.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import psycopg
import pyproj
import shapely
from psycopg import sql

from geo.assign import Assigner
from geo.hotspots import budget
from geo.hotspots.budget import Limits
from layers.db.settings import Settings
from layers.errors import ValidationFailed


class OverBudget(ValidationFailed, code="analysis-too-large", title="Analysis too large"):
    """The analysis asked for would exceed a ceiling; ``details`` lists the parameters."""


def limits(settings: Settings) -> Limits:
    """The ceilings for an app or command run with ``settings``."""
    return replace(Limits(), max_rows=settings.analysis_max_rows)


def refuse(parameters: tuple[str, ...], reason: str) -> OverBudget:
    """An :class:`OverBudget` naming ``parameters`` (query parameter names) with ``reason``."""
    message = f"分析规模超出上限 / analysis too large: {reason}"
    return OverBudget(message, details=[{"location": ["query", name], "message": reason}
                                        for name in parameters])


def check_rows(rows: int, limit: Limits, parameters: tuple[str, ...]) -> None:
    """Refuse reading more than ``limit.max_rows`` issues."""
    if rows > limit.max_rows:
        raise refuse(parameters, f"{rows} issues match, at most {limit.max_rows} can be"
                                 f" analysed at once; narrow {' or '.join(parameters)}")


def count_issues(conn: psycopg.Connection[Any], where: sql.Composable, params: list[Any]
                 ) -> tuple[int, float | None]:
    """How many issues ``where`` (on alias ``i``) selects, and the epoch of the first."""
    row = conn.execute(sql.SQL("SELECT count(*), extract(epoch FROM min(i.reported_at))"
                               " FROM issue i WHERE {}").format(where), params).fetchone()
    assert row is not None
    return int(row[0]), None if row[1] is None else float(row[1])


_GEOD = pyproj.Geod(ellps="WGS84")


def study_ground(assigner: Assigner) -> tuple[float, float]:
    """(area km², boundary km) of the coarsest jurisdictions: the ground a study grid covers.

    Measured on the ellipsoid polygon by polygon (their sum never under-estimates their
    union). A bounding box over-estimated every shape that is not a rectangle, and a district
    of two distant streets by orders of magnitude.
    """
    if not len(assigner.j_geoms):
        return 0.0, 0.0
    area = boundary = 0.0
    for geom in assigner.j_geoms[assigner.j_rank == assigner.j_rank.max()]:
        signed, perimeter = _GEOD.geometry_area_perimeter(geom)
        area += abs(signed)
        boundary += perimeter
    return area / 1e6, boundary / 1e3


def _centre(assigner: Assigner) -> tuple[float, float] | None:
    """(lon, lat) of the middle of the coarsest jurisdictions' extent; None without any."""
    if not len(assigner.j_geoms):
        return None
    minx, miny, maxx, maxy = shapely.total_bounds(
        assigner.j_geoms[assigner.j_rank == assigner.j_rank.max()]).tolist()
    return (minx + maxx) / 2, (miny + maxy) / 2


def study_km2(assigner: Assigner) -> float:
    """The area (km²) of the coarsest jurisdictions."""
    return study_ground(assigner)[0]


def grid_size(assigner: Assigner, method: str, resolution: int, ring: int, cell_m: float,
              limit: Limits) -> tuple[int, int]:
    """(cells, neighbours per cell) of the study grid asked for; refused over the ceilings."""
    area, boundary = study_ground(assigner)
    width = cell_m * math.sqrt(2) if method == "fishnet" else budget.h3_width_m(resolution)
    km2 = budget.ground_km2(area, boundary, width)
    if method == "fishnet":
        cells, knobs = budget.fishnet_cells(km2, cell_m), ("cell_m", "ring")
        size = f"cell_m {cell_m:g}"
    else:
        cells, knobs = budget.h3_cells(km2, resolution, _centre(assigner)), ("resolution",
                                                                             "ring")
        size = f"resolution {resolution}"
    near = budget.neighbours("fishnet" if method == "fishnet" else "h3", ring)
    if cells > limit.max_cells:
        raise refuse(knobs[:1], f"{size} over this district ({km2:.1f} km²) means ~{cells}"
                                f" cells, at most {limit.max_cells}; lower {knobs[0]}")
    if cells * near > limit.max_pairs:
        raise refuse(knobs, f"{size} with ring {ring} over this district ({km2:.1f} km²)"
                            f" means ~{cells} cells × {near} neighbours = {cells * near},"
                            f" at most {limit.max_pairs}; lower {knobs[0]} or ring")
    return cells, near


def check_cube(cells: int, near: int, steps: int, step_days: float, time_window: int,
               limit: Limits) -> None:
    """Refuse a space-time cube whose weights or trend test would exceed the ceilings."""
    weights = budget.cube_weights(cells, near, steps, time_window)
    if weights > limit.max_cube:
        raise refuse(("step_days", "period", "time_window", "ring"),
                     f"{steps} steps of {step_days:g} days × ~{cells} cells × {near}"
                     f" neighbours × {time_window + 1} steps in the window = {weights}"
                     f" space-time weights, at most {limit.max_cube}; raise step_days,"
                     " shorten period, or lower time_window or ring")
    pairs = budget.trend_pairs(cells, steps)
    if pairs > limit.max_trend:
        raise refuse(("step_days", "period"),
                     f"{steps} steps of {step_days:g} days over ~{cells} cells means {pairs}"
                     f" step pairs for the trend test, at most {limit.max_trend}; raise"
                     " step_days or shorten period")


def check_dbscan(rows: int, assigner: Assigner, eps_m: float, limit: Limits) -> None:
    """Refuse a DBSCAN whose neighbour lists would exceed the ceiling."""
    km2 = study_km2(assigner) or 1.0
    pairs = budget.dbscan_pairs(rows, km2, eps_m)
    if pairs > limit.max_dbscan_pairs:
        raise refuse(("eps_m", "period", "category"),
                     f"{rows} reports with eps_m {eps_m:g} means up to {pairs} neighbour"
                     f" pairs, at most {limit.max_dbscan_pairs}; lower eps_m or narrow"
                     " period or category")
