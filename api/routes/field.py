"""The field pages (``/report``, ``/units/{unit}/work``) and the one question they ask that no
other route answers: which categories to offer first at a position (``/api/v1/field/nearby``).

The pages are public shells without data (their script calls ``/api/v1`` with the token kept
in the browser); the JSON route needs a token like every ``/api/v1`` route.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from api.deps import AppSettings, Conn
from layers.assignment import DEFAULT_TOLERANCE_M
from layers.issues import nearby
from maps.assets import STATIC_DIR
from maps.field import manifest, report_html, work_html

pages = APIRouter(tags=["field pages"])
router = APIRouter(prefix="/api/v1/field", tags=["field pages"])
Lang = Annotated[Literal["zh", "en"], Query(description="labels: zh (default) or en")]


@pages.get("/report", response_class=HTMLResponse)
def report_page(settings: AppSettings, lang: Lang = "zh") -> HTMLResponse:
    """The inspector's report page, phone first (sign in with a token on the page)."""
    return HTMLResponse(report_html(settings.timezone, lang, DEFAULT_TOLERANCE_M))


UnitCode = Annotated[str, Path(max_length=40)]


@pages.get("/units/{unit}/work", response_class=HTMLResponse)
def work_page(unit: UnitCode, settings: AppSettings, lang: Lang = "zh") -> HTMLResponse:
    """A unit's work page: its open issues to rectify and its supervision orders."""
    return HTMLResponse(work_html(unit, settings.timezone, lang))


_MANIFEST = "application/manifest+json"


@pages.get("/report.webmanifest")
def report_manifest(lang: Lang = "zh") -> JSONResponse:
    """The report page's web app manifest: it installs as an app of its own."""
    return JSONResponse(manifest(lang), media_type=_MANIFEST)


@pages.get("/units/{unit}/work.webmanifest")
def work_manifest(unit: UnitCode, lang: Lang = "zh") -> JSONResponse:
    """A unit's work page's web app manifest (the unit is only echoed, as by the page)."""
    return JSONResponse(manifest(lang, unit), media_type=_MANIFEST)


@pages.get("/field-sw.js")
def service_worker() -> FileResponse:
    """The field pages' service worker. Served from the root so that its scope covers both
    ``/report`` and ``/units/…/work``; never cached by the browser's HTTP cache, so a new
    version is found at the next visit."""
    return FileResponse(STATIC_DIR / "field" / "sw.js", media_type="text/javascript",
                        headers={"Cache-Control": "no-cache"})


class NearbySite(BaseModel):
    """The site nearest to the position (distance 0 inside it or its surroundings buffer)."""

    code: str | None
    name: str
    layer: str
    layer_zh: str
    layer_en: str
    distance_m: float = Field(description="metres from the site's outline (0 inside)")


class Nearby(BaseModel):
    """What to offer first when reporting at a position."""

    site: NearbySite | None
    categories: list[nearby.SuggestedCategory] = Field(
        description="the nearest site's layer first, then city-wide, then other layers")


@router.get("/nearby", response_model=Nearby)
def nearby_categories(
    conn: Conn,
    lon: Annotated[float, Query(ge=-180, le=180, description="WGS84 longitude")],
    lat: Annotated[float, Query(ge=-90, le=90, description="WGS84 latitude")],
) -> Nearby:
    """The site nearest to (lon, lat) within 300 m and the catalog ordered for it."""
    site = nearby.nearest_site(conn, lon, lat)
    return Nearby(
        site=None if site is None else NearbySite(
            code=site.code, name=site.name, layer=site.layer, layer_zh=site.layer_zh,
            layer_en=site.layer_en, distance_m=site.distance_m),
        categories=nearby.categories_for(conn, site.layer if site else None))
