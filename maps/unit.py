"""One unit's work map: its ground, its open and overdue issues, its supervision orders;
laid out for a phone (the legend and orders fold under the map on narrow screens)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import folium
import geopandas as gpd
import pandas as pd

from maps.labels import labels
from maps.page import (
    LIGHT_COLOURS,
    STATUS_COLOURS,
    PageOptions,
    add_html,
    add_legend,
    add_title,
    basemaps,
    escape_frame,
    finish,
    layer_control,
    new_map,
)
from maps.records import Jurisdiction, OrderCounts, UnitIssue, frame, geo_frame


@dataclass
class UnitData:
    """A unit and what it must act on (public fields; orders only when the caller may)."""

    code: str
    name: str
    ground: Sequence[Jurisdiction]  # the jurisdictions the unit owns
    issues: Sequence[UnitIssue]
    district: Sequence[Jurisdiction]  # every one, to frame the map when it owns none
    orders: Sequence[OrderCounts] | None = None  # embedded by the CLI only


def build_unit(data: UnitData, options: PageOptions) -> folium.Map:
    """Build the unit's map page."""
    t = labels(options.lang)
    owned = geo_frame(data.ground, Jurisdiction)
    framing = owned if len(owned) else geo_frame(data.district, Jurisdiction)
    bounds = framing.total_bounds if len(framing) else None
    if data.issues and not data.ground:
        lons, lats = [i.lon for i in data.issues], [i.lat for i in data.issues]
        bounds = [min(lons), min(lats), max(lons), max(lats)]
    fmap = new_map(bounds)
    add_html(fmap, '<meta name="viewport" content="width=device-width, initial-scale=1">',
             to="header")
    basemaps(fmap, t, options)
    ground = folium.FeatureGroup(name=t["ground"])
    if len(owned):
        outline = escape_frame(owned[["code", "name", "geometry"]], options.zone)
        folium.GeoJson(outline.to_json(),
                       style_function=lambda _f: {"color": "#2c3e50", "weight": 2,
                                                  "fillOpacity": 0.05},
                       tooltip=folium.GeoJsonTooltip(["name"], labels=False)).add_to(ground)
    ground.add_to(fmap)
    issues = escape_frame(frame(data.issues, UnitIssue), options.zone)
    overdue = pd.Series([bool(i.overdue) for i in data.issues], dtype=bool)
    _issues(fmap, issues[~overdue.to_numpy()], t["unit_open"], t, options.lang)
    _issues(fmap, issues[overdue.to_numpy()], t["unit_overdue"], t, options.lang)
    control = layer_control(fmap, options, collapsed=True)
    add_title(fmap, f'{t["unit_title"]} · {data.name}',
              f'{t["unit_open"]} {len(data.issues)} · {t["unit_overdue"]} '
              f'{int(overdue.sum())}')
    add_legend(fmap, t["legend"], [(LIGHT_COLOURS["green"], t["light_green"]),
                                   (LIGHT_COLOURS["yellow"], t["light_yellow"]),
                                   (LIGHT_COLOURS["red"], t["light_red"])])
    _orders(fmap, data, t)
    return finish(fmap, control, bounds, t, options, unit=data.code)


def _issues(fmap: folium.Map, frame: pd.DataFrame, name: str, t: dict[str, str],
            lang: str) -> None:
    group = folium.FeatureGroup(name=name)
    if len(frame):
        category = "category_en" if lang == "en" else "category_zh"
        points = gpd.GeoDataFrame(
            frame.assign(
                status_label=frame["status"].map(lambda s: t.get(s, s)),
                colour=[LIGHT_COLOURS.get(light) or STATUS_COLOURS.get(status, "#555")
                        for status, light in zip(frame["status"], frame["traffic_light"],
                                                 strict=True)]),
            geometry=gpd.points_from_xy(frame["lon"].astype(float), frame["lat"].astype(float)),
            crs=4326)
        fields = ["public_id", category, "status_label", "deadline", "site", "lead_unit"]
        folium.GeoJson(
            points[[*fields, "colour", "geometry"]].to_json(),
            marker=folium.CircleMarker(radius=7),
            style_function=lambda f: {"color": f["properties"]["colour"], "weight": 1,
                                      "fillColor": f["properties"]["colour"],
                                      "fillOpacity": 0.85},
            popup=folium.GeoJsonPopup(fields, aliases=[t["id"], t["category"], t["status"],
                                                       t["deadline"], t["site"],
                                                       t["lead_unit"]]),
        ).add_to(group)
    group.add_to(fmap)


def _orders(fmap: folium.Map, data: UnitData, t: dict[str, str]) -> None:
    """The orders box: filled here when the CLI embeds them, else by sitewatch.js with the
    token the user pasted (the page itself is public; orders are not)."""
    style = ("position:absolute;z-index:1000;left:10px;bottom:24px;background:#fffe;"
             "padding:6px 8px;border-radius:4px;font:12px sans-serif;"
             "max-width:min(320px, calc(100% - 40px));max-height:30vh;overflow:auto")
    if data.orders is None:
        box = f'<div id="sw-orders" style="{style}"></div>'
    else:
        items = "".join(
            f'<div class="sw-order">{html.escape(o.code)} · {t["still_open"]} '
            f'{o.still_open} · {t["overdue_now"]} {o.overdue_now}</div>'
            for o in data.orders) or html.escape(t["orders_none"])
        box = (f'<div id="sw-orders-static" style="{style}"><b>{html.escape(t["orders"])}</b>'
               f'{items}</div>')
    add_html(fmap, box)
