"""The office's overview map: jurisdictions, site layers and issues on one folium map."""

from __future__ import annotations

from typing import Any

import folium
import geopandas as gpd
import pandas as pd

from maps.assets import fullscreen_control, use_local_assets

LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "文明城市创建 · 阵地与问题总览",
        "street": "街道", "community": "社区", "grid": "网格",
        "issues": "问题", "name": "名称", "unit": "责任单位", "open_issues": "未办结问题",
        "category": "类别", "status": "状态", "reported_at": "发现时间",
        "deadline": "整改期限", "lead_unit": "牵头单位", "id": "编号", "layer": "图层",
        "reported": "已发现", "assigned": "已交办", "rectified": "已整改",
        "verified": "已核查办结", "rejected": "不予受理", "duplicate": "重复",
        "overdue": "已超期",
    },
    "en": {
        "title": "Civilized city campaign · sites and issues",
        "street": "Street", "community": "Communities", "grid": "Grids",
        "issues": "Issues", "name": "Name", "unit": "Responsible unit",
        "open_issues": "Open issues", "category": "Category", "status": "Status",
        "reported_at": "Reported", "deadline": "Deadline", "lead_unit": "Lead unit",
        "id": "ID", "layer": "Layer",
        "reported": "Reported", "assigned": "Assigned", "rectified": "Rectified",
        "verified": "Verified (closed)", "rejected": "Rejected", "duplicate": "Duplicate",
        "overdue": "Overdue",
    },
}

STATUS_COLOURS = {
    "reported": "#f39c12", "assigned": "#e67e22", "rectified": "#3498db",
    "verified": "#27ae60", "rejected": "#95a5a6", "duplicate": "#95a5a6",
}
# Open issues take the deadline traffic light's colour; closed ones their status colour.
LIGHT_COLOURS = {"green": "#27ae60", "yellow": "#f1c40f", "red": "#c0392b"}
LAYER_STYLES = {
    "market": {"color": "#8e44ad", "fillColor": "#9b59b6"},
    "construction_site": {"color": "#d35400", "fillColor": "#e67e22"},
    "old_compound": {"color": "#16a085", "fillColor": "#1abc9c"},
}
LEVEL_STYLES = {
    "street": {"color": "#2c3e50", "weight": 3, "fillOpacity": 0.0},
    "community": {"color": "#34495e", "weight": 2, "fillOpacity": 0.03},
    "grid": {"color": "#7f8c8d", "weight": 1, "dashArray": "4 4", "fillOpacity": 0.0},
}


def _jsonable(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Timestamps as ISO text and missing values as empty strings, so GeoJSON can carry them."""
    out = frame.copy()
    for column in out.columns:
        if column == out.geometry.name:
            continue
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].dt.strftime("%Y-%m-%d %H:%M").fillna("")
        elif out[column].dtype == object:
            out[column] = out[column].map(lambda v: "" if v is None else str(v))
    return out


def build_overview(
    jurisdictions: gpd.GeoDataFrame,
    sites: gpd.GeoDataFrame,
    issues: gpd.GeoDataFrame,
    *,
    lang: str = "zh",
    static_url: str = "/static",
) -> folium.Map:
    """Build the overview map.

    Parameters
    ----------
    jurisdictions : GeoDataFrame with ``code, name, level, unit`` (EPSG:4326).
    sites : GeoDataFrame with ``name, layer, layer_zh, layer_en, unit, open_issues``.
    issues : GeoDataFrame of points with ``public_id, category_zh, category_en, status,
        reported_at, deadline, lead_unit, traffic_light`` (green|yellow|red or empty).
    lang : ``"zh"`` (default) or ``"en"``.
    static_url : where the vendored Leaflet is served (see ``maps.assets``).
    """
    t = LABELS["en" if lang == "en" else "zh"]
    bounds = (jurisdictions if len(jurisdictions) else sites).total_bounds
    fmap = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    folium.TileLayer("OpenStreetMap", name="OpenStreetMap").add_to(fmap)
    if len(jurisdictions) or len(sites):
        fmap.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    _add_jurisdictions(fmap, _jsonable(jurisdictions), t)
    _add_sites(fmap, _jsonable(sites), t, lang)
    _add_issues(fmap, _jsonable(issues), t, lang)
    fullscreen_control(static_url).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    title = f'<h3 id="sw-title" style="position:absolute;z-index:1000;left:50px;top:0;' \
            f'background:#fffc;padding:2px 8px">{t["title"]}</h3>'
    fmap.get_root().html.add_child(folium.Element(title))  # type: ignore[attr-defined]
    return use_local_assets(fmap, static_url)


def _add_jurisdictions(fmap: folium.Map, frame: gpd.GeoDataFrame, t: dict[str, str]) -> None:
    for level, style in LEVEL_STYLES.items():
        part = frame[frame["level"] == level]
        if part.empty:
            continue
        group = folium.FeatureGroup(name=t[level], show=level != "grid")
        folium.GeoJson(
            part[["code", "name", "unit", "geometry"]].to_json(),
            style_function=lambda _f, s=style: s,
            tooltip=folium.GeoJsonTooltip(["name", "unit"], aliases=[t["name"], t["unit"]]),
        ).add_to(group)
        group.add_to(fmap)


def _add_sites(fmap: folium.Map, frame: gpd.GeoDataFrame, t: dict[str, str], lang: str) -> None:
    layer_name = "layer_en" if lang == "en" else "layer_zh"
    for layer, part in frame.groupby("layer", sort=True):
        style = {"weight": 2, "fillOpacity": 0.35,
                 **LAYER_STYLES.get(str(layer), {"color": "#2980b9", "fillColor": "#3498db"})}
        group = folium.FeatureGroup(name=str(part[layer_name].iloc[0]))
        folium.GeoJson(
            part[["name", "unit", "open_issues", layer_name, "geometry"]].to_json(),
            style_function=lambda _f, s=style: s,
            popup=folium.GeoJsonPopup(
                ["name", layer_name, "unit", "open_issues"],
                aliases=[t["name"], t["layer"], t["unit"], t["open_issues"]]),
        ).add_to(group)
        group.add_to(fmap)


def _add_issues(fmap: folium.Map, frame: gpd.GeoDataFrame, t: dict[str, str], lang: str) -> None:
    if frame.empty:
        return
    category = "category_en" if lang == "en" else "category_zh"
    frame = frame.assign(
        status_label=frame["status"].map(t).fillna(frame["status"]),
        colour=[LIGHT_COLOURS.get(light) or STATUS_COLOURS.get(s, "#555")
                for s, light in zip(frame["status"], frame["traffic_light"], strict=True)],
    )
    group = folium.FeatureGroup(name=t["issues"])

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        colour = feature["properties"]["colour"]
        return {"color": colour, "fillColor": colour, "radius": 4, "weight": 1,
                "fillOpacity": 0.8}

    folium.GeoJson(
        frame[["public_id", category, "status_label", "reported_at", "deadline", "lead_unit",
               "colour", "geometry"]].to_json(),
        marker=folium.CircleMarker(),
        style_function=style,
        popup=folium.GeoJsonPopup(
            ["public_id", category, "status_label", "reported_at", "deadline", "lead_unit"],
            aliases=[t["id"], t["category"], t["status"], t["reported_at"], t["deadline"],
                     t["lead_unit"]]),
    ).add_to(group)
    group.add_to(fmap)
