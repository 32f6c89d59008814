"""``/api/v1/issues``: report a problem (stored already assigned), list, read, audit trail."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from api.auth import Caller, MaybeCaller, require_permission
from api.deps import AppSettings, Conn
from api.periods import read_period
from api.schemas.catalog import parse_bbox
from api.schemas.history import IssueAsOf
from api.schemas.issues import (
    IssueCollection,
    IssueCreate,
    IssueCreated,
    IssueFeature,
    Nearby,
    TransitionRequest,
    feature,
)
from api.services import reporting
from geo.crs import lonlat_to_wgs84
from layers import history
from layers.auth import access
from layers.auth.tokens import Principal
from layers.issues import lifecycle, records
from layers.vocab import Status

router = APIRouter(prefix="/api/v1/issues", tags=["issues"])
GEOJSON = "application/geo+json"
Reporter = Annotated[Principal, Depends(require_permission("report"))]


def _geojson(model: IssueFeature | IssueCreated | IssueCollection, status: int = 200
             ) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json", by_alias=True), status_code=status,
                        media_type=GEOJSON)


@router.post("", status_code=201, response_model=IssueCreated,
             responses={422: {"description": "invalid input (problem+json)"}})
def create_issue(body: IssueCreate, conn: Conn, caller: Reporter, request: Request,
                 nearby_radius_m: Annotated[float, Query(gt=0, le=500)] = 50.0
                 ) -> JSONResponse:
    """Report a problem; it is stored already assigned to its ground, site and units.

    Coordinates are converted to WGS84 from the declared ``crs`` first. The response carries
    open issues of the same category within ``nearby_radius_m`` (possible duplicates).
    With an ``Idempotency-Key`` header, a retry of the same request returns the issue the
    first one created (header ``Idempotent-Replayed: true``) instead of a second issue.
    """
    lon, lat = body.coordinates()
    wlon, wlat = lonlat_to_wgs84(np.array([lon]), np.array([lat]), body.crs)
    new = records.NewIssue(
        category=body.category, lon=float(wlon[0]), lat=float(wlat[0]),
        description=body.description, source=body.source, reported_at=body.reported_at,
        photos=tuple(body.photos), reporter=body.reporter or caller.name or caller.role,
        reporter_contact=body.reporter_contact)
    public_id, replayed = reporting.report(conn, request, caller, new,
                                           body.model_dump(mode="json"))
    created = feature(records.get(conn, public_id))
    nearby = [Nearby(id=n.public_id, status=n.status, reported_at=n.reported_at,
                     distance_m=n.distance_m)
              for n in records.nearby_open(conn, public_id, nearby_radius_m)]
    response = _geojson(IssueCreated(**created.model_dump(), nearby=nearby), 201)
    response.headers["Location"] = f"/api/v1/issues/{public_id}"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _bbox(value: str | None) -> tuple[float, float, float, float] | None:
    return None if value is None else parse_bbox(value)


@router.get("", response_model=IssueCollection)
def list_issues(
    conn: Conn,
    request: Request,
    caller: MaybeCaller,
    settings: AppSettings,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat")] = None,
    status: Annotated[list[Status] | None, Query()] = None,
    category: Annotated[list[str] | None, Query()] = None,
    unit: Annotated[str | None, Query(description="unit code (lead, territorial or "
                                                  "functional)")] = None,
    jurisdiction: Annotated[str | None, Query(description="jurisdiction code")] = None,
    site: Annotated[str | None, Query(description="site code")] = None,
    since: Annotated[str | None, Query(max_length=40, description=(
        "reported at or after: ISO 8601 date or date-time (a date: its first instant)"))
    ] = None,
    until: Annotated[str | None, Query(max_length=40, description=(
        "reported before: ISO 8601 date or date-time (a date: the whole day)"))] = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    """Issues as GeoJSON, newest first, with filters and paging links."""
    period = read_period(conn, settings, since=since, until=until)
    rows, total = records.list_issues(conn, records.IssueFilter(
        bbox=_bbox(bbox), status=status or (), category=category or (), unit=unit,
        jurisdiction=jurisdiction, site=site, since=period.since, until=period.until,
        overdue=overdue,
        limit=limit, offset=offset))
    rows = _shown(conn, caller, rows)
    links = [{"rel": "self", "href": str(request.url), "type": GEOJSON}]
    if offset + len(rows) < total:
        links.append({"rel": "next", "type": GEOJSON,
                      "href": str(request.url.include_query_params(offset=offset + limit))})
    return _geojson(IssueCollection.model_validate({
        "features": [feature(r) for r in rows], "numberMatched": total,
        "numberReturned": len(rows), "links": links}))


@router.get("/{public_id}", response_model=IssueAsOf | IssueFeature)
def get_issue(
    public_id: str, conn: Conn, caller: MaybeCaller,
    as_of: Annotated[str | None, Query(min_length=1, max_length=40, description=(
        "reported, or an ISO 8601 date-time with offset: adds `as_of`, the ground and units "
        "the system answered then (from the issue's trail) and the lines valid then"))] = None,
) -> JSONResponse:
    """One issue as a GeoJSON Feature (reporter fields for admins and supervisors; photos
    for a unit only when the issue is its own); with ``as_of``, also as it stood then."""
    when = None if as_of is None else history.parse_as_of(as_of)
    [row] = _shown(conn, caller, [records.get(conn, public_id)])
    if when is None:
        return _geojson(feature(row))
    return _geojson(IssueAsOf.of(feature(row), history.as_of(conn, public_id, when)))


def _shown(conn: Conn, caller: Principal | None, rows: list[records.Issue]
           ) -> list[records.Issue]:
    """The issues as ``caller`` may see them (docs/access.md, "what a caller sees")."""
    if not rows:
        return rows
    own = access.unit_code(conn, caller)
    # An empty list, not null: clients iterate over photos; docs/access.md says it is empty
    # for a unit on another unit's issue.
    rows = [r if access.sees_photos(caller, r.units, own) else replace(r, photos=[])
            for r in rows]
    if not access.sees_personal_data(caller):
        return rows
    personal = access.personal_data(conn, [r.public_id for r in rows])
    return [replace(r, reporter=p.reporter, reporter_contact=p.reporter_contact)
            if (p := personal.get(r.public_id)) else r for r in rows]


@router.get("/{public_id}/events", response_model=list[records.IssueEvent])
def issue_events(public_id: str, conn: Conn, caller: Caller) -> list[records.IssueEvent]:
    """The issue's audit trail, oldest first (a unit: of its own issues only)."""
    access.require_issue_detail(conn, caller, public_id)
    return records.events(conn, public_id)


@router.post("/{public_id}/transitions", response_model=IssueFeature,
             responses={409: {"description": "stale version or impossible from the current "
                                             "status; the problem carries `current`"},
                        403: {"description": "the caller's role or unit may not do this"}})
def transition(public_id: str, body: TransitionRequest, conn: Conn, caller: Caller
               ) -> JSONResponse:
    """Move the issue through its lifecycle (交办, 整改, 核查, 返工, 不予受理, 重复, 延期).

    Checked against the caller's role and unit, written to the audit trail in the same
    transaction, and refused with 409 when ``version`` is not the current one.
    """
    lifecycle.apply(conn, public_id, lifecycle.Transition(
        action=body.action, version=body.version, note=body.note, unit=body.unit,
        duplicate_of=body.duplicate_of, deadline=body.deadline,
        evidence=tuple(body.evidence)), caller)
    [row] = _shown(conn, caller, [records.get(conn, public_id)])
    return _geojson(feature(row))
