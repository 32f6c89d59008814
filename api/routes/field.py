"""The field pages (``/report``, ``/units/{unit}/work``) and the one question they ask that no
other route answers: which categories to offer first at a position (``/api/v1/field/nearby``).

The pages are public shells without data (their script calls ``/api/v1`` with the token kept
in the browser); the JSON route needs a token like every ``/api/v1`` route.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from api.deps import AppSettings, Conn
from layers.issues import nearby
from maps.field import report_html, work_html

pages = APIRouter(tags=["field pages"])
router = APIRouter(prefix="/api/v1/field", tags=["field pages"])
Lang = Annotated[Literal["zh", "en"], Query(description="labels: zh (default) or en")]


@pages.get("/report", response_class=HTMLResponse)
def report_page(settings: AppSettings, lang: Lang = "zh") -> HTMLResponse:
    """The inspector's report page, phone first (sign in with a token on the page)."""
    return HTMLResponse(report_html(settings.timezone, lang))


@pages.get("/units/{unit}/work", response_class=HTMLResponse)
def work_page(unit: Annotated[str, Path(max_length=40)], settings: AppSettings,
              lang: Lang = "zh") -> HTMLResponse:
    """A unit's work page: its open issues to rectify and its supervision orders."""
    return HTMLResponse(work_html(unit, settings.timezone, lang))


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
