"""What an analysis will cost, estimated from its parameters before it runs.

Every figure here is computed from the study area's extent, the row count and the
parameters alone, in microseconds: nothing is binned or allocated. The analyses' memory grows
with these figures (measured on the demo district, 18 km², in November 2026):

- a Gi* grid costs about 90 bytes per (cell, neighbour) pair while the neighbours are built,
  and its ``output=cells`` answer a few kB per cell;
- the emerging-hotspot cube costs about 42 bytes per non-zero of its space-time weights
  (cells × neighbours × steps × (time_window + 1)) and 23 bytes per pair of steps per cell
  in the Mann-Kendall test (cells × steps² / 2);
- DBSCAN keeps every report's neighbours within ``eps_m``: 8 bytes per pair.

:class:`Limits` holds the ceilings; each defaults to what keeps one analysis near 250 MB, so a
few running at once stay well inside the server's bound of 1 GB above idle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import h3

# Average H3 cell area (km²) by resolution; the candidates an extent yields follow it.
_H3_KM2 = {res: float(h3.average_hexagon_area(res, unit="km^2")) for res in range(16)}
# Reports cluster (that is what hotspots are): DBSCAN's neighbour pairs are estimated as this
# many times what the same reports spread evenly over the extent would have.
CLUSTERING = 20.0


@dataclass(frozen=True)
class Limits:
    """Ceilings on one analysis (see the module docstring for what each costs)."""

    max_rows: int = 1_500_000  # issues read into memory
    max_cells: int = 20_000  # study-grid cells
    max_pairs: int = 2_000_000  # cells × neighbours
    max_cube: int = 6_000_000  # space-time weights: cells × neighbours × steps × (window+1)
    max_trend: int = 8_000_000  # Mann-Kendall pairs: cells × steps × (steps − 1) / 2
    max_dbscan_pairs: int = 20_000_000  # reports × reports within eps_m


def h3_cells(km2: float, resolution: int, at: tuple[float, float] | None = None) -> int:
    """H3 cells of ``resolution`` over ``km2`` of ground (at least one), sized as the cell at
    ``at`` (lon, lat) is: cells of one resolution differ by up to 2x over the globe, those of
    one district by under 1 %. Without ``at``, the global average.

    >>> h3_cells(18.3, 10), h3_cells(18.3, 12)
    (1217, 59592)
    >>> h3_cells(18.3, 10, at=(120.7, 31.3))
    1613
    """
    if at is None:
        cell_km2 = _H3_KM2[resolution]
    else:
        here = h3.latlng_to_cell(at[1], at[0], resolution)
        cell_km2 = float(h3.cell_area(here, unit="km^2"))
    return max(1, math.ceil(km2 / cell_km2))


def ground_km2(area_km2: float, boundary_km: float, cell_width_m: float) -> float:
    """The ground a grid of cells ``cell_width_m`` across covers over an area with that
    boundary: the area itself and a band one cell wide along the boundary (the cells that
    straddle it).

    >>> round(ground_km2(18.3, 17.2, 152.0), 1)
    20.9
    """
    return area_km2 + boundary_km * cell_width_m / 1000.0


def h3_width_m(resolution: int) -> float:
    """An H3 cell's width across its corners (twice its average edge) in metres.

    >>> round(h3_width_m(10))
    152
    """
    return 2.0 * float(h3.average_hexagon_edge_length(resolution, unit="m"))


def fishnet_cells(km2: float, cell_m: float) -> int:
    """Square cells of ``cell_m`` metres over ``km2`` of ground (at least one).

    >>> fishnet_cells(18.3, 100.0)
    1830
    """
    return max(1, math.ceil(km2 * 1e6 / (cell_m * cell_m)))


def neighbours(kind: str, ring: int) -> int:
    """Cells within ``ring`` steps of a cell, itself included: hexagonal rings for H3, a
    square of queen steps for a fishnet.

    >>> neighbours("h3", 3), neighbours("h3", 5), neighbours("fishnet", 1)
    (37, 91, 9)
    """
    if kind == "h3":
        return 3 * ring * (ring + 1) + 1
    return (2 * ring + 1) ** 2


def steps(seconds: float, step_days: float) -> int:
    """Whole time steps of ``step_days`` in a period of ``seconds``.

    >>> steps(203 * 86400.0, 10.0), steps(-5.0, 1.0)
    (20, 0)
    """
    return max(0, int(seconds // (step_days * 86400.0)))


def cube_weights(cells: int, ring_cells: int, n_steps: int, time_window: int) -> int:
    """Non-zeros of the space-time weights: each bin's neighbours in its own step and the
    ``time_window`` steps before it.

    >>> cube_weights(1217, 37, 21, 1)
    1846189
    """
    band = n_steps * (time_window + 1) - time_window * (time_window + 1) // 2
    return cells * ring_cells * max(band, 0)


def trend_pairs(cells: int, n_steps: int) -> int:
    """Pairs of steps the Mann-Kendall test compares, over all cells.

    >>> trend_pairs(1217, 21)
    255570
    """
    return cells * n_steps * (n_steps - 1) // 2


def dbscan_pairs(rows: int, km2: float, eps_m: float) -> int:
    """Neighbour pairs DBSCAN will hold: reports × the reports expected within ``eps_m`` of
    each, :data:`CLUSTERING` times denser than even, at most all of them.

    >>> dbscan_pairs(3000, 18.3, 25.0), dbscan_pairs(3000, 18.3, 500.0)
    (21000, 7728000)
    """
    if rows == 0:
        return 0
    within = rows * math.pi * (eps_m / 1000.0) ** 2 / max(km2, 1e-6) * CLUSTERING
    return rows * min(rows, max(1, math.ceil(within)))
