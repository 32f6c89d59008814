"""``/api/v1/hotspots``: significant hotspots (cells or areas), emerging hotspots, clusters;
``/api/v1/sites/chronic``: sites where one problem keeps coming back (顽疾).

Results are computed once per data version and query and then served from the app's cache
(layers.analysis.hotspots.ResultCache); the statistics run in a worker thread (sync handlers), never
on the event loop, one of a few at a time (api.gate), after their cost was estimated
(layers.analysis.budget): a request that would not fit is refused with a 422 naming what to change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import TypeAdapter

from api.deps import AppSettings, Conn
from api.gate import request_gate
from api.schemas.hotspots import ChronicSite, HotspotCollection, HotspotFeature
from api.services.hotspot_features import (
    area_features,
    cell_features,
    cluster_features,
    emerging_features,
)
from geo.assign import Assigner
from geo.hotspots.binning import DEFAULT_RESOLUTION, DEFAULT_RING
from layers.analysis import budget, hotspots
from layers.analysis.hotspots import HotspotQuery, ResultCache
from layers.assignment import AssignerCache
from layers.vocab import Level

router = APIRouter(tags=["hotspots"])
GEOJSON = "application/geo+json"
Normalise = Literal["none", "km2", "site"]
PeriodQuery = Annotated[str | None, Query(description="START/END in ISO 8601, e.g. "
                                                      "2026-05-01/2026-11-20")]
CategoryQuery = Annotated[list[str] | None, Query(description="category codes")]
_SITES = TypeAdapter(list[ChronicSite])


def _cache(request: Request) -> ResultCache:
    cache: ResultCache = request.app.state.hotspot_cache
    return cache


def _query(method: str, resolution: int, ring: int, cell_m: float, period: str | None,
           category: list[str] | None, layer: str | None, normalise: Normalise,
           confidence: int,
           level: str) -> HotspotQuery:
    since, until = hotspots.parse_period(period)
    return HotspotQuery(method="fishnet" if method == "fishnet" else "h3",
                        resolution=resolution, ring=ring, cell_m=cell_m, since=since,
                        until=until, categories=tuple(sorted(category or ())), layer=layer,
                        normalise=normalise,
                        confidence=confidence, level=level)


def _collection(features: list[HotspotFeature], parameters: dict[str, Any]) -> bytes:
    body = HotspotCollection(features=features, parameters=parameters)
    return body.model_dump_json(exclude_none=True).encode()


def _cached(request: Request, key: tuple[Any, ...], compute: Callable[[], bytes],
            media_type: str = GEOJSON) -> Response:
    """The cached answer for ``key``, or ``compute()`` in an analysis slot."""
    gate = request_gate(request)
    body = _cache(request).get(key, lambda: gate.run(compute))
    return Response(body, media_type=media_type)


@router.get("/api/v1/hotspots", response_model=HotspotCollection)
def get_hotspots(
    conn: Conn, request: Request, settings: AppSettings,
    method: Annotated[Literal["h3", "fishnet", "dbscan"], Query()] = "h3",
    output: Annotated[Literal["areas", "cells"], Query()] = "areas",
    resolution: Annotated[int, Query(ge=7, le=12)] = DEFAULT_RESOLUTION,
    ring: Annotated[int, Query(ge=1, le=5)] = DEFAULT_RING,
    cell_m: Annotated[float, Query(ge=25, le=2000)] = 100.0,
    period: PeriodQuery = None, category: CategoryQuery = None,
    layer: Annotated[str | None, Query(description="site layer")] = None,
    normalise: Annotated[Normalise, Query()] = "none",
    # An int, not Literal[90, 95, 99]: a query string is text, and pydantic matches literals
    # strictly, so "90" was refused; HotspotQuery refuses anything but 90, 95 and 99.
    confidence: Annotated[int, Query(ge=90, le=99, description="90, 95 or 99")] = 95,
    level: Annotated[Level, Query()] = "community",
    eps_m: Annotated[float, Query(gt=0, le=500)] = 25.0,
    min_reports: Annotated[int, Query(ge=2, le=1000)] = 5,
) -> Response:
    """Getis-Ord Gi* hotspots with FDR: merged hot areas with their split across
    jurisdictions and lead unit (``output=areas``), or every study cell with z, p, FDR p and
    class (``output=cells``); ``method=dbscan`` clusters single reports instead."""
    query = _query(method, resolution, ring, cell_m, period, category, layer, normalise,
                   confidence, level)
    params: dict[str, Any] = {"method": method, "output": output, **_describe(query)}
    # The key is read before the data (see layers.analysis.hotspots): never a stale result.
    key = (hotspots.data_version(conn), "hotspots", method, output, query, eps_m, min_reports)
    assigner = _assigner(request, conn)

    limit = budget.limits(settings)

    def features() -> list[HotspotFeature]:
        if method == "dbscan":
            return cluster_features(hotspots.clusters(conn, assigner, query, eps_m=eps_m,
                                                      min_reports=min_reports, limit=limit))
        result = hotspots.hotspots(conn, assigner, query, limit)
        if output == "cells":
            return cell_features(result.cells)
        jurisdictions, units = hotspots.names(conn)
        return area_features(result.areas, jurisdictions, units)

    return _cached(request, key, lambda: _collection(features(), params))


@router.get("/api/v1/hotspots/emerging", response_model=HotspotCollection)
def get_emerging(
    conn: Conn, request: Request, settings: AppSettings,
    method: Annotated[Literal["h3", "fishnet"], Query()] = "h3",
    resolution: Annotated[int, Query(ge=7, le=12)] = DEFAULT_RESOLUTION,
    ring: Annotated[int, Query(ge=1, le=5)] = DEFAULT_RING,
    cell_m: Annotated[float, Query(ge=25, le=2000)] = 100.0,
    period: PeriodQuery = None, category: CategoryQuery = None,
    layer: Annotated[str | None, Query(description="site layer")] = None,
    step_days: Annotated[float, Query(ge=1, le=90)] = 10.0,
    time_window: Annotated[int, Query(ge=0, le=5)] = 1,
    all_cells: bool = False,
) -> Response:
    """Emerging hotspots: Gi* per 10-day step (the inspection cycle), Mann-Kendall trend per
    cell, ArcGIS Pro's categories (new, consecutive, intensifying, persistent, diminishing,
    sporadic, oscillating, historical) and the rebound flag (反弹)."""
    query = _query(method, resolution, ring, cell_m, period, category, layer, "none", 95,
                   "community")
    key = (hotspots.data_version(conn), "emerging", query, step_days, time_window, all_cells)
    assigner = _assigner(request, conn)

    params = {**_describe(query), "step_days": step_days, "time_window": time_window}

    def compute() -> bytes:
        found = hotspots.emerging(conn, assigner, query, step_days=step_days,
                                  time_window=time_window, limit=budget.limits(settings))
        return _collection(emerging_features(found, include_none=all_cells), params)

    return _cached(request, key, compute)


@router.get("/api/v1/sites/chronic", response_model=list[ChronicSite])
def get_chronic(
    conn: Conn, request: Request, settings: AppSettings, period: PeriodQuery = None,
    category: CategoryQuery = None,
    layer: Annotated[str | None, Query(description="site layer")] = None,
    window_days: Annotated[float, Query(gt=0, le=365)] = 14.0,
    min_recurrences: Annotated[int | None, Query(ge=1, le=1000, description=(
        "default: one per 10-day inspection cycle over the period"))] = None,
) -> Response:
    """Sites where the same category recurs within ``window_days`` after closure, ranked by
    recurrences (久治不愈的顽疾); by default chronic means it came back about every cycle."""
    query = _query("h3", DEFAULT_RESOLUTION, DEFAULT_RING, 100.0, period,
                   category, layer, "none", 95, "community")
    key = (hotspots.data_version(conn), "chronic", query, window_days, min_recurrences)

    def compute() -> bytes:
        ranked = hotspots.chronic(conn, query, window_days=window_days,
                                  min_recurrences=min_recurrences,
                                  limit=budget.limits(settings))
        return _SITES.dump_json([ChronicSite(
            rank=i + 1, site=str(r["code"]), name=str(r["name"]), layer=str(r["layer"]),
            category=str(r["category"]), recurrences=int(r["recurrences"]),
            issues=int(r["issues"]), share=round(float(r["share"]), 4),
            site_recurrences=int(r["site_recurrences"]),
            first_reported=r["first_reported"].isoformat(),
            last_reported=r["last_reported"].isoformat())
            for i, r in enumerate(ranked.to_dict("records"))])

    return _cached(request, key, compute, "application/json")


def _assigner(request: Request, conn: Any) -> Assigner:
    cache: AssignerCache = request.app.state.assigner_cache
    return cache.get(conn)


def _describe(query: HotspotQuery) -> dict[str, Any]:
    return {"resolution": query.resolution, "ring": query.ring, "cell_m": query.cell_m,
            "since": query.since.isoformat() if query.since else None,
            "until": query.until.isoformat() if query.until else None,
            "category": list(query.categories), "layer": query.layer,
            "normalise": query.normalise, "confidence": query.confidence,
            "level": query.level, "fdr": "benjamini-hochberg", "p": "two-sided analytic"}
