"""Browser map pages (``/maps/...``), built by ``maps/`` from the stored layers."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from api.deps import Conn
from layers import mapdata
from maps.overview import build_overview

router = APIRouter(prefix="/maps", tags=["maps"])


# A plain ``def`` handler: FastAPI runs it in its thread pool, so the database reads and the
# CPU-bound folium rendering stay off the event loop.
@router.get("/overview", response_class=HTMLResponse)
def overview(conn: Conn, lang: Literal["zh", "en"] = Query("zh")) -> HTMLResponse:
    """The office's overview map: jurisdictions, site layers and recent issues."""
    fmap = build_overview(
        mapdata.jurisdictions(conn), mapdata.sites(conn), mapdata.issues(conn), lang=lang
    )
    return HTMLResponse(fmap.get_root().render())
