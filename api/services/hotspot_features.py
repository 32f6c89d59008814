"""Hotspot results as GeoJSON features, shared by the HTTP routes and the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely

from api.schemas.hotspots import (
    AreaProperties,
    CellProperties,
    ClusterProperties,
    EmergingProperties,
    HotspotFeature,
    Share,
    Unit,
)
from layers.analysis.hotspot_records import Area, Cell, Cluster
from layers.analysis.hotspots import EmergingResult

Names = dict[int, tuple[str, str]]
_BIN_MARK = {1: "H", -1: "C", 0: "."}


def _geometry(geom: Any) -> dict[str, Any]:
    mapped: dict[str, Any] = shapely.geometry.mapping(geom)
    return mapped


def _unit(units: Names, unit_id: int | None) -> Unit | None:
    if unit_id is None or unit_id not in units:
        return None
    code, name = units[unit_id]
    return Unit(code=code, name=name)


def cell_features(cells: Sequence[Cell]) -> list[HotspotFeature]:
    """One feature per study cell."""
    return [HotspotFeature(geometry=_geometry(c.geometry), properties=CellProperties(
        cell=c.cell, count=c.count, value=c.value, z=c.z, p=c.p, p_fdr=c.p_fdr,
        gi_bin=c.gi_bin)) for c in cells]


def area_features(areas: Sequence[Area], jurisdictions: Names, units: Names
                  ) -> list[HotspotFeature]:
    """One feature per merged hotspot area, with "社区A 72%, 社区B 28%" style shares."""
    out = []
    for a in areas:
        shares = [Share(jurisdiction=jurisdictions[j][0], name=jurisdictions[j][1],
                        share=round(s, 4)) for j, s in a.shares]
        text = "，".join(f"{s.name} {s.share:.0%}" for s in shares)
        jid = a.jurisdiction_id
        out.append(HotspotFeature(geometry=_geometry(a.geometry), properties=AreaProperties(
            area_id=a.area_id, issue_count=a.issue_count, peak_z=a.peak_z,
            area_km2=a.area_km2, cells=len(a.cells), categories=a.categories, shares=shares,
            share_text=text, outside_share=round(a.outside_share, 4),
            jurisdiction=jurisdictions[jid][0] if jid in jurisdictions else None,
            territorial_unit=_unit(units, a.territorial_unit_id),
            functional_unit=_unit(units, a.functional_unit_id),
            lead_unit=_unit(units, a.lead_unit_id))))
    return out


def emerging_features(found: EmergingResult, *, include_none: bool = False
                      ) -> list[HotspotFeature]:
    """One feature per cell with a pattern or a rebound (every cell with ``include_none``)."""
    res = found.result
    keep = np.ones(found.grid.size, bool) if include_none else (
        (res.category != "none") | res.rebounding)
    return [HotspotFeature(geometry=_geometry(found.grid.polygons[i]),
                           properties=EmergingProperties(
        cell=str(found.grid.ids[i]), category=str(res.category[i]),
        rebounding=bool(res.rebounding[i]), trend_z=float(res.trend_z[i]),
        trend_p=float(res.trend_p[i]), hot_steps=int(res.hot_steps[i]),
        steps=int(res.bins.shape[1]), bins="".join(_BIN_MARK[int(b)] for b in res.bins[i])))
        for i in np.flatnonzero(keep)]


def cluster_features(clusters: Sequence[Cluster]) -> list[HotspotFeature]:
    """One feature per DBSCAN cluster (the convex hull of its reports)."""
    return [HotspotFeature(geometry=_geometry(c.geometry), properties=ClusterProperties(
        cluster=c.cluster, reports=c.reports, top_category=c.top_category)) for c in clusters]
