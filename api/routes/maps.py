"""Browser map pages (``/maps/...``) and issue vector tiles (``/tiles/issues/...``).

Public: they show public fields only (no reporter, contact or description), like Open311
reads. A unit's supervision orders are not public: ``/maps/units/{unit}`` fetches them in the
browser with the token the user pasted (docs/access.md). The map of an import's preview
(``/maps/revisions/preview/{token}``) shows who would gain and lose which issues, as a
revision does: it needs a token allowed to read revisions (admin, supervisor).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.auth import require_permission
from api.deps import AppSettings, Conn
from api.gate import request_gate
from api.services import hotspot_results, map_pages, street_focus
from geo.crs import wgs84_to_gcj02
from layers import line_previews
from layers.analysis import budget
from layers.auth.tokens import Principal
from layers.views import mapviews

# One street's code (the overview's street view and its tiles).
StreetQuery = Annotated[str | None, Query(
    max_length=40, pattern=r"^[A-Za-z0-9_.-]{1,40}$",
    description="one street's code: that street's ground and issues only")]

router = APIRouter(tags=["maps"])
Lang = Annotated[Literal["zh", "en"], Query(description="page language")]
Day = Annotated[str | None, Query(description="local date YYYY-MM-DD (inclusive)",
                                  max_length=10)]
PhaseQuery = Annotated[str | None, Query(max_length=50, description=(
    "campaign phase code, or code:year as the page's form sends it"))]
Year = Annotated[int | None, Query(ge=2000, le=2100, description="campaign year of phase")]


# Plain ``def`` handlers: FastAPI runs them in its thread pool, so the database reads and the
# CPU-bound folium rendering stay off the event loop.
@router.get("/maps/overview", response_class=HTMLResponse)
def overview(conn: Conn, request: Request, settings: AppSettings, lang: Lang = "zh",
             phase: PhaseQuery = None, year: Year = None, since: Day = None,
             until: Day = None, measure: Literal["points_lost", "open"] = "points_lost",
             street: StreetQuery = None) -> HTMLResponse:
    """The office's overview map for a period (all, a campaign phase, or days); a period
    that is not a landing view is counted over the days of it that hold issues. With
    ``street``, one street's ground, sites and cells (a view; 404 for an unknown street)."""
    selected = map_pages.parse_period(conn, settings, phase, year, since, until)
    page = map_pages.overview(conn, request.app.state.snapshots, selected, zone=settings.zone,
                              lang=lang, measure=measure, tianditu_key=settings.tianditu_key,
                              gate=request_gate(request).slot, street=street)
    return HTMLResponse(page)


@router.get("/maps/district", response_class=HTMLResponse,
            responses={422: {"content": {"application/problem+json": {}}}})
def district_map(conn: Conn, request: Request, settings: AppSettings, lang: Lang = "zh",
                 phase: PhaseQuery = None, year: Year = None, since: Day = None,
                 until: Day = None,
                 measure: Literal["points_lost", "on_time_rate", "rework_rate"] = "points_lost"
                 ) -> HTMLResponse:
    """The district's streets as a choropleth of their ranking for a period (all, a
    campaign phase, or days): points lost (扣分), on-time closure rate (按期办结率) or rework
    rate (返工率), the others as layers; each street's ranks in its popup, with a link to its
    overview (``/maps/overview?street=CODE``). Public fields only."""
    selected = map_pages.parse_period(conn, settings, phase, year, since, until)
    return HTMLResponse(map_pages.district(conn, selected, zone=settings.zone, lang=lang,
                                           measure=measure, tianditu_key=settings.tianditu_key,
                                           min_cases=settings.rank_min_cases,
                                           gate=request_gate(request).slot))


@router.get("/maps/hotspots", response_class=HTMLResponse)
def hotspot_map(conn: Conn, request: Request, settings: AppSettings, lang: Lang = "zh",
                phase: PhaseQuery = None, year: Year = None, since: Day = None,
                until: Day = None) -> HTMLResponse:
    """Gi* cells by class, hot areas (jurisdiction split, lead unit), emerging categories,
    chronic sites over the jurisdictions and their names, for a period (all, a campaign
    phase, or days; as the overview takes it); from analysis snapshots
    (layers/analysis/snapshots.py), an ad-hoc one over the days of the period that hold
    issues when it is not all time."""
    selected = map_pages.parse_period(conn, settings, phase, year, since, until)
    return HTMLResponse(map_pages.hotspots_page(conn, request.app.state.snapshots,
                                                zone=settings.zone, lang=lang,
                                                tianditu_key=settings.tianditu_key,
                                                gate=request_gate(request).slot,
                                                period=selected,
                                                assigner_of=hotspot_results.cached_assigner(
                                                    request.app.state.assigner_cache),
                                                limit=budget.limits(settings)))


@router.get("/maps/units/{unit}", response_class=HTMLResponse)
def unit_map(conn: Conn, settings: AppSettings,
             unit: Annotated[str, Path(max_length=40)], lang: Lang = "zh") -> HTMLResponse:
    """What one unit must act on: its ground, its open and overdue issues (public fields);
    its supervision orders are fetched by the page with the unit's own token."""
    return HTMLResponse(map_pages.unit(conn, unit, zone=settings.zone, lang=lang,
                                       tianditu_key=settings.tianditu_key))


@router.get("/maps/revisions/preview/{token}", response_class=HTMLResponse,
            responses={s: {"content": {"application/problem+json": {}}}
                       for s in (401, 403, 404, 422)})
def revision_preview_map(
        conn: Conn, settings: AppSettings,
        _caller: Annotated[Principal, Depends(require_permission("read_revisions"))],
        token: Annotated[str, Path(pattern=line_previews.PREVIEW_ID,
                                   description="the token an import's preview answered")],
        lang: Lang = "zh") -> HTMLResponse:
    """The map of an import's preview (kept 24 h): the lines now and in the file, in two
    colours, and the open issues that would move, "from unit -> to unit"."""
    return HTMLResponse(map_pages.revision_preview(conn, token, zone=settings.zone, lang=lang,
                                                   tianditu_key=settings.tianditu_key))


@router.get("/tiles/issues/{z}/{x}/{y}.mvt",
            responses={200: {"content": {"application/vnd.mapbox-vector-tile": {}}}})
def issue_tile(conn: Conn, settings: AppSettings, z: Annotated[int, Path(ge=0, le=22)],
               x: Annotated[int, Path(ge=0)], y: Annotated[int, Path(ge=0)],
               phase: PhaseQuery = None, year: Year = None, since: Day = None,
               until: Day = None, crs: Literal["wgs84", "gcj02"] = "wgs84",
               street: StreetQuery = None) -> Response:
    """Single issues of one tile (public fields, at most ``mapviews.TILE_LIMIT``, open and
    newest first); ``crs=gcj02`` shifts them to line up with a GCJ-02 basemap; ``street``,
    one street's issues only (the overview's street view; 404 for an unknown street)."""
    mapviews.check_tile(z, x, y)  # before the centre is computed from it
    selected = map_pages.parse_period(conn, settings, phase, year, since, until)
    street_id = None if street is None else street_focus.street_id(conn, street)
    shift = (0.0, 0.0)
    if crs == "gcj02":
        lon, lat = map_pages.tile_centre(z, x, y)
        glon, glat = wgs84_to_gcj02(lon, lat)
        shift = (float(glon) - lon, float(glat) - lat)
    body = mapviews.issue_tile(conn, z, x, y, selected, shift=shift, street=street_id)
    return Response(body, media_type="application/vnd.mapbox-vector-tile",
                    headers={"Cache-Control": "max-age=60"})
