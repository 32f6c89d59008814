"""Map pages as HTML: read the layers (layers.views.mapviews, layers.analysis.hotspots), build
(maps/).

Shared by the HTTP routes and ``sitewatch map``. What takes seconds at a million issues (the
overview's aggregates per period, the hotspot analysis) comes from analysis snapshots
(layers/analysis/snapshots.py), so a page is built in well under a second; the page says when its
analysis was computed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from api.schemas.hotspots import HotspotFeature
from api.services.hotspot_features import area_features, cell_features, emerging_features
from geo.assign import Assigner
from geo.hotspots.budget import Limits
from layers.analysis import hotspots
from layers.analysis.budget import OverBudget
from layers.analysis.hotspots import HotspotQuery
from layers.analysis.snapshots import Snapshot, Snapshots, Spec, adhoc
from layers.assignment import load_assigner
from layers.catalog import phases
from layers.errors import NotFound, ValidationFailed
from layers.views import mapdata, mapviews
from maps.hotspots import HotspotData, build_hotspots
from maps.overview import OverviewData, build_overview
from maps.page import AsOf, PageOptions
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


CELL_TYPES = {"cell": str, "issues": np.int64, "open": np.int64, "overdue": np.int64}


def _tile_query(p: mapviews.MapPeriod) -> str:
    return "&".join(f"{k}={v}" for k, v in p.query().items())


Gate = Callable[[], AbstractContextManager[object]]


def is_landing(p: mapviews.MapPeriod) -> bool:
    """Whether ``p`` is a landing view (all time, or a phase of this campaign year): those
    snapshots are kept current by the refresher and never evicted."""
    if p.phase is not None:
        return p.phase.year == datetime.now(phases.DISTRICT_TZ).year
    return p.since is None and p.until is None


def data_period(conn: psycopg.Connection[Any], p: mapviews.MapPeriod) -> mapviews.MapPeriod:
    """``p`` as the whole days of it that hold issues, so that anyone's ad-hoc periods name
    at most (days of data)² snapshots and every period outside the data the same empty one.
    Landing views are returned as they are. Two index lookups."""
    if is_landing(p):
        return p
    row = conn.execute("SELECT min(reported_at), max(reported_at) FROM issue").fetchone()
    if row is None or row[0] is None:
        return mapviews.MapPeriod()  # no issues at all: every period shows the same nothing

    def day(t: datetime) -> datetime:
        return datetime.combine(t.astimezone(phases.DISTRICT_TZ).date(), time(),
                                phases.DISTRICT_TZ)

    first, after = day(row[0]), day(row[1]) + timedelta(days=1)
    since = max(p.since or first, first)
    until = min(p.until or after, after)
    if since >= until:
        since = until = first
    return mapviews.MapPeriod(since, until)


def overview_spec(p: mapviews.MapPeriod) -> Spec:
    """The overview's aggregates over the issues of period ``p`` (cells, communities); an
    ad-hoc snapshot unless ``p`` is a landing view (pass ad-hoc periods through
    :func:`data_period` first)."""
    def compute(conn: psycopg.Connection[Any]) -> dict[str, Any]:
        cells = mapviews.issue_cells(conn, p)
        return {"cells": {str(res): frame.to_dict(orient="list") for res, frame in cells.items()},
                "communities": mapviews.community_measures(conn, p).to_dict(orient="list")}

    ends = [t.isoformat() if t else "" for t in (p.since, p.until)]
    key = f"map-overview:{ends[0]}:{ends[1]}"
    return Spec(key, compute) if is_landing(p) else adhoc(key, compute)


def overview_data(conn: psycopg.Connection[Any], snapshots: Snapshots, p: mapviews.MapPeriod,
                  lang: str, gate: Gate | None = None) -> OverviewData:
    """Everything the overview shows for period ``p``: the aggregates from their snapshot
    (computed within ``gate`` when missing), the rest (names, units, sites, inspection
    visits) read now, in milliseconds."""
    snap = snapshots.get(conn, overview_spec(data_period(conn, p)), gate)
    cells = {int(res): pd.DataFrame(columns).astype(CELL_TYPES)
             for res, columns in snap.payload["cells"].items()}
    communities = pd.DataFrame(snap.payload["communities"],
                               columns=["code", "issues", "open", "points_lost"])
    categories = conn.execute("SELECT code, name_zh, name_en FROM category").fetchall()
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
        jurisdictions=mapdata.jurisdictions(conn), sites=mapviews.sites(conn), cells=cells,
        communities=communities,
        categories={c: (en_name if en else zh) for c, zh, en_name in categories},
        phases=[(f"{ph.code}:{ph.year}", f"{ph.year} {ph.name_en if en else ph.name_zh}")
                for ph in phases.list_phases(conn)],
        selection=selection, period_label=label, tile_query=_tile_query(p),
        as_of=as_of(snap))


def as_of(snap: Snapshot) -> AsOf:
    """When the page's analysis was computed, in the district's time, and if it is current."""
    return AsOf(snap.computed_at.astimezone(phases.DISTRICT_TZ), snap.current)


def overview(conn: psycopg.Connection[Any], snapshots: Snapshots, p: mapviews.MapPeriod, *,
             lang: str = "zh", measure: str = "points_lost", tianditu_key: str = "",
             options: PageOptions | None = None, gate: Gate | None = None) -> str:
    """The overview page's HTML."""
    options = options or PageOptions(lang=lang, tianditu_key=tianditu_key)
    fmap = build_overview(overview_data(conn, snapshots, p, lang, gate), options,
                          measure=measure)
    return str(fmap.get_root().render())


CHRONIC_SHOWN = ["code", "name", "layer", "category", "recurrences", "issues"]


# The hotspot page's time steps, finest first: a district too large (or a record too long)
# for the space-time cube's budget in 10-day steps is shown in coarser ones rather than not
# at all.
PAGE_STEP_DAYS = (10.0, 15.0, 20.0, 30.0, 45.0, 60.0)


def page_emerging(conn: psycopg.Connection[Any], assigner: Assigner, query: HotspotQuery,
                  limit: Limits | None = None) -> list[HotspotFeature]:
    """Emerging hotspots in the finest of :data:`PAGE_STEP_DAYS` the budget admits; none for
    a record shorter than one step (or too large even in 60-day steps)."""
    for step_days in PAGE_STEP_DAYS:
        try:
            return emerging_features(hotspots.emerging(conn, assigner, query,
                                                       step_days=step_days, limit=limit))
        except OverBudget:
            continue
        except ValidationFailed:  # too short a record for a trend: nothing to show
            return []
    return []


def _hotspot_payload(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The hotspot page's analysis at the REST routes' defaults (api/routes/hotspots.py):
    one Gi* run for cells and areas, the space-time cube, chronic sites."""
    assigner = load_assigner(conn)
    query = HotspotQuery()
    result = hotspots.hotspots(conn, assigner, query)
    jurisdictions, units = hotspots.names(conn)
    emerging = page_emerging(conn, assigner, query)
    chronic = hotspots.chronic(conn, query, window_days=14.0)[CHRONIC_SHOWN]

    def dump(features: Any) -> list[dict[str, Any]]:
        return [f.model_dump(mode="json", exclude_none=True) for f in features]

    return {"cells": dump(cell_features(result.cells)),
            "areas": dump(area_features(result.areas, jurisdictions, units)),
            "emerging": dump(emerging),
            "chronic": chronic.astype(object).where(chronic.notna(), None).to_dict(
                orient="list")}


HOTSPOT_SPEC = Spec("map-hotspots", _hotspot_payload)


def hotspot_data(conn: psycopg.Connection[Any], snapshots: Snapshots,
                 gate: Gate | None = None) -> HotspotData:
    """Gi* cells, hot areas, emerging categories and chronic sites from their snapshot
    (computed within ``gate`` when missing)."""
    snap = snapshots.get(conn, HOTSPOT_SPEC, gate)
    found = snap.payload
    return HotspotData(cells=found["cells"], areas=found["areas"], emerging=found["emerging"],
                       chronic=pd.DataFrame(found["chronic"], columns=CHRONIC_SHOWN),
                       sites=mapviews.sites(conn), as_of=as_of(snap))


def hotspots_page(conn: psycopg.Connection[Any], snapshots: Snapshots, *,
                  lang: str = "zh", tianditu_key: str = "",
                  options: PageOptions | None = None, gate: Gate | None = None) -> str:
    """The hotspot page's HTML."""
    options = options or PageOptions(lang=lang, tianditu_key=tianditu_key, tiles_url=None)
    return str(build_hotspots(hotspot_data(conn, snapshots, gate), options)
               .get_root().render())


def landing_specs(conn: psycopg.Connection[Any]) -> Iterator[Spec]:
    """The snapshots behind the pages' landing views, kept current by the refresher: the
    overview of all time and of each phase of this campaign year (the page's period menu),
    the hotspot page."""
    yield overview_spec(mapviews.MapPeriod())
    year = datetime.now(phases.DISTRICT_TZ).year
    for phase in phases.list_phases(conn, year):
        yield overview_spec(mapviews.period(conn, phase=phase.code, year=year))
    yield HOTSPOT_SPEC


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

