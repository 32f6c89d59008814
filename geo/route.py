"""Walking routes through inspection stops: nearest neighbour, then 2-opt, lengths in metres.

A supervision team walks (or drives) from stop to stop and does not come back, so the route is
an *open* path: either from a given start (the street office, say) or from whichever end makes
it shortest. Distances are straight lines in a local metric CRS (:func:`to_local_metres`);
the street network is not known here, and for a sub-district's few dozen stops the straight
line ranks routes the same way a walk does.

Written here rather than taken from a TSP package, for measured reasons (2026-11):
``fast-tsp`` stops its search on a wall-clock budget, so the same seed can give a different
route on a busier machine, and it solves closed tours on integer distances; ``python-tsp``
solves closed tours from a random start in pure-Python loops and pulls in ``requests`` and
``tsplib95`` (with networkx). An open path with a fixed or free start, reproducible to the
metre, is about thirty lines of numpy: a closed tour with "free" end nodes at distance 0 from
everything, improved by best-improvement 2-opt that never moves those end nodes. On the demo
district (8-12 stops) it takes under a millisecond.
"""

from __future__ import annotations

import functools

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import Transformer

from geo.assign import local_metric_crs

__all__ = ["nearest_neighbour", "path_length", "to_local_metres", "two_opt", "walking_route"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
# Improvements smaller than this (metres) are rounding noise; stopping there also guarantees
# the 2-opt loop ends.
_EPS_M = 1e-9


def to_local_metres(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Project WGS84 lon/lat to the local UTM zone (:func:`geo.assign.local_metric_crs`).

    Examples
    --------
    >>> x, y = to_local_metres([120.70, 120.70], [31.30, 31.31])
    >>> round(float(y[1] - y[0]))
    1109
    """
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    centre = shapely.total_bounds(shapely.points(lon_a, lat_a))
    x, y = _to_utm(round(float(centre[0] + centre[2]) / 2, 1),
                   round(float(centre[1] + centre[3]) / 2, 1)).transform(lon_a, lat_a)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


@functools.lru_cache(maxsize=16)
def _to_utm(lon: float, lat: float) -> Transformer:
    # Looking the zone up in PROJ's database takes ~0.2 s, most of a round's planning time;
    # a district stays in one zone, so the answer is kept per 0.1 degree of centre.
    crs = local_metric_crs(np.array([shapely.Point(lon, lat)], dtype=object))
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def _distances(xy: FloatArray, start: FloatArray | None) -> FloatArray:
    """Distance matrix over [head, stops..., tail]; the tail, and a free head, cost 0."""
    head = np.zeros((1, 2)) if start is None else start.reshape(1, 2)
    points = np.vstack([head, xy, np.zeros((1, 2))])
    d = np.hypot(*(points[:, None, :] - points[None, :, :]).transpose(2, 0, 1))
    d[-1, :] = d[:, -1] = 0.0
    if start is None:
        d[0, :] = d[:, 0] = 0.0
    return np.asarray(d, dtype=np.float64)


def path_length(xy: ArrayLike, order: ArrayLike, start: ArrayLike | None = None) -> float:
    """Length of the open path visiting ``xy[order]`` in turn, from ``start`` if given.

    Examples
    --------
    >>> path_length([[0, 0], [3, 4], [3, 0]], [0, 2, 1])
    7.0
    >>> path_length([[3, 4]], [0], start=[0, 0])
    5.0
    """
    pts = np.asarray(xy, dtype=np.float64)[np.asarray(order, dtype=np.intp)]
    if start is not None:
        pts = np.vstack([np.asarray(start, dtype=np.float64).reshape(1, 2), pts])
    return float(np.hypot(*np.diff(pts, axis=0).T).sum())


def nearest_neighbour(xy: ArrayLike, start: ArrayLike | None = None) -> IntArray:
    """Greedy order: always walk to the nearest stop not yet visited.

    From ``start`` when given; otherwise the greedy walk is tried from every stop and the
    shortest kept (a few dozen stops make that cheap).

    Examples
    --------
    >>> nearest_neighbour([[0, 0], [10, 0], [1, 0]], start=[-1, 0]).tolist()
    [0, 2, 1]
    """
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    d = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))
    if start is not None:
        first = int(np.argmin(np.hypot(*(pts - np.asarray(start, np.float64)).T)))
        return _greedy(d, first)
    orders = [_greedy(d, first) for first in range(len(pts))]
    lengths = [float(d[o[:-1], o[1:]].sum()) for o in orders]
    return orders[int(np.argmin(lengths))] if orders else np.empty(0, np.intp)


def _greedy(d: FloatArray, first: int) -> IntArray:
    order = [first]
    left = np.ones(len(d), dtype=bool)
    left[first] = False
    while left.any():
        candidates = np.flatnonzero(left)
        nxt = int(candidates[np.argmin(d[order[-1], candidates])])
        order.append(nxt)
        left[nxt] = False
    return np.asarray(order, dtype=np.intp)


def two_opt(xy: ArrayLike, order: ArrayLike, start: ArrayLike | None = None) -> IntArray:
    """Improve an open path by reversing segments while that shortens it (best move first).

    The result is never longer than ``order``: only improving moves are made.

    Examples
    --------
    >>> two_opt([[0, 0], [0, 1], [1, 0], [1, 1]], [0, 3, 1, 2]).tolist()
    [0, 1, 3, 2]
    """
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    n = len(pts)
    d = _distances(pts, None if start is None else np.asarray(start, np.float64))
    # Tour over matrix indices: head (0), stops (1..n) in the given order, tail (n + 1).
    tour = np.concatenate([[0], np.asarray(order, dtype=np.intp) + 1, [n + 1]])
    i, j = np.triu_indices(n, k=1)
    i, j = i + 1, j + 1  # reversible positions: the stops only, head and tail stay put
    while n > 1:
        a, b, c, e = tour[i - 1], tour[i], tour[j], tour[j + 1]
        gain = d[a, b] + d[c, e] - d[a, c] - d[b, e]
        best = int(np.argmax(gain))
        if gain[best] <= _EPS_M:
            break
        tour[i[best]:j[best] + 1] = tour[i[best]:j[best] + 1][::-1]
    return np.asarray(tour[1:-1] - 1, dtype=np.intp)


def walking_route(xy: ArrayLike, start: ArrayLike | None = None
                  ) -> tuple[IntArray, float, float]:
    """Order stops into a short open walk: nearest neighbour improved by 2-opt.

    Parameters
    ----------
    xy : array_like, shape (n, 2)
        Stop coordinates in metres (a local metric CRS).
    start : array_like, shape (2,), optional
        Where the walk begins (not a stop); the first leg is counted. Without it the walk
        begins at whichever stop gives the shortest route.

    Returns
    -------
    order : numpy.ndarray
        Indices into ``xy`` in walking order.
    length_m : float
        The route's length in metres.
    greedy_length_m : float
        The nearest-neighbour route's length, for comparison; never less than ``length_m``.

    Examples
    --------
    >>> square = [[0, 0], [100, 100], [100, 0], [0, 100]]
    >>> order, length, greedy = walking_route(square, start=[0, 0])
    >>> order.tolist(), length
    ([0, 2, 1, 3], 300.0)
    """
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    greedy = nearest_neighbour(pts, start)
    better = two_opt(pts, greedy, start)
    return (better, path_length(pts, better, start), path_length(pts, greedy, start))
