"""Map pages as HTML: read the layers (layers.views.mapviews, layers.analysis.hotspots), build
(maps/).

Shared by the HTTP routes and ``sitewatch map``. What takes seconds at a million issues (the
overview's aggregates per period, the hotspot analysis) comes from analysis snapshots
(layers/analysis/snapshots.py), so a page is built in well under a second; the page says when its
analysis was computed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, replace
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

import psycopg

from api import periods as api_periods
from api.schemas.hotspots import HotspotFeature
from api.services import hotspot_results, map_records, street_focus
from api.services.hotspot_results import AssignerOf
from geo.hotspots.budget import Limits
from layers import line_previews
from layers.analysis import tallies
from layers.analysis.budget import OverBudget
from layers.analysis.hotspots import HotspotQuery
from layers.analysis.snapshots import Snapshot, Snapshots, Spec, adhoc, street_key
from layers.assignment import load_assigner
from layers.catalog import phases
from layers.catalog.periods import Period
from layers.db.settings import Settings
from layers.errors import NotFound, ValidationFailed
from layers.supervision import street_ranking
from layers.supervision.orders import OrderSummary
from layers.views import mapdata, mapviews
from maps.district import DistrictData, StreetFigures, build_district
from maps.hotspots import HotspotData, build_hotspots
from maps.overview import OverviewData, build_overview
from maps.page import AsOf, PageOptions, PeriodMenu
from maps.records import ChronicSite
from maps.revision_preview import (
    PreviewData,
    PreviewLine,
    PreviewMove,
    UnitSwing,
    build_preview,
)
from maps.unit import UnitData, build_unit

# Days a map period may name: a campaign's data lies well inside, and a page's ad-hoc
# snapshot keys stay within them.
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2099, 12, 31)


def parse_period(conn: psycopg.Connection[Any], settings: Settings, phase: str | None,
                 year: int | None, since: str | None, until: str | None) -> Period:
    """The period from the page's query parameters (read by api.periods like every route's;
    empty values, a form's blanks, mean "not given"), its days within the years a page shows."""
    found = api_periods.read_period(conn, settings, phase=phase, year=year, since=since,
                                    until=until)
    zone = settings.zone
    first = datetime.combine(EARLIEST_DAY, time(), zone)
    after = datetime.combine(LATEST_DAY + timedelta(days=1), time(), zone)
    for name, end in (("since", found.since), ("until", found.until)):
        if end is not None and not first <= end <= after:
            raise ValidationFailed(f"{name}：日期须在 {EARLIEST_DAY} 至 {LATEST_DAY} 之间 / "
                                   f"must lie between {EARLIEST_DAY} and {LATEST_DAY}")
    return found


def tile_centre(z: int, x: int, y: int) -> tuple[float, float]:
    """WGS84 lon/lat of the centre of web-mercator tile z/x/y."""
    n = 2.0 ** z
    lon = (x + 0.5) / n * 360.0 - 180.0
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 0.5) / n))))
    return lon, lat


def _tile_query(p: Period, street: str | None = None) -> str:
    """The tiles' query string: the period, and the street of a street view."""
    query = {**p.query(), **({"street": street} if street is not None else {})}
    return "&".join(f"{k}={v}" for k, v in query.items())


Gate = Callable[[], AbstractContextManager[object]]


def is_landing(p: Period, zone: tzinfo) -> bool:
    """Whether ``p`` is a landing view (all time, or a phase of this campaign year in
    ``zone``): those snapshots are kept current by the worker's refresh-maps job and never
    evicted."""
    if p.phase is not None:
        return p.phase.year == datetime.now(zone).year
    return p.since is None and p.until is None


def data_period(conn: psycopg.Connection[Any], p: Period, zone: tzinfo) -> Period:
    """``p`` as the whole days (local in ``zone``) of it that hold issues, so that anyone's
    ad-hoc periods name at most (days of data)² snapshots and every period outside the data
    the same empty one. Landing views are returned as they are. Two index lookups."""
    if is_landing(p, zone):
        return p
    row = conn.execute("SELECT min(reported_at), max(reported_at) FROM issue").fetchone()
    if row is None or row[0] is None:
        return Period()  # no issues at all: every period shows the same nothing

    def day(t: datetime) -> datetime:
        return datetime.combine(t.astimezone(zone).date(), time(), zone)

    first, after = day(row[0]), day(row[1]) + timedelta(days=1)
    since = max(p.since or first, first)
    until = min(p.until or after, after)
    if since >= until:
        since = until = first
    return Period(since, until)


def overview_spec(p: Period, zone: tzinfo, street: int | None = None) -> Spec:
    """The overview's aggregates over the issues of period ``p`` (cells, communities); an
    ad-hoc snapshot unless ``p`` is a landing view in ``zone`` (pass ad-hoc periods through
    :func:`data_period` first). With ``street`` (a street's id), of that street's issues,
    read from its own tally rows and stored under the key its scoped offices use
    (snapshots.for_scope), so the public street view and the street's office share one."""
    def compute(conn: psycopg.Connection[Any]) -> dict[str, Any]:
        return map_records.overview_payload(
            mapviews.issue_cells(conn, p, street=street),
            mapviews.community_measures(conn, p, street=street))

    ends = [t.isoformat() if t else "" for t in (p.since, p.until)]
    key = f"map-overview:{ends[0]}:{ends[1]}"
    spec = Spec(key, compute) if is_landing(p, zone) else adhoc(key, compute)
    return Spec(street_key(street, spec.key), compute)


def overview_data(conn: psycopg.Connection[Any], snapshots: Snapshots, p: Period,
                  lang: str, zone: tzinfo, gate: Gate | None = None,
                  street: str | None = None) -> OverviewData:
    """Everything the overview shows for period ``p``: the aggregates from their snapshot
    (computed within ``gate`` when missing), the rest (names, units, sites, inspection
    visits) read now, in milliseconds; with ``street``, what lies in that street only
    (api.services.street_focus; NotFound for an unknown street)."""
    found = mapdata.jurisdictions(conn)
    focus = street_focus.find(conn, found, street) if street is not None else None
    snap = snapshots.get(conn, overview_spec(data_period(conn, p, zone), zone,
                                             focus.id if focus else None), gate)
    cells, communities = map_records.overview_records(snap.payload)
    categories = conn.execute("SELECT code, name_zh, name_en FROM category").fetchall()
    en = lang == "en"
    data = OverviewData(
        jurisdictions=[map_records.jurisdiction(j) for j in found],
        sites=[map_records.site(s) for s in mapviews.sites(conn)], cells=cells,
        communities=communities,
        categories={c: (en_name if en else zh) for c, zh, en_name in categories},
        period=period_menu(conn, p, lang), tile_query=_tile_query(p, street),
        as_of=as_of(conn, snap, zone))
    return data if focus is None else street_focus.focused(data, focus)


def period_menu(conn: psycopg.Connection[Any], p: Period, lang: str) -> PeriodMenu:
    """Period ``p`` as a page shows it in ``lang`` (a phase by its name, else its days) and
    as its period form selects it again, with every phase to choose from."""
    en = lang == "en"

    def name(ph: phases.Phase) -> str:
        return f"{ph.year} {ph.name_en if en else ph.name_zh}"

    q = p.query()
    selection, label = q, ""
    if p.phase is not None:
        selection, label = {"phase": f"{p.phase.code}:{p.phase.year}"}, name(p.phase)
    elif p.since or p.until:
        label = f'{q.get("since", "…")} – {q.get("until", "…")}'
    return PeriodMenu(phases=[(f"{ph.code}:{ph.year}", name(ph))
                              for ph in phases.list_phases(conn)],
                      selection=selection, label=label)


def as_of(conn: psycopg.Connection[Any], snap: Snapshot, zone: tzinfo) -> AsOf:
    """When the page's analysis was computed, local in ``zone`` (the district's), if it is
    current, and how far its counts are behind the reports."""
    return AsOf(snap.computed_at.astimezone(zone), snap.current, tallies.lag(conn))


def overview(conn: psycopg.Connection[Any], snapshots: Snapshots, p: Period, *,
             zone: tzinfo, lang: str = "zh", measure: str = "points_lost",
             tianditu_key: str = "", options: PageOptions | None = None,
             gate: Gate | None = None, street: str | None = None) -> str:
    """The overview page's HTML, times and days local in ``zone`` (the district's); one
    street's only with ``street``."""
    options = options or PageOptions(zone=zone, lang=lang, tianditu_key=tianditu_key)
    fmap = build_overview(overview_data(conn, snapshots, p, lang, zone, gate, street),
                          options, measure=measure)
    return str(fmap.get_root().render())


# The hotspot page's time steps, finest first: a district too large (or a record too long)
# for the space-time cube's budget in 10-day steps is shown in coarser ones rather than not
# at all.
PAGE_STEP_DAYS = (10.0, 15.0, 20.0, 30.0, 45.0, 60.0)


def page_emerging(conn: psycopg.Connection[Any], snapshots: Snapshots, query: HotspotQuery,
                  gate: Gate | None = None, limit: Limits | None = None,
                  assigner_of: AssignerOf = load_assigner) -> Snapshot | None:
    """Emerging hotspots in the finest of :data:`PAGE_STEP_DAYS` the budget admits (the
    finest is the REST route's default snapshot); None for a record shorter than a trend
    needs (or too large even in 60-day steps)."""
    for step_days in PAGE_STEP_DAYS:
        spec = hotspot_results.emerging_spec(query, assigner_of, step_days=step_days,
                                             limit=limit)
        try:
            return snapshots.get(conn, spec, gate)
        except OverBudget:
            continue
        except ValidationFailed:  # too short a record for a trend: nothing to show
            return None
    return None


def _features(payload: list[dict[str, Any]]) -> list[HotspotFeature]:
    return [HotspotFeature.model_validate(f) for f in payload]


def hotspot_query(conn: psycopg.Connection[Any], p: Period, zone: tzinfo) -> HotspotQuery:
    """The default analysis over period ``p``: all time is the hotspot page's landing view;
    any other period, a phase too, is read over the days of it that hold issues
    (:func:`data_period`), so that anyone's periods name few ad-hoc snapshots."""
    shown = data_period(conn, Period(p.since, p.until), zone)
    return HotspotQuery(since=shown.since, until=shown.until)


def hotspot_data(conn: psycopg.Connection[Any], snapshots: Snapshots, zone: tzinfo,
                 gate: Gate | None = None, p: Period | None = None, lang: str = "zh",
                 assigner_of: AssignerOf = load_assigner, limit: Limits | None = None
                 ) -> HotspotData:
    """Gi* cells, hot areas, emerging categories and chronic sites at the default
    parameters over period ``p`` (default: all time), from the snapshots the REST routes
    share (api/services/hotspot_results.py; computed within ``gate`` when missing, an
    ad-hoc one for a period other than all time); the page's time is its oldest
    analysis'."""
    p = p or Period()
    query = hotspot_query(conn, p, zone)
    gi = snapshots.get(conn, hotspot_results.gi_spec(query, assigner_of, limit), gate)
    emerging = page_emerging(conn, snapshots, query, gate, limit, assigner_of)
    chronic = snapshots.get(conn, hotspot_results.chronic_spec(query), gate)
    shown = [s for s in (gi, emerging, chronic) if s is not None]
    oldest = min(shown, key=lambda s: s.computed_at)
    return HotspotData(
        cells=map_records.gi_cells(gi.payload["cells"]),
        areas=map_records.hot_areas(_features(gi.payload["areas"])),
        emerging=map_records.emerging_cells(_features(emerging.payload if emerging else [])),
        chronic=[ChronicSite(code=r["site"], category=r["category"],
                             recurrences=r["recurrences"]) for r in chronic.payload],
        sites=[map_records.site(s) for s in mapviews.sites(conn)],
        as_of=as_of(conn, replace(oldest, current=all(s.current for s in shown)), zone),
        jurisdictions=[map_records.jurisdiction(j) for j in mapdata.jurisdictions(conn)],
        period=period_menu(conn, p, lang))


def hotspots_page(conn: psycopg.Connection[Any], snapshots: Snapshots, *, zone: tzinfo,
                  lang: str = "zh", tianditu_key: str = "",
                  options: PageOptions | None = None, gate: Gate | None = None,
                  period: Period | None = None, assigner_of: AssignerOf = load_assigner,
                  limit: Limits | None = None) -> str:
    """The hotspot page's HTML for ``period`` (default: all time), times local in ``zone``
    (the district's); the server passes its cached engine as ``assigner_of`` and its
    analysis ceilings as ``limit``."""
    options = options or PageOptions(zone=zone, lang=lang, tianditu_key=tianditu_key,
                                     tiles_url=None)
    data = hotspot_data(conn, snapshots, zone, gate, period, options.lang, assigner_of, limit)
    return str(build_hotspots(data, options).get_root().render())


def landing_specs(conn: psycopg.Connection[Any], zone: tzinfo) -> Iterator[Spec]:
    """The snapshots behind the pages' landing views, kept current by the worker's
    refresh-maps job: the overview of all time and of each phase of this campaign year (the
    page's period menu; phases and the year local in ``zone``, the district's), the same for
    each street of a district of several (the district map's links), the hotspot page."""
    year = datetime.now(zone).year
    landing = [Period(), *(Period(phase.since(zone), phase.until(zone), phase)
                           for phase in phases.list_phases(conn, year))]
    streets = [int(r[0]) for r in conn.execute(
        "SELECT id FROM jurisdiction WHERE level = 'street' AND parent_id IS NULL"
        " ORDER BY code").fetchall()]
    for street in [None, *(streets if len(streets) > 1 else [])]:
        for p in landing:
            yield overview_spec(p, zone, street)
    yield from hotspot_results.landing_specs(load_assigner)


def unit_data(conn: psycopg.Connection[Any], code: str) -> UnitData:
    """A unit's ground, open issues and name; NotFound for an unknown unit."""
    row = mapviews.unit_row(conn, code)
    if row is None:
        raise NotFound(f"没有单位 {code!r} / no unit {code!r}")
    juris = [map_records.jurisdiction(j) for j in mapdata.jurisdictions(conn)]
    ground = [j for j in juris if j.unit == row.name]
    return UnitData(code=row.code, name=row.name, ground=ground,
                    issues=[map_records.unit_issue(i) for i in mapviews.unit_issues(conn, code)],
                    district=juris)


def unit(conn: psycopg.Connection[Any], code: str, *, zone: tzinfo, lang: str = "zh",
         tianditu_key: str = "", orders: list[OrderSummary] | None = None,
         options: PageOptions | None = None) -> str:
    """The unit page's HTML, times local in ``zone`` (the district's); ``orders`` embedded
    only by the CLI (see docs/access.md)."""
    options = options or PageOptions(zone=zone, lang=lang, tianditu_key=tianditu_key,
                                     tiles_url=None)
    data = unit_data(conn, code)
    data.orders = None if orders is None else [map_records.order_counts(o) for o in orders]
    return str(build_unit(data, options).get_root().render())



def district(conn: psycopg.Connection[Any], p: Period, *, zone: tzinfo, lang: str = "zh",
             measure: street_ranking.Measure = "points_lost", tianditu_key: str = "",
             min_cases: int, gate: Gate | None = None) -> str:
    """The district map's HTML: every street ranked over period ``p`` (all time: from
    :data:`EARLIEST_DAY` to now, local in ``zone``) from the scores' tallies, within ``gate``
    like the scores route."""
    since = p.since or datetime.combine(EARLIEST_DAY, time(), zone)
    until = p.until or datetime.now(zone)
    with gate() if gate is not None else nullcontext():
        ranked = street_ranking.ranking(conn, since=since, until=until, min_cases=min_cases)
    outlines = {j.code: j.geometry for j in mapdata.jurisdictions(conn, streets_only=True)}
    figures = [StreetFigures(
        code=str(s.code), name=s.name, name_en=s.name_en, geometry=outlines[str(s.code)],
        issues=s.issues, points_lost=s.points_lost, on_time_rate=s.on_time_rate,
        rework_rate=s.rework_rate, points_lost_rank=s.points_lost_rank,
        on_time_rank=s.on_time_rank, rework_rank=s.rework_rank) for s in ranked]
    data = DistrictData(streets=figures, period=period_menu(conn, p, lang))
    options = PageOptions(zone=zone, lang=lang, tianditu_key=tianditu_key, tiles_url=None)
    return str(build_district(data, options, measure=measure).get_root().render())


def revision_preview(conn: psycopg.Connection[Any], token: str, *, zone: tzinfo,
                     lang: str = "zh", tianditu_key: str = "") -> str:
    """The map of the import preview kept under ``token`` (layers.line_previews); NotFound
    when there is none or it expired."""
    kept = line_previews.load(conn, token)
    drawing = kept.drawing
    data = PreviewData(
        source=kept.source, table=kept.table, created_at=kept.created_at,
        expires_at=kept.expires_at, examined=kept.examined, changed=kept.changed,
        lead_changed=kept.lead_changed, points_moved=kept.points_moved,
        units=[UnitSwing(**asdict(u)) for u in kept.units],
        old_lines=[PreviewLine(x.code, x.name, json.loads(x.geometry))
                   for x in drawing.old_lines],
        new_lines=[PreviewLine(x.code, x.name, json.loads(x.geometry))
                   for x in drawing.new_lines],
        moves=[PreviewMove(**asdict(m)) for m in drawing.moves],
        unit_names=drawing.unit_names)
    options = PageOptions(zone=zone, lang=lang, tianditu_key=tianditu_key, tiles_url=None)
    return str(build_preview(data, options).get_root().render())
