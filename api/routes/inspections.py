"""``/api/v1/inspections``: inspection rounds (巡查/督查) planned, walked and turned into issues.

Rounds are visible only to the supervision side and leaders (admin, supervisor, inspector,
viewer), never to responsible units or anonymous callers: a unit that saw the next round's
sample could tidy just those sites, which is exactly the last-minute clean-up that
unannounced inspection is meant to defeat.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from api.auth import require_permission
from api.deps import AppSettings, Conn
from api.schemas.inspections import (
    FindingsCreate,
    FindingsCreated,
    PlanCreate,
    RoundCollection,
    StopProperties,
    route_feature,
    stop_feature,
)
from api.services import reporting
from geo.crs import lonlat_to_wgs84
from geo.sampling import RiskWeights
from layers.assignment import AssignerCache
from layers.auth import access
from layers.auth.tokens import Principal
from layers.inspections import rounds, visits
from layers.issues import records

router = APIRouter(prefix="/api/v1/inspections", tags=["inspections"])
GEOJSON = "application/geo+json"
Reader = Annotated[Principal, Depends(require_permission("read_inspections"))]
Planner = Annotated[Principal, Depends(require_permission("plan_inspection"))]
FieldTeam = Annotated[Principal, Depends(require_permission("inspect"))]


def _collection(conn: Conn, round_id: int) -> RoundCollection:
    summary = rounds.get_round(conn, round_id)
    stops = visits.stops(conn, round_id)
    return RoundCollection(
        round=summary, planned_for=summary.planned_for, seed=summary.seed,
        features=[*map(stop_feature, stops),
                  *route_feature(stops, summary.route_length_m, summary.params.get("start"))])


def _geojson(model: RoundCollection, status: int = 200) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), status_code=status, media_type=GEOJSON)


@router.get("", response_model=list[rounds.RoundSummary])
def list_rounds(conn: Conn, _: Reader,
                limit: Annotated[int, Query(ge=1, le=500)] = 50,
                offset: Annotated[int, Query(ge=0)] = 0) -> list[rounds.RoundSummary]:
    """Stored rounds, newest date first, with their progress."""
    return rounds.list_rounds(conn, limit=limit, offset=offset)


@router.post("", status_code=201, response_model=RoundCollection,
             responses={200: {"description": "dry run: the proposal, nothing stored"},
                        409: {"description": "a round is already planned for that date"},
                        422: {"description": "invalid input, or a size too small to visit "
                                             "every community and layer in time"}})
def plan_round(body: PlanCreate, conn: Conn, caller: Planner, settings: AppSettings
               ) -> JSONResponse:
    """Draw the next round (risk-weighted, stratified, seeded) and store it with its route.

    With ``dry_run`` the proposal is returned (200) and nothing is stored.
    """
    request = rounds.PlanRequest(
        size=body.size, seed=body.seed, cover_rounds=body.cover_rounds,
        planned_for=body.planned_for, interval_days=body.interval_days,
        recent_days=body.recent_days, weights=RiskWeights(**body.weights.model_dump()),
        start=body.start)
    if body.dry_run:
        plan = rounds.propose(conn, request, zone=settings.zone)
        stops = visits.proposed(plan.stops, visits.checklists(conn))
        return _geojson(RoundCollection(
            round=None, planned_for=plan.planned_for, seed=plan.seed,
            min_size=plan.min_size, greedy_length_m=plan.greedy_length_m,
            uncoverable=plan.uncoverable,
            features=[*map(stop_feature, stops),
                      *route_feature(stops, plan.route_length_m, plan.params["start"])]))
    stored = rounds.plan_and_store(conn, request, zone=settings.zone, created_by=caller.actor)
    collection = _collection(conn, stored.id)
    collection.min_size = stored.min_size
    collection.greedy_length_m = stored.greedy_length_m
    collection.uncoverable = stored.uncoverable
    response = _geojson(collection, 201)
    response.headers["Location"] = f"/api/v1/inspections/{stored.id}"
    return response


@router.get("/{round_id}", response_model=RoundCollection)
def get_round(round_id: int, conn: Conn, _: Reader) -> JSONResponse:
    """The round as GeoJSON: stops in walking order with their checklist, and the route."""
    return _geojson(_collection(conn, round_id))


@router.post("/{round_id}/stops/{seq}/visit", response_model=StopProperties,
             responses={409: {"description": "already visited; `current` says when and by "
                                             "whom"}})
def visit_stop(round_id: int, seq: int, conn: Conn, caller: FieldTeam) -> StopProperties:
    """Record that the team was at the stop now."""
    return StopProperties.model_validate(
        visits.visit(conn, round_id, seq, actor=caller.actor), from_attributes=True)


@router.post("/{round_id}/findings", status_code=201, response_model=FindingsCreated,
             responses={422: {"description": "invalid findings, listed by index; nothing "
                                             "stored"}})
def record_findings(round_id: int, body: FindingsCreate, conn: Conn, caller: FieldTeam,
                    request: Request) -> FindingsCreated:
    """Store the round's findings as issues (source supervision), all or nothing.

    Each is assigned like any reported issue; one found at a stop (``seq``) also records the
    stop as visited.
    """
    findings = []
    received = datetime.now(UTC)
    for i, f in enumerate(body.findings):
        records.check_reported_at(f.reported_at, received, f"findings[{i}].reported_at")
        access.require_own_evidence(conn, caller, reporting.uploaded_photos(f.photos))
        lon, lat = f.coordinates()
        wlon, wlat = lonlat_to_wgs84(np.array([lon]), np.array([lat]), f.crs)
        findings.append(visits.Finding(
            category=f.category, lon=float(wlon[0]), lat=float(wlat[0]),
            description=f.description, seq=f.seq, photos=tuple(f.photos),
            reported_at=f.reported_at))
    cache: AssignerCache = request.app.state.assigner_cache
    ids = visits.record_findings(conn, cache.get(conn), round_id, findings,
                                            actor=caller.actor, actor_role=caller.role)
    return FindingsCreated(round_id=round_id, issues=ids)
