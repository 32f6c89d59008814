"""The map of an import's preview: the lines as stored and as the file draws them, in two
colours, and the open issues that would move, each with "from unit -> to unit"; the units'
gains and losses in the legend. No database needed."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import folium
import shapely

from maps.labels import labels
from maps.page import (
    PageOptions,
    add_legend,
    add_title,
    basemaps,
    finish,
    layer_control,
    new_map,
)

OLD_COLOUR = "#2c3e50"  # the lines as stored: dark, solid
NEW_COLOUR = "#e67e22"  # the file's lines: orange, dashed
HANDED_OVER = "#c0392b"  # an issue whose lead unit changes (one unit loses, another gains)
SAME_UNIT = "#2980b9"  # an issue whose ground or site changes, its lead unit not


@dataclass(frozen=True)
class PreviewLine:
    """An outline (GeoJSON geometry, EPSG:4326) with its code and name."""

    code: str
    name: str
    geometry: Mapping[str, Any]


@dataclass(frozen=True)
class PreviewMove:
    """An open issue that would move: from and to which lead unit and ground (codes)."""

    public_id: str
    lon: float
    lat: float
    category: str
    from_unit: str | None
    to_unit: str | None
    from_ground: str | None
    to_ground: str | None
    points: float


@dataclass(frozen=True)
class UnitSwing:
    """How many issues and points a lead unit would gain and lose."""

    unit: str
    name: str
    gained: int
    lost: int
    points_gained: float
    points_lost: float


@dataclass(frozen=True)
class PreviewData:
    """What the page shows: the file, when, the counts, the lines and the moving issues."""

    source: str
    table: str
    created_at: datetime
    expires_at: datetime
    examined: int
    changed: int
    lead_changed: int
    points_moved: float
    units: Sequence[UnitSwing]
    old_lines: Sequence[PreviewLine]
    new_lines: Sequence[PreviewLine]
    moves: Sequence[PreviewMove]
    unit_names: Mapping[str, str]


def build_preview(data: PreviewData, options: PageOptions) -> folium.Map:
    """Build the preview's map page."""
    t = labels(options.lang)
    bounds = _bounds(data)
    fmap = new_map(bounds)
    basemaps(fmap, t, options)
    _lines(fmap, data.old_lines, t["pv_old_lines"], OLD_COLOUR, dashed=False)
    _lines(fmap, data.new_lines, t["pv_new_lines"], NEW_COLOUR, dashed=True)
    _moves(fmap, data, t)
    control = layer_control(fmap, options)
    local = data.created_at.astimezone(options.zone)
    add_title(fmap, f'{t["pv_title"]} · {data.source}',
              f'{t["pv_examined"]} {data.examined} · {t["pv_changed"]} {data.changed} · '
              f'{t["pv_lead_changed"]} {data.lead_changed} · {t["pv_points"]} '
              f'{data.points_moved:g} · {t["pv_made"]} {local:%Y-%m-%d %H:%M} · '
              f'{t["pv_nothing_stored"]}')
    notes = [f'{_unit(data, u.unit)}: +{u.gained} / −{u.lost} '
             f'({t["pv_points"]} +{u.points_gained:g} / −{u.points_lost:g})'
             for u in data.units[:15]]
    if len(data.moves) < data.changed:
        notes.append(t["pv_capped"].format(len(data.moves), data.changed))
    add_legend(fmap, t["legend"], [(OLD_COLOUR, t["pv_old_lines"]),
                                   (NEW_COLOUR, t["pv_new_lines"]),
                                   (HANDED_OVER, t["pv_handed_over"]),
                                   (SAME_UNIT, t["pv_same_unit"])], notes)
    return finish(fmap, control, bounds, t, options)


def _unit(data: PreviewData, code: str | None) -> str:
    if code is None:
        return "—"
    return data.unit_names.get(code, code)


def _bounds(data: PreviewData) -> list[float] | None:
    shapes = [shapely.geometry.shape(dict(x.geometry)) for x in [*data.old_lines, *data.new_lines]]
    shapes += [shapely.Point(m.lon, m.lat) for m in data.moves]
    if not shapes:
        return None
    return [float(b) for b in shapely.total_bounds(shapes)]


def _lines(fmap: folium.Map, lines: Sequence[PreviewLine], name: str, colour: str, *,
           dashed: bool) -> None:
    group = folium.FeatureGroup(name=name)
    if lines:
        collection = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": dict(x.geometry),
             "properties": {"code": html.escape(x.code), "name": html.escape(x.name)}}
            for x in lines]}
        style = {"color": colour, "weight": 3 if dashed else 2, "fillOpacity": 0.03,
                 **({"dashArray": "6 4"} if dashed else {})}
        # A point site is drawn as a ring (Leaflet's default pin is an image this page
        # does not carry).
        folium.GeoJson(collection, style_function=lambda _f, s=style: s,
                       marker=folium.CircleMarker(radius=9),
                       tooltip=folium.GeoJsonTooltip(["code", "name"], labels=False)
                       ).add_to(group)
    group.add_to(fmap)


def _moves(fmap: folium.Map, data: PreviewData, t: dict[str, str]) -> None:
    group = folium.FeatureGroup(name=t["pv_moves"])
    if data.moves:
        features = []
        for m in data.moves:
            handed = m.from_unit != m.to_unit
            features.append({
                "type": "Feature", "geometry": {"type": "Point", "coordinates": [m.lon, m.lat]},
                "properties": {
                    "id": html.escape(m.public_id), "category": html.escape(m.category),
                    "move": html.escape(f"{_unit(data, m.from_unit)} → {_unit(data, m.to_unit)}"),
                    "ground": html.escape(f"{m.from_ground or '—'} → {m.to_ground or '—'}"),
                    "points": f"{m.points:g}",
                    "colour": HANDED_OVER if handed else SAME_UNIT}})
        folium.GeoJson(
            {"type": "FeatureCollection", "features": features},
            marker=folium.CircleMarker(radius=6, fill=True),
            style_function=lambda f: {"color": f["properties"]["colour"], "weight": 1,
                                      "fillColor": f["properties"]["colour"],
                                      "fillOpacity": 0.85},
            popup=folium.GeoJsonPopup(["id", "category", "move", "ground", "points"],
                                      aliases=[t["id"], t["category"], t["pv_move"],
                                               t["pv_ground"], t["pv_points"]]),
        ).add_to(group)
    group.add_to(fmap)

