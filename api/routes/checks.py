"""``/api/v1/checks``: data-quality reports (gaps, overlaps, strays, invalid rings)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import Conn
from geo.quality import check_jurisdictions, summary
from layers.views import mapdata

router = APIRouter(prefix="/api/v1/checks", tags=["checks"])


@router.get("/jurisdictions", response_class=JSONResponse,
            responses={200: {"content": {"application/geo+json": {}}}})
def jurisdiction_quality(
    conn: Conn, min_area_m2: Annotated[float, Query(ge=0, le=1e6)] = 1.0
) -> JSONResponse:
    """Gaps and overlaps between sibling polygons, children outside their parent, invalid
    rings and orphans, each with its area in m² and its geometry (GeoJSON)."""
    findings = check_jurisdictions(mapdata.jurisdiction_frame(conn), min_area_m2=min_area_m2)
    body: dict[str, Any] = findings.to_geo_dict(drop_id=True)
    body["summary"] = summary(findings)
    return JSONResponse(body, media_type="application/geo+json")
