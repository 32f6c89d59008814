"""The district map (区级街道排名图): the streets as a choropleth of their ranking on one measure
(points lost by default; the on-time closure rate and the rework rate as the other layers),
each street's rank and figures in its tooltip and popup, with a link to its own overview.

Public fields only: street names, counts, rates and ranks (layers.supervision.street_ranking).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args
from urllib.parse import urlencode

import branca.colormap as cm
import folium
import geopandas as gpd
import pandas as pd
from shapely.geometry.base import BaseGeometry

from maps.jurisdictions import add_jurisdictions
from maps.labels import labels
from maps.page import (
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
from maps.records import Jurisdiction, geo_frame

Measure = Literal["points_lost", "on_time_rate", "rework_rate"]
MEASURES: tuple[Measure, ...] = get_args(Measure)
RANK_FIELDS: dict[Measure, str] = {"points_lost": "points_lost_rank",
                                   "on_time_rate": "on_time_rank",
                                   "rework_rate": "rework_rank"}
# Darker is worse on every layer: more points lost, fewer closed on time, more rework.
_LOW_IS_WORSE = {"on_time_rate"}
_COLOURS = ["#fff5f0", "#fb6a4a", "#67000d"]
NO_RATE_COLOUR = "#bdc3c7"


@dataclass(frozen=True)
class StreetFigures:
    """One street's outline and its standing on the three measures."""

    code: str
    name: str
    name_en: str | None
    geometry: BaseGeometry
    issues: int
    points_lost: float
    on_time_rate: float | None
    rework_rate: float | None
    points_lost_rank: int | None
    on_time_rank: int | None
    rework_rank: int | None


@dataclass
class DistrictData:
    """What the district map shows: the streets and the period they are ranked over."""

    streets: Sequence[StreetFigures]
    period: PeriodMenu = field(default_factory=PeriodMenu)
    overview_url: str = "/maps/overview"  # each street's own map: ?street=CODE


def build_district(data: DistrictData, options: PageOptions,
                   measure: Measure = "points_lost") -> folium.Map:
    """Build the district map: one choropleth layer per measure, ``measure``'s shown."""
    t = labels(options.lang)
    shapes = geo_frame(data.streets, StreetFigures)
    bounds = shapes.total_bounds if len(shapes) else None
    fmap = new_map(bounds)
    basemaps(fmap, t, options)
    streets = _with_texts(escape_frame(shapes, options.zone), shapes, t, data, options.lang)
    for m in MEASURES:
        _add_measure(fmap, streets, t, m, shown=m == measure)
    # The streets' names on the map, outlines that let clicks through to the ranking beneath.
    add_jurisdictions(fmap, [Jurisdiction(s.code, s.name, "street", None, s.geometry)
                             for s in data.streets], t, options.zone, interactive=False)
    control = layer_control(fmap, options)
    add_title(fmap, t["district_title"], data.period.text(t))
    add_period_form(fmap, t, data.period, options.lang, extra=_measure_field(t, measure))
    add_legend(fmap, t["legend"], [(_COLOURS[0], t["better"]), (_COLOURS[-1], t["worse"]),
                                   (NO_RATE_COLOUR, t["too_few_cases"])],
               [t["district_note"]])
    return finish(fmap, control, bounds, t, options, streets=len(shapes))


def _text(measure: str, value: float | None) -> str:
    if value is None or pd.isna(value):
        return "—"
    return f"{value:.1%}" if measure != "points_lost" else f"{value:.1f}"


def _rank(rank: float | None, total: int) -> str:
    return "—" if rank is None or pd.isna(rank) else f"{int(rank)} / {total}"


def _with_texts(escaped: gpd.GeoDataFrame, raw: gpd.GeoDataFrame, t: dict[str, str],
                data: DistrictData, lang: str) -> gpd.GeoDataFrame:
    """The popup's and tooltip's texts (each measure with its rank), each measure's colour
    and the overview link."""
    total = len(raw)
    out = escaped.assign(name_en=escaped["name_en"].replace("", "—"))
    for m in MEASURES:
        # From the numbers, not their escaped text (a rate no street has is "" there).
        out[f"{m}_colour"] = _colour(raw, m)
        out[f"{m}_text"] = [_text(m, v) for v in raw[m]]
        out[f"{m}_rank_text"] = [_rank(r, total) for r in raw[RANK_FIELDS[m]]]
    links = []
    for code in raw["code"]:
        # The street's overview for the same period the ranking was read over.
        query = {"street": code, "lang": lang, **data.period.selection}
        url = f"{data.overview_url}?{urlencode(query)}"
        links.append(f'<a href="{html.escape(url)}">{html.escape(t["street_overview"])}</a>')
    out["link"] = links
    return out


def _colour(frame: gpd.GeoDataFrame, measure: str) -> list[str]:
    values = frame[measure].astype(float)
    present = values.dropna()
    if present.empty:
        return [NO_RATE_COLOUR] * len(frame)
    low, high = float(present.min()), float(present.max())
    if high <= low:
        high = low + 1e-9
    colours = _COLOURS[::-1] if measure in _LOW_IS_WORSE else _COLOURS
    scale = cm.LinearColormap(colours, vmin=low, vmax=high)
    return [NO_RATE_COLOUR if pd.isna(v) else str(scale(float(v))) for v in values]


def _add_measure(fmap: folium.Map, streets: gpd.GeoDataFrame, t: dict[str, str],
                 measure: Measure, *, shown: bool) -> None:
    if streets.empty:
        return
    frame = streets.assign(colour=streets[f"{measure}_colour"],
                           value=streets[f"{measure}_text"],
                           rank=streets[f"{measure}_rank_text"])
    columns = ["code", "name", "name_en", "issues", "value", "rank", "colour", "link",
               *(f"{m}_{k}" for m in MEASURES for k in ("text", "rank_text"))]
    group = folium.FeatureGroup(name=f'{t["district_layer"]}: {t[measure]}', show=shown)
    folium.GeoJson(
        frame[[*columns, "geometry"]].to_json(),
        style_function=lambda f: {"color": "#2c3e50", "weight": 2, "fillOpacity": 0.65,
                                  "fillColor": f["properties"]["colour"]},
        highlight_function=lambda _f: {"weight": 4},
        tooltip=folium.GeoJsonTooltip(["name", "name_en", "value", "rank"], aliases=[
            t["street"], "", t[measure], t["rank"]]),
        popup=folium.GeoJsonPopup(
            ["name", "name_en", "issues", "points_lost_text", "points_lost_rank_text",
             "on_time_rate_text", "on_time_rate_rank_text", "rework_rate_text",
             "rework_rate_rank_text", "link"],
            aliases=[t["street"], "", t["issue_count"], t["points_lost"], t["rank"],
                     t["on_time_rate"], t["rank"], t["rework_rate"], t["rank"], ""]),
    ).add_to(group)
    group.add_to(fmap)


def _measure_field(t: dict[str, str], measure: str) -> str:
    """The period form's choice of the measure shown first."""
    options = "".join(
        f'<option value="{m}"{" selected" if m == measure else ""}>{html.escape(t[m])}</option>'
        for m in MEASURES)
    return (f' <label>{html.escape(t["measure"])} <select name="measure">{options}</select>'
            '</label>')
