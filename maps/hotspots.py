"""The hotspot map for a period: Gi* cells by class, hot areas with their jurisdiction split
and lead unit, emerging-hotspot categories and chronic sites, over the jurisdictions' outlines
with their names, so that whose ground each hot area is on shows without a click."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

import folium
import geopandas as gpd
import shapely
from shapely.geometry import shape

from maps.jurisdictions import add_jurisdictions
from maps.labels import labels
from maps.page import (
    AsOf,
    PageOptions,
    PeriodMenu,
    add_legend,
    add_period_form,
    add_title,
    basemaps,
    escape_frame,
    finish,
    layer_control,
    new_map,
)
from maps.records import (
    ChronicSite,
    EmergingCell,
    GiCell,
    HotArea,
    Jurisdiction,
    Site,
    frame,
    geo_frame,
)

# Gi* bins (confidence 99/95/90 %), the ArcGIS colours people know.
BIN_COLOURS = {3: "#d62f27", 2: "#ed7551", 1: "#fab984", 0: "#eeeeee",
               -1: "#c0ccbe", -2: "#849eba", -3: "#4575b5"}
BIN_LABELS = {3: "hot99", 2: "hot95", 1: "hot90", 0: "not_significant",
              -1: "cold90", -2: "cold95", -3: "cold99"}
EMERGING_COLOURS = {"new": "#67000d", "consecutive": "#a50f15", "intensifying": "#cb181d",
                    "persistent": "#ef3b2c", "diminishing": "#fb6a4a",
                    "sporadic": "#fc9272", "oscillating": "#fcbba1", "historical": "#a6a6a6"}


@dataclass
class HotspotData:
    """Gi* cells, hot areas, emerging-hotspot cells and the chronic ranking of a period, with
    the sites to draw chronic ones and the jurisdictions to draw under them."""

    cells: Sequence[GiCell]
    areas: Sequence[HotArea]
    emerging: Sequence[EmergingCell]
    chronic: Sequence[ChronicSite]
    sites: Sequence[Site]
    as_of: AsOf | None = None  # when the analysis was computed
    jurisdictions: Sequence[Jurisdiction] = ()
    period: PeriodMenu = field(default_factory=PeriodMenu)  # shown, and the form's choices


def _collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


def _feature(geometry: Any, properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def build_hotspots(data: HotspotData, options: PageOptions) -> folium.Map:
    """Build the hotspot map."""
    t = labels(options.lang)
    framing = [j.geometry for j in data.jurisdictions] or [s.geometry for s in data.sites]
    bounds = gpd.GeoSeries(framing, crs=4326).total_bounds if framing else None
    if data.cells:
        bounds = gpd.GeoDataFrame.from_features(
            [_feature(c.geometry, {}) for c in data.cells], crs=4326).total_bounds
    fmap = new_map(bounds)
    basemaps(fmap, t, options)
    _cells(fmap, data.cells, t)
    _emerging(fmap, data.emerging, t)
    # Above the cells, which they let clicks through to; below the hot areas' popups.
    add_jurisdictions(fmap, data.jurisdictions, t, options.zone, interactive=False,
                      avoid=_hot(data.cells))
    _areas(fmap, data.areas, t)
    _chronic(fmap, data, t, options.zone)
    control = layer_control(fmap, options)
    add_title(fmap, t["hotspots_title"], data.period.text(t, data.as_of))
    add_period_form(fmap, t, data.period, options.lang)
    rows = [(BIN_COLOURS[b], t[BIN_LABELS[b]]) for b in (3, 2, 1, 0, -1, -2, -3)]
    rows += [(c, t["emerging"] + ": " + t[f"em_{k}"]) for k, c in EMERGING_COLOURS.items()]
    rows += [("#000000", t["chronic"])]
    add_legend(fmap, t["legend"], rows, [t["offline_note"]])
    return finish(fmap, control, bounds, t, options)


def _hot(cells: Sequence[GiCell]) -> shapely.Geometry | None:
    """The hot cells (any confidence) as one shape, for the labels to keep clear of."""
    hot = [shape(dict(c.geometry)) for c in cells if c.gi_bin > 0]
    return shapely.union_all(hot) if hot else None


def _cells(fmap: folium.Map, cells: Sequence[GiCell], t: dict[str, str]) -> None:
    group = folium.FeatureGroup(name=t["gi_cells"])
    if cells:
        features = [_feature(c.geometry, {"gi_bin": c.gi_bin, "count": c.count,
                                          "class": t[BIN_LABELS[c.gi_bin]], "z": round(c.z, 2)})
                    for c in cells]
        folium.GeoJson(
            _collection(features),
            style_function=lambda f: {
                "color": "#999", "weight": 0.3, "fillOpacity": 0.55 if f["properties"]["gi_bin"]
                else 0.08, "fillColor": BIN_COLOURS[int(f["properties"]["gi_bin"])]},
            tooltip=folium.GeoJsonTooltip(["class", "count", "z"],
                                          aliases=[t["legend"], t["issue_count"], "z"]),
        ).add_to(group)
    group.add_to(fmap)


def _emerging(fmap: folium.Map, cells: Sequence[EmergingCell], t: dict[str, str]) -> None:
    group = folium.FeatureGroup(name=t["emerging"], show=False)
    shown = [_feature(c.geometry, {
        "category": c.category, "hot_steps": c.hot_steps, "steps": c.steps,
        "label": t[f"em_{c.category}"] + (f' · {t["rebounding"]}' if c.rebounding else "")})
        for c in cells if c.category in EMERGING_COLOURS]
    if shown:
        folium.GeoJson(
            _collection(shown),
            style_function=lambda f: {"color": "#333", "weight": 0.5, "fillOpacity": 0.6,
                                      "fillColor": EMERGING_COLOURS[f["properties"]["category"]]},
            tooltip=folium.GeoJsonTooltip(["label", "hot_steps", "steps"], aliases=[
                t["emerging"], t["hot95"], "n"]),
        ).add_to(group)
    group.add_to(fmap)


def _areas(fmap: folium.Map, areas: Sequence[HotArea], t: dict[str, str]) -> None:
    group = folium.FeatureGroup(name=t["hot_areas"])
    if areas:
        rows = [_feature(a.geometry, {
            "issue_count": a.issue_count, "peak_z": round(a.peak_z, 2),
            "area_km2": round(a.area_km2, 3), "share": html.escape(a.share_text),
            "lead_unit": html.escape(a.lead_unit or ""),
            "territorial_unit": html.escape(a.territorial_unit or ""),
            "functional_unit": html.escape(a.functional_unit or "")}) for a in areas]
        fields = ["issue_count", "peak_z", "area_km2", "share", "lead_unit",
                  "territorial_unit", "functional_unit"]
        folium.GeoJson(
            _collection(rows),
            style_function=lambda _f: {"color": "#b10026", "weight": 3, "fillOpacity": 0.1,
                                       "fillColor": "#b10026"},
            popup=folium.GeoJsonPopup(fields, aliases=[t[k] if k != "issue_count" else
                                                       t["issue_total"] for k in fields]),
        ).add_to(group)
    group.add_to(fmap)


def _chronic(fmap: folium.Map, data: HotspotData, t: dict[str, str], zone: tzinfo) -> None:
    group = folium.FeatureGroup(name=t["chronic"])
    if data.chronic and data.sites:
        best = (frame(data.chronic, ChronicSite).dropna(subset=["code"])  # pandas joins nulls
                .sort_values("recurrences", ascending=False).drop_duplicates("code"))
        sites = geo_frame(data.sites, Site)[["code", "name", "geometry"]].merge(best, on="code")
        if len(sites):
            sites = escape_frame(sites, zone)
            sites["geometry"] = sites.geometry.representative_point()
            folium.GeoJson(
                sites.to_json(), marker=folium.CircleMarker(radius=8),
                style_function=lambda _f: {"color": "#000", "weight": 3, "fillColor": "#ffeb3b",
                                           "fillOpacity": 0.9},
                popup=folium.GeoJsonPopup(["name", "category", "recurrences"], aliases=[
                    t["site"], t["category"], t["recurrences"]]),
            ).add_to(group)
    group.add_to(fmap)
