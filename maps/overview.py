"""The office's overview map: jurisdictions, site layers, issues (as H3 counts, a heat layer
and vector tiles), a community choropleth, search and a period filter."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import branca.colormap as cm
import folium
import geopandas as gpd
import h3
import pandas as pd
from folium.plugins import HeatMap, Search, VectorGridProtobuf

from maps.jurisdictions import add_jurisdictions
from maps.labels import labels
from maps.page import (
    LIGHT_COLOURS,
    STATUS_COLOURS,
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
from maps.records import CellCounts, CommunityMeasure, Jurisdiction, Site, frame, geo_frame

LAYER_STYLES: dict[str, dict[str, str | None]] = {
    "market": {"color": "#8e44ad", "fillColor": "#9b59b6", "dashArray": None},
    "construction_site": {"color": "#d35400", "fillColor": "#e67e22", "dashArray": "6 3"},
    "old_compound": {"color": "#16a085", "fillColor": "#1abc9c", "dashArray": "2 3"},
}
CELL_COLOURS = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"]


@dataclass
class OverviewData:
    """What the overview shows; frames in EPSG:4326, public fields only."""

    jurisdictions: Sequence[Jurisdiction]
    sites: Sequence[Site]
    cells: dict[int, CellCounts]  # by H3 resolution
    communities: Sequence[CommunityMeasure]  # for the period
    categories: dict[str, str] = field(default_factory=dict)  # code -> name in the language
    period: PeriodMenu = field(default_factory=PeriodMenu)  # shown, and the form's choices
    tile_query: str = ""  # query string the vector tiles take (the period)
    as_of: AsOf | None = None  # when the cells and community measures were computed
    street: tuple[str, str] | None = None  # (code, name) of the one street shown, if focused


def build_overview(data: OverviewData, options: PageOptions,
                   measure: str = "points_lost") -> folium.Map:
    """Build the overview map (see :class:`OverviewData`); ``measure`` is ``points_lost``
    or ``open`` for the community choropleth."""
    t = labels(options.lang)
    sites = geo_frame(data.sites, Site)
    shapes = geo_frame(data.jurisdictions, Jurisdiction)
    framing = shapes if len(shapes) else sites
    bounds = framing.total_bounds if len(framing) else None
    fmap = new_map(bounds)
    basemaps(fmap, t, options)
    juris = escape_frame(shapes, options.zone)
    _add_choropleth(fmap, juris, frame(data.communities, CommunityMeasure), t, measure)
    add_jurisdictions(fmap, data.jurisdictions, t, options.zone)
    cell_layers = _add_cells(fmap, data.cells, t)
    tiles = _add_issue_tiles(fmap, t, options, data.tile_query)
    _add_sites(fmap, escape_frame(sites, options.zone), t, options.lang)
    _add_search(fmap, juris, escape_frame(sites, options.zone), t)
    control = layer_control(fmap, options)
    subtitle = data.period.text(t, data.as_of)
    extra = _measure_field(t, measure)
    if data.street is not None:
        code, name = data.street
        subtitle = f"{name} · {subtitle}"
        # The period form keeps the page on its street.
        extra += f'<input type="hidden" name="street" value="{html.escape(code)}">'
    add_title(fmap, t["title"], subtitle)
    add_period_form(fmap, t, data.period, options.lang, extra=extra)
    rows = [(LIGHT_COLOURS["green"], t["light_green"]), (LIGHT_COLOURS["yellow"],
             t["light_yellow"]), (LIGHT_COLOURS["red"], t["light_red"]),
            (STATUS_COLOURS["verified"], t["closed"])]
    rows += [(str(LAYER_STYLES[k]["fillColor"]), t["layer"] + ": " + str(name))
             for k, name in _layer_names(sites, options.lang).items() if k in LAYER_STYLES]
    rows += [(CELL_COLOURS[0], t["cells"] + " ↓"), (CELL_COLOURS[-1], t["cells"] + " ↑")]
    notes = [t["tiles_note"] if options.tiles_url else "", t["offline_note"]]
    add_legend(fmap, t["legend"], rows, [n for n in notes if n])
    return finish(fmap, control, bounds, t, options, categories=data.categories,
                  cells={"group": cell_layers[0], "layers": cell_layers[1]}, tiles=tiles,
                  counts={str(r): len(c.cell) for r, c in data.cells.items()})


def _measure_field(t: dict[str, str], measure: str) -> str:
    """The period form's choice of the choropleth's measure."""
    measures = "".join(
        f'<option value="{m}"{" selected" if m == measure else ""}>{html.escape(t[m])}</option>'
        for m in ("points_lost", "open"))
    return (f' <label>{html.escape(t["measure"])} <select name="measure">{measures}</select>'
            '</label>')


def _layer_names(sites: gpd.GeoDataFrame, lang: str) -> dict[str, str]:
    column = "layer_en" if lang == "en" else "layer_zh"
    if sites.empty:
        return {}
    return dict(zip(sites["layer"], sites[column], strict=True))


def _add_choropleth(fmap: folium.Map, juris: gpd.GeoDataFrame, measures: pd.DataFrame,
                    t: dict[str, str], measure: str) -> None:
    communities = juris[juris["level"] == "community"][["code", "name", "unit", "geometry"]]
    if communities.empty:
        return
    merged = communities.merge(measures, on="code", how="left").fillna(
        {"issues": 0, "open": 0, "points_lost": 0.0})
    merged["points_lost"] = merged["points_lost"].astype(float).round(1)
    top = max(float(merged[measure].max()), 1.0)
    scale = cm.LinearColormap(["#fff5f0", "#fb6a4a", "#67000d"], vmin=0, vmax=top)
    group = folium.FeatureGroup(name=f'{t["choropleth"]}: {t[measure]}', show=False)
    folium.GeoJson(
        merged.to_json(),
        style_function=lambda f: {"color": "#555", "weight": 1, "fillOpacity": 0.6,
                                  "fillColor": scale(float(f["properties"][measure]))},
        popup=folium.GeoJsonPopup(["name", "unit", "points_lost", "open", "issues"],
                                  aliases=[t["name"], t["unit"], t["points_lost"],
                                           t["open"], t["issue_count"]]),
    ).add_to(group)
    group.add_to(fmap)


def _cell_features(cells: CellCounts, top: float) -> dict[str, Any]:
    features = []
    for cell, issues, n_open, overdue in zip(cells.cell, cells.issues, cells.open,
                                             cells.overdue, strict=True):
        ring = [[round(lng, 6), round(lat, 6)] for lat, lng in h3.cell_to_boundary(cell)]
        level = min(int(len(CELL_COLOURS) * float(issues) / top), len(CELL_COLOURS) - 1)
        features.append({"type": "Feature", "geometry": {
            "type": "Polygon", "coordinates": [[*ring, ring[0]]]},
            "properties": {"n": int(issues), "open": int(n_open),
                           "overdue": int(overdue), "c": CELL_COLOURS[level]}})
    return {"type": "FeatureCollection", "features": features}


def _add_cells(fmap: folium.Map, cells: dict[int, CellCounts], t: dict[str, str]
               ) -> tuple[str, dict[str, str]]:
    """One group; its child per resolution is switched by zoom in sitewatch.js."""
    group = folium.FeatureGroup(name=t["cells"])
    names = {}
    for res, counts in sorted(cells.items()):
        top = max(float(max(counts.issues, default=1.0)), 1.0) + 1e-9
        layer = folium.GeoJson(
            _cell_features(counts, top),
            style_function=lambda f: {"color": f["properties"]["c"], "weight": 0.5,
                                      "fillColor": f["properties"]["c"], "fillOpacity": 0.45},
            # folium refuses a tooltip naming fields of no feature (an empty period).
            tooltip=folium.GeoJsonTooltip(["n", "open", "overdue"], aliases=[
                t["issue_count"], t["open_issues"], t["overdue_issues"]]) if counts.cell
            else None)
        layer.add_to(group)
        names[str(res)] = layer.get_name()
    group.add_to(fmap)
    finest = max(cells) if cells else None
    if finest is not None and cells[finest].cell:
        counts = cells[finest]
        top = float(max(counts.issues))
        points = [[*h3.cell_to_latlng(c), round(float(n) / top, 4)]
                  for c, n in zip(counts.cell, counts.issues, strict=True)]
        HeatMap(points, name=t["heat"], show=False, radius=18, blur=14,
                min_opacity=0.3).add_to(fmap)  # type: ignore[no-untyped-call]  # folium plugin untyped
    return group.get_name(), names


def _add_issue_tiles(fmap: folium.Map, t: dict[str, str], options: PageOptions,
                     query: str) -> str | None:
    if options.tiles_url is None:
        return None
    url = options.tiles_url + "?" + (query or "v=1")
    light = dict(LIGHT_COLOURS)
    # A JS object: VectorGrid styles are functions of each feature's properties.
    style = ("function(p){var c=" + _js(light) + "[p.light]||" + _js(STATUS_COLOURS)
             + "[p.status]||'#555';"
             "return {radius:4,weight:1,color:c,fillColor:c,fillOpacity:0.85,fill:true};}")
    opts = ("{vectorTileLayerStyles:{issues:" + style + "},interactive:true,minZoom:14,"
            "maxNativeZoom:20,maxZoom:22,rendererFactory:L.canvas.tile,swTileUrl:"
            + _js(url) + ",getFeatureId:function(f){return f.properties.id;}}")
    layer = VectorGridProtobuf(url, t["issues"], opts)
    layer.add_to(fmap)
    return str(layer.get_name())


def _js(value: Any) -> str:
    return json.dumps(value).replace("<", "\\u003c")


def _add_sites(fmap: folium.Map, frame: gpd.GeoDataFrame, t: dict[str, str], lang: str) -> None:
    if frame.empty:
        return
    layer_name = "layer_en" if lang == "en" else "layer_zh"
    frame = frame.assign(last_inspection=frame["last_inspection"].replace("", t["never"]))
    for layer, part in frame.groupby("layer", sort=True):
        style = {"weight": 2, "fillOpacity": 0.35,
                 **LAYER_STYLES.get(str(layer), {"color": "#2980b9", "fillColor": "#3498db"})}
        group = folium.FeatureGroup(name=str(part[layer_name].iloc[0]))
        folium.GeoJson(
            part[["code", "name", "unit", "open_issues", "overdue", "last_inspection",
                  layer_name, "geometry"]].to_json(),
            style_function=lambda _f, s=style: s,
            marker=folium.CircleMarker(radius=6),
            tooltip=folium.GeoJsonTooltip(["name"], labels=False),
            popup=folium.GeoJsonPopup(
                ["name", layer_name, "unit", "open_issues", "overdue", "last_inspection"],
                aliases=[t["name"], t["layer"], t["unit"], t["open_issues"],
                         t["overdue_issues"], t["last_inspection"]]),
        ).add_to(group)
        group.add_to(fmap)


def _add_search(fmap: folium.Map, juris: gpd.GeoDataFrame, sites: gpd.GeoDataFrame,
                t: dict[str, str]) -> None:
    """Search by site or community name over an invisible layer of their inner points."""
    parts = [juris[juris["level"] == "community"][["name", "geometry"]],
             sites[["name", "geometry"]]]
    present = [p for p in parts if len(p)]
    if not present:  # a new install: nothing to search yet
        return
    points = pd.concat(present, ignore_index=True)
    index = gpd.GeoDataFrame(points, geometry=gpd.GeoSeries(points.geometry).representative_point(),
                             crs=4326)
    layer = folium.GeoJson(index.to_json(), name="search", control=False,
                           marker=folium.CircleMarker(radius=1),
                           style_function=lambda _f: {"opacity": 0, "fillOpacity": 0,
                                                      "interactive": False})
    layer.add_to(fmap)
    Search(layer, search_label="name", geom_type="Point", search_zoom=16,  # type: ignore[no-untyped-call]  # untyped plugin
           placeholder=t["search"], collapsed=False, position="topleft",
           textErr=t["not_found"]).add_to(fmap)
