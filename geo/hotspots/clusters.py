"""Clusters of individual reports (DBSCAN in metres), for spots heavy with duplicates.

DBSCAN (Ester et al. 1996): a report is a *core* report when at least ``min_reports``
reports, itself included, lie within ``eps_m`` metres; clusters are core reports linked by
that distance plus the reports they reach; the rest is noise (label −1). Distances are
measured in the local UTM zone, so ``eps_m`` means metres on the ground.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import NDArray

from geo.assign import local_metric_crs

DEFAULT_EPS_M = 25.0
DEFAULT_MIN_REPORTS = 5


def dbscan_labels(lon: NDArray[np.float64], lat: NDArray[np.float64], *,
                  eps_m: float = DEFAULT_EPS_M, min_reports: int = DEFAULT_MIN_REPORTS
                  ) -> NDArray[np.int64]:
    """A cluster label per report (−1: noise), clusters numbered by size, largest 0.

    >>> lon = np.array([120.7, 120.70001, 120.70002, 120.8])
    >>> lat = np.array([31.3, 31.3, 31.30001, 31.3])
    >>> dbscan_labels(lon, lat, eps_m=5.0, min_reports=3).tolist()
    [0, 0, 0, -1]
    """

    from sklearn.cluster import DBSCAN

    lon = np.asarray(lon, np.float64)
    lat = np.asarray(lat, np.float64)
    if not len(lon):
        return np.empty(0, np.int64)
    crs = local_metric_crs(np.asarray(shapely.points(lon, lat), dtype=object))
    x, y = pyproj.Transformer.from_crs(4326, crs, always_xy=True).transform(lon, lat)
    raw = DBSCAN(eps=eps_m, min_samples=min_reports).fit_predict(np.column_stack([x, y]))
    labels = np.asarray(raw, np.int64)
    found = labels >= 0
    if not found.any():
        return labels
    sizes = np.bincount(labels[found])
    rank = np.empty(len(sizes), np.int64)
    rank[np.lexsort((np.arange(len(sizes)), -sizes))] = np.arange(len(sizes))
    return np.where(found, rank[np.maximum(labels, 0)], -1).astype(np.int64)


def cluster_summary(lon: NDArray[np.float64], lat: NDArray[np.float64],
                    category: NDArray[np.object_], labels: NDArray[np.int64]) -> pd.DataFrame:
    """One row per cluster: ``cluster``, ``reports``, ``top_category``, ``geometry`` (the
    reports' convex hull, EPSG:4326)."""
    found = labels >= 0
    frame = pd.DataFrame({"cluster": labels[found], "category": np.asarray(category)[found],
                          "point": shapely.points(np.asarray(lon)[found],
                                                  np.asarray(lat)[found])})
    rows = []
    for cluster in sorted(frame["cluster"].unique().tolist()):
        part = frame[frame["cluster"] == cluster]
        top = part["category"].value_counts()
        rows.append({"cluster": int(cluster), "reports": len(part),
                     "top_category": str(top.index[0]),
                     "geometry": shapely.convex_hull(shapely.multipoints(
                         part["point"].to_numpy()))})
    return pd.DataFrame(rows, columns=["cluster", "reports", "top_category", "geometry"])
