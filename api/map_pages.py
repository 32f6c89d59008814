"""Map pages as HTML: read the layers (layers.mapviews, layers.hotspots), build (maps/).

Shared by the HTTP routes and ``sitewatch map``. Overview data are cached per data version
and period (the key is read before the data, as layers.hotspots explains), so a page is
rebuilt from memory until an issue or a layer changes.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import psycopg
from fastapi import Request

from api.hotspot_features import area_features, cell_features, emerging_features
from geo.assign import Assigner
from layers import hotspots, mapdata, mapviews, phases
from layers.errors import NotFound, ValidationFailed
from layers.hotspots import HotspotQuery, ResultCache
from maps.hotspots import HotspotData, build_hotspots
from maps.overview import OverviewData, build_overview
from maps.page import PageOptions
from maps.unit import UnitData, build_unit


def parse_period(conn: psycopg.Connection[Any], phase: str | None, year: int | None,
                 since: str | None, until: str | None) -> mapviews.MapPeriod:
    """The period from query parameters; empty values (a form's blanks) mean "not given"."""
    if phase and ":" in phase:  # the page's own form sends code:year
        phase, _, year_text = phase.partition(":")
        if not year_text.isdigit():
            raise ValidationFailed("阶段格式应为 代码:年份 / phase must be code:year")
        year = int(year_text)

    def day(text: str | None) -> date | None:
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValidationFailed(f"无法识别的日期 / not a date: {text!r}") from None

    return mapviews.period(conn, phase=phase or None, year=year, since=day(since),
                           until=day(until))


def tile_centre(z: int, x: int, y: int) -> tuple[float, float]:
    """WGS84 lon/lat of the centre of web-mercator tile z/x/y."""
    n = 2.0 ** z
    lon = (x + 0.5) / n * 360.0 - 180.0
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 0.5) / n))))
    return lon, lat


def _tile_query(p: mapviews.MapPeriod) -> str:
    return "&".join(f"{k}={v}" for k, v in p.query().items())


def overview_data(conn: psycopg.Connection[Any], cache: ResultCache, p: mapviews.MapPeriod,
                  lang: str) -> OverviewData:
    """Everything the overview shows for period ``p``, from the cache when nothing changed."""
    # Only the aggregates over the issues are cached: names, units and inspection visits
    # change without moving the data version, and reading them costs milliseconds.
    key = (hotspots.data_version(conn), "map-overview", p.since, p.until)

    def compute() -> dict[str, Any]:
        return {"cells": mapviews.issue_cells(conn, p),
                "communities": mapviews.community_measures(conn, p)}

    found = {**cache.get(key, compute),
             "jurisdictions": mapdata.jurisdictions(conn),
             "sites": mapviews.sites(conn),
             "categories": conn.execute("SELECT code, name_zh, name_en FROM category"
                                        ).fetchall(),
             "phases": phases.list_phases(conn)}
    en = lang == "en"
    selection = {**p.query()}
    if p.phase is not None:
        selection = {"phase": f"{p.phase.code}:{p.phase.year}"}
    label = ""
    if p.phase is not None:
        label = f"{p.phase.year} {p.phase.name_en if en else p.phase.name_zh}"
    elif p.since or p.until:
        q = p.query()
        label = f'{q.get("since", "…")} – {q.get("until", "…")}'
    return OverviewData(
        jurisdictions=found["jurisdictions"], sites=found["sites"], cells=found["cells"],
        communities=found["communities"],
        categories={c: (en_name if en else zh) for c, zh, en_name in found["categories"]},
        phases=[(f"{ph.code}:{ph.year}", f"{ph.year} {ph.name_en if en else ph.name_zh}")
                for ph in found["phases"]],
        selection=selection, period_label=label, tile_query=_tile_query(p))


def overview(conn: psycopg.Connection[Any], cache: ResultCache, p: mapviews.MapPeriod, *,
             lang: str = "zh", measure: str = "points_lost", tianditu_key: str = "",
             options: PageOptions | None = None) -> str:
    """The overview page's HTML."""
    options = options or PageOptions(lang=lang, tianditu_key=tianditu_key)
    fmap = build_overview(overview_data(conn, cache, p, lang), options, measure=measure)
    return str(fmap.get_root().render())


def hotspot_data(conn: psycopg.Connection[Any], assigner: Assigner, cache: ResultCache
                 ) -> HotspotData:
    """Gi* cells, hot areas, emerging categories and chronic sites, with the REST routes'
    cache keys (api/routes/hotspots.py defaults), so either warms the other."""
    version = hotspots.data_version(conn)
    query = HotspotQuery()

    def cells() -> Any:
        return cell_features(hotspots.hotspots(conn, assigner, query).cells)

    def areas() -> Any:
        result = hotspots.hotspots(conn, assigner, query)
        jurisdictions, units = hotspots.names(conn)
        return area_features(result.areas, jurisdictions, units)

    def emerging() -> Any:
        try:
            found = hotspots.emerging(conn, assigner, query)
        except ValidationFailed:  # too short a record for a trend: nothing to show
            return []
        return emerging_features(found)

    def chronic() -> Any:
        return hotspots.chronic(conn, query, window_days=14.0)

    def dump(features: Any) -> list[dict[str, Any]]:
        return [f.model_dump(mode="json", exclude_none=True) for f in features]

    sites = mapviews.sites(conn)
    chronic_rows = cache.get((version, "map-chronic", query, 14.0), chronic)
    return HotspotData(
        cells=dump(cache.get((version, "hotspots", "h3", "cells", query, 25.0, 5), cells)),
        areas=dump(cache.get((version, "hotspots", "h3", "areas", query, 25.0, 5), areas)),
        emerging=dump(cache.get((version, "emerging", query, 10.0, 1, False), emerging)),
        chronic=chronic_rows, sites=sites)


def hotspots_page(conn: psycopg.Connection[Any], assigner: Assigner, cache: ResultCache, *,
                  lang: str = "zh", tianditu_key: str = "",
                  options: PageOptions | None = None) -> str:
    """The hotspot page's HTML."""
    options = options or PageOptions(lang=lang, tianditu_key=tianditu_key, tiles_url=None)
    return str(build_hotspots(hotspot_data(conn, assigner, cache), options)
               .get_root().render())


def hotspots_for_request(conn: psycopg.Connection[Any], request: Request, *, lang: str,
             tianditu_key: str) -> str:
    """The hotspot page for a request (the app's assigner and hotspot caches)."""
    assigner = request.app.state.assigner_cache.get(conn)
    return hotspots_page(conn, assigner, request.app.state.hotspot_cache, lang=lang,
                         tianditu_key=tianditu_key)


def unit_data(conn: psycopg.Connection[Any], code: str) -> UnitData:
    """A unit's ground, open issues and name; NotFound for an unknown unit."""
    row = mapviews.unit_row(conn, code)
    if row is None:
        raise NotFound(f"没有单位 {code!r} / no unit {code!r}")
    juris = mapdata.jurisdictions(conn)
    ground = juris[juris["unit"] == row["name"]]
    return UnitData(code=row["code"], name=row["name"], ground=ground,
                    issues=mapviews.unit_issues(conn, code), district=juris)


def unit(conn: psycopg.Connection[Any], code: str, *, lang: str = "zh",
         tianditu_key: str = "", orders: list[dict[str, Any]] | None = None,
         options: PageOptions | None = None) -> str:
    """The unit page's HTML; ``orders`` embedded only by the CLI (see docs/access.md)."""
    options = options or PageOptions(lang=lang, tianditu_key=tianditu_key, tiles_url=None)
    data = unit_data(conn, code)
    data.orders = orders
    return str(build_unit(data, options).get_root().render())

