"""The jurisdictions' outlines (street, communities, grids) with their names as permanent
labels, as the overview and the hotspot page draw them.

A label sits where it can be read without covering what the page is about: a community's
name at the point of its ground farthest from its edges and from the cells to ``avoid``
(the hotspot page's hot cells), the street's name just inside its northernmost point.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

import folium
import shapely
from shapely.geometry.base import BaseGeometry
from shapely.ops import polylabel

from maps.page import escape_frame
from maps.records import Jurisdiction, geo_frame

LEVEL_STYLES = {
    "street": {"color": "#2c3e50", "weight": 3, "fillOpacity": 0.0},
    "community": {"color": "#34495e", "weight": 2, "fillOpacity": 0.03},
    "grid": {"color": "#7f8c8d", "weight": 1, "dashArray": "4 4", "fillOpacity": 0.0},
}
# Small dark text with a white halo: readable on any basemap and over coloured cells.
_LABEL_STYLE = ("position:absolute;white-space:nowrap;pointer-events:none;color:#1c2833;"
                "text-shadow:0 0 2px #fff,0 0 2px #fff,0 0 3px #fff,0 0 4px #fff;")
_LEVEL_LABEL = {
    "community": "font:12px sans-serif;transform:translate(-50%,-50%);",
    "street": "font:bold 13px sans-serif;transform:translate(-50%,2px);",
}


def add_jurisdictions(fmap: folium.Map, jurisdictions: Sequence[Jurisdiction],
                      t: dict[str, str], zone: tzinfo, *, interactive: bool = True,
                      avoid: shapely.Geometry | None = None) -> None:
    """One layer per level (grids hidden at first), communities and the street labelled.

    ``interactive``: the outlines have name tooltips and community popups (the overview);
    without, they are lines only and let clicks through to the layers beneath (the hotspot
    page's cells). Community labels keep clear of ``avoid`` where their ground allows.
    """
    frame = escape_frame(geo_frame(jurisdictions, Jurisdiction), zone)
    for level, style in LEVEL_STYLES.items():
        part = frame[frame["level"] == level]
        if part.empty:
            continue
        group = folium.FeatureGroup(name=t[level], show=level != "grid")
        shown = style if interactive else {**style, "fillOpacity": 0.0, "interactive": False}
        popup = folium.GeoJsonPopup(["name", "unit"], aliases=[t["name"], t["unit"]]) \
            if interactive and level != "street" else None
        folium.GeoJson(
            part[["code", "name", "unit", "geometry"]].to_json(),
            style_function=lambda _f, s=shown: s,
            tooltip=folium.GeoJsonTooltip(["name"], labels=False, sticky=False)
            if interactive else None,
            popup=popup,
        ).add_to(group)
        group.add_to(fmap)
        if level in _LEVEL_LABEL:
            for name, shape in zip(part["name"], part.geometry, strict=True):
                point = label_point(shape, avoid) if level == "community" else top_point(shape)
                _label(name, level, point).add_to(group)


def _label(escaped_name: str, level: str, point: shapely.Point) -> folium.Marker:
    markup = (f'<div class="sw-label sw-label-{level}" style="{_LABEL_STYLE}'
              f'{_LEVEL_LABEL[level]}">{escaped_name}</div>')
    return folium.Marker([point.y, point.x], icon=folium.DivIcon(html=markup, icon_size=(0, 0)),
                         interactive=False)


def label_point(shape: BaseGeometry, avoid: shapely.Geometry | None = None) -> shapely.Point:
    """Where a polygon's name reads best: the pole of inaccessibility (farthest from the
    edges) of its largest part left free by ``avoid``; inside ``shape`` always.

    >>> from shapely import box
    >>> label_point(box(0, 0, 4, 2), avoid=box(0, 0, 2, 2)).x > 2
    True
    """
    free = shape if avoid is None or shapely.is_empty(avoid) else shapely.difference(shape, avoid)
    polygons = [g for g in shapely.get_parts(free) if g.geom_type == "Polygon" and g.area > 0]
    if not polygons:  # all of it to avoid: the name still belongs inside its ground
        polygons = [g for g in shapely.get_parts(shape) if g.geom_type == "Polygon"]
    if not polygons:
        return shape.point_on_surface()
    largest = max(polygons, key=lambda g: g.area)
    minx, miny, maxx, maxy = largest.bounds
    point: shapely.Point = polylabel(largest, tolerance=max(maxx - minx, maxy - miny) / 200)
    return point


def top_point(shape: BaseGeometry) -> shapely.Point:
    """The middle of ``shape``'s top: its northernmost vertices (those within 2 % of its
    height of the top) averaged east-west (a street's name goes just inside its top edge).

    >>> from shapely import box
    >>> top_point(box(0, 0, 4, 3)).coords[0]
    (2.0, 3.0)
    """
    coords = shapely.get_coordinates(shape)
    top, bottom = coords[:, 1].max(), coords[:, 1].min()
    near = coords[coords[:, 1] >= top - 0.02 * (top - bottom)]
    return shapely.Point(float(near[:, 0].mean()), float(top))
