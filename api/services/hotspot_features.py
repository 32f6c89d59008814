"""Hotspot results as GeoJSON features, shared by the HTTP routes and the CLI."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
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


def cell_features(cells: pd.DataFrame) -> list[HotspotFeature]:
    """One feature per study cell."""
    return [HotspotFeature(geometry=_geometry(r["geometry"]), properties=CellProperties(
        cell=str(r["cell"]), count=int(r["count"]), value=float(r["value"]), z=float(r["z"]),
        p=float(r["p"]), p_fdr=float(r["p_fdr"]), gi_bin=int(r["gi_bin"])))
        for r in cells.to_dict("records")]


def area_features(areas: pd.DataFrame, jurisdictions: Names, units: Names
                  ) -> list[HotspotFeature]:
    """One feature per merged hotspot area, with "社区A 72%, 社区B 28%" style shares."""
    out = []
    for r in areas.to_dict("records"):
        shares = [Share(jurisdiction=jurisdictions[j][0], name=jurisdictions[j][1],
                        share=round(s, 4)) for j, s in r["shares"]]
        text = "，".join(f"{s.name} {s.share:.0%}" for s in shares)
        jid = r["jurisdiction_id"]
        out.append(HotspotFeature(geometry=_geometry(r["geometry"]), properties=AreaProperties(
            area_id=int(r["area_id"]), issue_count=int(r["issue_count"]),
            peak_z=float(r["peak_z"]), area_km2=float(r["area_km2"]), cells=len(r["cells"]),
            categories=[(str(c), int(n)) for c, n in r["categories"]], shares=shares,
            share_text=text, outside_share=round(float(r["outside_share"]), 4),
            jurisdiction=jurisdictions[jid][0] if jid in jurisdictions else None,
            territorial_unit=_unit(units, r["territorial_unit_id"]),
            functional_unit=_unit(units, r["functional_unit_id"]),
            lead_unit=_unit(units, r["lead_unit_id"]))))
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


def cluster_features(summary: pd.DataFrame) -> list[HotspotFeature]:
    """One feature per DBSCAN cluster (the convex hull of its reports)."""
    return [HotspotFeature(geometry=_geometry(r["geometry"]), properties=ClusterProperties(
        cluster=int(r["cluster"]), reports=int(r["reports"]), top_category=str(r["top_category"])))
        for r in summary.to_dict("records")]
