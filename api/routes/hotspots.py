"""``/api/v1/hotspots``: significant hotspots (cells or areas), emerging hotspots, clusters;
``/api/v1/sites/chronic``: sites where one problem keeps coming back (顽疾).

Results are analysis snapshots (api/services/hotspot_results.py): stored with the data version
they were computed from, shared with the hotspot page and every server process, and served
only while current; otherwise computed in a worker thread (sync handlers), never on the
event loop, one of a few at a time (api.gate), after their cost was estimated
(layers.analysis.budget): a request that would not fit is refused with a 422 naming what to
change. Parameters left out take :data:`layers.analysis.hotspots.DEFAULTS`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import AppSettings, Conn
from api.gate import request_gate
from api.periods import read_period
from api.schemas.hotspots import ChronicSite, HotspotCollection
from api.services import hotspot_results
from layers.analysis import budget, tallies
from layers.analysis.hotspots import DEFAULTS, MIN_CELL_M, HotspotQuery
from layers.analysis.snapshots import Snapshots, Spec
from layers.db.settings import Settings
from layers.vocab import Level

router = APIRouter(tags=["hotspots"])
GEOJSON = "application/geo+json"
Normalise = Literal["none", "km2", "site"]
PeriodQuery = Annotated[str | None, Query(max_length=100, description=(
    "START/END in ISO 8601 dates or date-times, e.g. 2026-05-01/2026-11-20 (a date as the"
    " end: the whole day)"))]
CategoryQuery = Annotated[list[str] | None, Query(description="category codes")]


def _query(conn: Conn, settings: Settings, method: str, resolution: int, ring: int,
           cell_m: float, period: str | None, category: list[str] | None, layer: str | None,
           normalise: Normalise = "none", confidence: int = DEFAULTS.confidence,
           level: str = DEFAULTS.level) -> HotspotQuery:
    found = read_period(conn, settings, period=period)
    return HotspotQuery(method="fishnet" if method == "fishnet" else "h3",
                        resolution=resolution, ring=ring, cell_m=cell_m, since=found.since,
                        until=found.until, categories=tuple(sorted(category or ())),
                        layer=layer, normalise=normalise, confidence=confidence, level=level)


def _snapshot_payload(request: Request, conn: Conn, spec: Spec) -> Any:
    """The current snapshot's payload for ``spec``, computed in an analysis slot if need be."""
    snapshots: Snapshots = request.app.state.snapshots
    return snapshots.current(conn, spec, request_gate(request).slot).payload


def _json(body: Any, media_type: str = GEOJSON) -> Response:
    shown = hotspot_results.without_none(body)
    return Response(json.dumps(shown, ensure_ascii=False, separators=(",", ":")).encode(),
                    media_type=media_type)


def _collection(features: list[dict[str, Any]], parameters: dict[str, Any]) -> Response:
    return _json({"type": "FeatureCollection", "features": features,
                  "parameters": parameters})


@router.get("/api/v1/hotspots", response_model=HotspotCollection)
def get_hotspots(
    conn: Conn, request: Request, settings: AppSettings,
    method: Annotated[Literal["h3", "fishnet", "dbscan"], Query()] = DEFAULTS.method,
    output: Annotated[Literal["areas", "cells"], Query()] = "areas",
    resolution: Annotated[int, Query(ge=7, le=tallies.RESOLUTION)] = DEFAULTS.resolution,
    ring: Annotated[int, Query(ge=1, le=5)] = DEFAULTS.ring,
    cell_m: Annotated[float, Query(ge=MIN_CELL_M, le=2000)] = DEFAULTS.cell_m,
    period: PeriodQuery = None, category: CategoryQuery = None,
    layer: Annotated[str | None, Query(description="site layer")] = None,
    normalise: Annotated[Normalise, Query()] = "none",
    # An int, not Literal[90, 95, 99]: a query string is text, and pydantic matches literals
    # strictly, so "90" was refused; HotspotQuery refuses anything but 90, 95 and 99.
    confidence: Annotated[int, Query(ge=90, le=99, description="90, 95 or 99")
                          ] = DEFAULTS.confidence,
    level: Annotated[Level, Query()] = DEFAULTS.level,
    eps_m: Annotated[float, Query(gt=0, le=500)] = DEFAULTS.eps_m,
    min_reports: Annotated[int, Query(ge=2, le=1000)] = DEFAULTS.min_reports,
) -> Response:
    """Getis-Ord Gi* hotspots with FDR: merged hot areas with their split across
    jurisdictions and lead unit (``output=areas``), or every study cell with z, p, FDR p and
    class (``output=cells``); ``method=dbscan`` clusters single reports instead."""
    query = _query(conn, settings, method, resolution, ring, cell_m, period, category, layer,
                   normalise, confidence, level)
    params: dict[str, Any] = {"method": method, "output": output, **_describe(query)}
    limit = budget.limits(settings)
    if method == "dbscan":
        spec = hotspot_results.cluster_spec(query, _assigner(request), eps_m=eps_m,
                                            min_reports=min_reports, limit=limit)
        return _collection(_snapshot_payload(request, conn, spec), params)
    found = _snapshot_payload(request, conn, hotspot_results.gi_spec(
        query, _assigner(request), limit))
    return _collection(found[output], params)


@router.get("/api/v1/hotspots/emerging", response_model=HotspotCollection)
def get_emerging(
    conn: Conn, request: Request, settings: AppSettings,
    method: Annotated[Literal["h3", "fishnet"], Query()] = DEFAULTS.method,
    resolution: Annotated[int, Query(ge=7, le=tallies.RESOLUTION)] = DEFAULTS.resolution,
    ring: Annotated[int, Query(ge=1, le=5)] = DEFAULTS.ring,
    cell_m: Annotated[float, Query(ge=MIN_CELL_M, le=2000)] = DEFAULTS.cell_m,
    period: PeriodQuery = None, category: CategoryQuery = None,
    layer: Annotated[str | None, Query(description="site layer")] = None,
    step_days: Annotated[float, Query(ge=1, le=90)] = DEFAULTS.step_days,
    time_window: Annotated[int, Query(ge=0, le=5)] = DEFAULTS.time_window,
    all_cells: bool = False,
) -> Response:
    """Emerging hotspots: Gi* per 10-day step (the inspection cycle), Mann-Kendall trend per
    cell, ArcGIS Pro's categories (new, consecutive, intensifying, persistent, diminishing,
    sporadic, oscillating, historical) and the rebound flag (反弹)."""
    query = _query(conn, settings, method, resolution, ring, cell_m, period, category, layer)
    params = {**_describe(query), "step_days": step_days, "time_window": time_window}
    spec = hotspot_results.emerging_spec(query, _assigner(request), step_days=step_days,
                                         time_window=time_window, all_cells=all_cells,
                                         limit=budget.limits(settings))
    return _collection(_snapshot_payload(request, conn, spec), params)


@router.get("/api/v1/sites/chronic", response_model=list[ChronicSite])
def get_chronic(
    conn: Conn, request: Request, settings: AppSettings, period: PeriodQuery = None,
    category: CategoryQuery = None,
    layer: Annotated[str | None, Query(description="site layer")] = None,
    window_days: Annotated[int, Query(ge=1, le=tallies.MAX_GAP_DAYS, description=(
        "whole days after the previous closure"))] = DEFAULTS.chronic_window_days,
    min_recurrences: Annotated[int | None, Query(ge=1, le=1000, description=(
        "default: one per 10-day inspection cycle over the period"))] = None,
) -> Response:
    """Sites where the same category recurs within ``window_days`` after closure, ranked by
    recurrences (久治不愈的顽疾); by default chronic means it came back about every cycle."""
    query = _query(conn, settings, DEFAULTS.method, DEFAULTS.resolution, DEFAULTS.ring,
                   DEFAULTS.cell_m, period, category, layer)
    spec = hotspot_results.chronic_spec(query, window_days=window_days,
                                        min_recurrences=min_recurrences)
    return _json(_snapshot_payload(request, conn, spec), "application/json")


def _assigner(request: Request) -> hotspot_results.AssignerOf:
    """The app's cached assigner, read on the connection a computation runs on."""
    return hotspot_results.cached_assigner(request.app.state.assigner_cache)


def _describe(query: HotspotQuery) -> dict[str, Any]:
    return {"resolution": query.resolution, "ring": query.ring, "cell_m": query.cell_m,
            "since": query.since.isoformat() if query.since else None,
            "until": query.until.isoformat() if query.until else None,
            "category": list(query.categories), "layer": query.layer,
            "normalise": query.normalise, "confidence": query.confidence,
            "level": query.level, "fdr": "benjamini-hochberg", "p": "two-sided analytic"}
