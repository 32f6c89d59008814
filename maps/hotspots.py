"""The hotspot map: Gi* cells by class, hot areas with their jurisdiction split and lead unit,
emerging-hotspot categories and chronic sites."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import folium
import geopandas as gpd
import pandas as pd

from maps.assets import fullscreen_control, use_local_assets
from maps.labels import labels
from maps.page import (
    AsOf,
    PageOptions,
    add_config,
    add_legend,
    add_title,
    basemaps,
    escape_frame,
    new_map,
    shift_lattice,
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
    """Hotspot features as GeoJSON dicts (api.services.hotspot_features) and the chronic ranking."""

    cells: list[dict[str, Any]]
    areas: list[dict[str, Any]]
    emerging: list[dict[str, Any]]
    chronic: pd.DataFrame  # code, name, layer, category, recurrences, issues, ...
    sites: gpd.GeoDataFrame  # code, name, geometry (to draw chronic sites)
    as_of: AsOf | None = None  # when the analysis was computed


def _collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


def build_hotspots(data: HotspotData, options: PageOptions | None = None) -> folium.Map:
    """Build the hotspot map."""
    options = options or PageOptions(tiles_url=None)
    t = labels(options.lang)
    bounds = data.sites.total_bounds if len(data.sites) else None
    if data.cells:
        bounds = gpd.GeoDataFrame.from_features(data.cells, crs=4326).total_bounds
    fmap = new_map(bounds)
    basemaps(fmap, t, options)
    _cells(fmap, data.cells, t)
    _emerging(fmap, data.emerging, t)
    _areas(fmap, data.areas, t)
    _chronic(fmap, data, t)
    fullscreen_control(options.static_url).add_to(fmap)
    control = folium.LayerControl(collapsed=False)
    control.add_to(fmap)
    add_title(fmap, t["hotspots_title"], data.as_of.text(t) if data.as_of else "")
    rows = [(BIN_COLOURS[b], t[BIN_LABELS[b]]) for b in (3, 2, 1, 0, -1, -2, -3)]
    rows += [(c, t["emerging"] + ": " + t[f"em_{k}"]) for k, c in EMERGING_COLOURS.items()]
    rows += [("#000000", t["chronic"])]
    add_legend(fmap, t["legend"], rows, [t["offline_note"]])
    add_config(fmap, {"t": t, "control": control.get_name(),
                      "shift": shift_lattice(bounds) if bounds is not None else None})
    return use_local_assets(fmap, options.static_url)


def _cells(fmap: folium.Map, cells: list[dict[str, Any]], t: dict[str, str]) -> None:
    group = folium.FeatureGroup(name=t["gi_cells"])
    if cells:
        for f in cells:
            p = f["properties"]
            p["class"] = t[BIN_LABELS[int(p["gi_bin"])]]
            p["z"] = round(float(p["z"]), 2)
        folium.GeoJson(
            _collection(cells),
            style_function=lambda f: {
                "color": "#999", "weight": 0.3, "fillOpacity": 0.55 if f["properties"]["gi_bin"]
                else 0.08, "fillColor": BIN_COLOURS[int(f["properties"]["gi_bin"])]},
            tooltip=folium.GeoJsonTooltip(["class", "count", "z"],
                                          aliases=[t["legend"], t["issue_count"], "z"]),
        ).add_to(group)
    group.add_to(fmap)


def _emerging(fmap: folium.Map, features: list[dict[str, Any]], t: dict[str, str]) -> None:
    group = folium.FeatureGroup(name=t["emerging"], show=False)
    shown = [f for f in features if f["properties"]["category"] in EMERGING_COLOURS]
    if shown:
        for f in shown:
            p = f["properties"]
            p["label"] = t[f'em_{p["category"]}'] + (f' · {t["rebounding"]}'
                                                       if p.get("rebounding") else "")
        folium.GeoJson(
            _collection(shown),
            style_function=lambda f: {"color": "#333", "weight": 0.5, "fillOpacity": 0.6,
                                      "fillColor": EMERGING_COLOURS[f["properties"]["category"]]},
            tooltip=folium.GeoJsonTooltip(["label", "hot_steps", "steps"], aliases=[
                t["emerging"], t["hot95"], "n"]),
        ).add_to(group)
    group.add_to(fmap)


def _unit_name(unit: dict[str, Any] | None) -> str:
    return html.escape(unit["name"]) if unit else ""


def _areas(fmap: folium.Map, areas: list[dict[str, Any]], t: dict[str, str]) -> None:
    group = folium.FeatureGroup(name=t["hot_areas"])
    if areas:
        rows = []
        for f in areas:
            p = f["properties"]
            rows.append({"type": "Feature", "geometry": f["geometry"], "properties": {
                "issue_count": p["issue_count"], "peak_z": round(p["peak_z"], 2),
                "area_km2": round(p["area_km2"], 3),
                "share": html.escape(p.get("share_text", "")),
                "lead_unit": _unit_name(p.get("lead_unit")),
                "territorial_unit": _unit_name(p.get("territorial_unit")),
                "functional_unit": _unit_name(p.get("functional_unit"))}})
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


def _chronic(fmap: folium.Map, data: HotspotData, t: dict[str, str]) -> None:
    group = folium.FeatureGroup(name=t["chronic"])
    if len(data.chronic) and len(data.sites):
        best = (data.chronic.sort_values("recurrences", ascending=False)
                .drop_duplicates("code")[["code", "category", "recurrences"]])
        sites = data.sites[["code", "name", "geometry"]].merge(best, on="code")
        if len(sites):
            sites = escape_frame(sites)
            sites["geometry"] = sites.geometry.representative_point()
            folium.GeoJson(
                sites.to_json(), marker=folium.CircleMarker(radius=8),
                style_function=lambda _f: {"color": "#000", "weight": 3, "fillColor": "#ffeb3b",
                                           "fillOpacity": 0.9},
                popup=folium.GeoJsonPopup(["name", "category", "recurrences"], aliases=[
                    t["site"], t["category"], t["recurrences"]]),
            ).add_to(group)
    group.add_to(fmap)
