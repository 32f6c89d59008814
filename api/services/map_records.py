"""The layers' results and the map pages' snapshot payloads as the records the map builders
read (maps/records.py).

Every field is named on both sides here, so a field renamed in layers/ or in maps/ fails type
checking in this module instead of drawing an empty popup. Snapshot payloads are JSON: each
is written and read by a pair of functions side by side.
"""

from __future__ import annotations

from typing import Any

from api.schemas.hotspots import AreaProperties, EmergingProperties
from api.schemas.hotspots import HotspotFeature as Feature
from layers.supervision.orders import OrderSummary
from layers.views import mapdata, mapviews
from maps import records


def site(s: mapviews.Site) -> records.Site:
    """A site with its status, for the overview and the hotspot page."""
    return records.Site(code=s.code, name=s.name, layer=s.layer, layer_zh=s.layer_zh,
                        layer_en=s.layer_en, unit=s.unit, open_issues=s.open_issues,
                        overdue=s.overdue, last_inspection=s.last_inspection,
                        geometry=s.geometry)


def jurisdiction(j: mapdata.Jurisdiction) -> records.Jurisdiction:
    """A jurisdiction's outline with its names, for the overview and the unit page."""
    return records.Jurisdiction(code=j.code, name=j.name, level=j.level, unit=j.unit,
                                geometry=j.geometry)


def unit_issue(i: mapviews.UnitIssue) -> records.UnitIssue:
    """A unit's open issue, for the unit page."""
    return records.UnitIssue(public_id=i.public_id, category_zh=i.category_zh,
                             category_en=i.category_en, status=i.status,
                             reported_at=i.reported_at, deadline=i.deadline,
                             lead_unit=i.lead_unit, site=i.site,
                             traffic_light=i.traffic_light, overdue=i.overdue, lon=i.lon,
                             lat=i.lat)


def order_counts(o: OrderSummary) -> records.OrderCounts:
    """A supervision order as the unit page lists it."""
    return records.OrderCounts(code=o.code, still_open=o.still_open, overdue_now=o.overdue_now)


def overview_payload(cells: dict[int, mapviews.CellCounts],
                     communities: list[mapviews.CommunityMeasure]) -> dict[str, Any]:
    """The overview's aggregates as JSON: columns per H3 resolution and per community."""
    return {
        "cells": {str(res): {"cell": c.cell, "issues": c.issues, "open": c.open,
                             "overdue": c.overdue} for res, c in cells.items()},
        "communities": {"code": [m.code for m in communities],
                        "issues": [m.issues for m in communities],
                        "open": [m.open for m in communities],
                        "points_lost": [m.points_lost for m in communities]}}


def overview_records(payload: dict[str, Any]
                     ) -> tuple[dict[int, records.CellCounts], list[records.CommunityMeasure]]:
    """What :func:`overview_payload` wrote, as the overview's records."""
    cells = {int(res): records.CellCounts(cell=c["cell"], issues=c["issues"], open=c["open"],
                                          overdue=c["overdue"])
             for res, c in payload["cells"].items()}
    m = payload["communities"]
    communities = [records.CommunityMeasure(code=code, issues=issues, open=n_open,
                                            points_lost=lost)
                   for code, issues, n_open, lost in zip(m["code"], m["issues"], m["open"],
                                                         m["points_lost"], strict=True)]
    return cells, communities


def _geometry(feature: Feature) -> dict[str, Any]:
    geometry = feature.geometry
    if isinstance(geometry, dict):
        return geometry
    dumped: dict[str, Any] = geometry.model_dump(mode="json", exclude_none=True)
    return dumped


def gi_cells(payload: list[dict[str, Any]]) -> list[records.GiCell]:
    """The Gi* cells of a stored payload of :func:`api.services.hotspot_features.cell_features`,
    read as the dicts it is: the page draws every study cell, and validating 1,300 of them
    back into models took 0.1 s of a cold hotspot page (profiled 2026-11-30). The payload was
    made from the models, and its format is part of its key (hotspot_results.FORMAT)."""
    return [records.GiCell(geometry=f["geometry"], count=int(p["count"]), z=float(p["z"]),
                           gi_bin=int(p["gi_bin"]))
            for f in payload if "gi_bin" in (p := f["properties"])]


def hot_areas(features: list[Feature]) -> list[records.HotArea]:
    """The hot areas of :func:`api.services.hotspot_features.area_features`."""
    return [records.HotArea(
        geometry=_geometry(f), issue_count=p.issue_count, peak_z=p.peak_z,
        area_km2=p.area_km2, share_text=p.share_text,
        lead_unit=p.lead_unit.name if p.lead_unit else None,
        territorial_unit=p.territorial_unit.name if p.territorial_unit else None,
        functional_unit=p.functional_unit.name if p.functional_unit else None)
        for f in features if isinstance(p := f.properties, AreaProperties)]


def emerging_cells(features: list[Feature]) -> list[records.EmergingCell]:
    """The emerging-hotspot cells of :func:`api.services.hotspot_features.emerging_features`."""
    return [records.EmergingCell(geometry=_geometry(f), category=p.category,
                                 rebounding=p.rebounding, hot_steps=p.hot_steps,
                                 steps=p.steps)
            for f in features if isinstance(p := f.properties, EmergingProperties)]
