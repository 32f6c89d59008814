"""``/api/v1/revisions`` (admin, supervisor): the bulk reassignments stored as revisions.

A revision is what an import, a boundary or site edit or ``sitewatch reassign`` did to the
lines and the open issues: who, when, from which file or row, and which issues moved between
which units (layers.revisions). Reading one is bounded: its counts were written with it, and
its changes come a page at a time. ``POST /{id}/revert`` (admin) undoes one (layers.revert).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from geojson_pydantic import Point
from pydantic import BaseModel, ConfigDict, Field

from api.auth import require_permission
from api.deps import Conn
from layers import revert, revisions
from layers.auth.tokens import Principal

router = APIRouter(prefix="/api/v1/revisions", tags=["revisions"])
Reader = Annotated[Principal, Depends(require_permission("read_revisions"))]
# A revert writes the lines back, as an import of them would: the same permission (admin).
Reverter = Annotated[Principal, Depends(require_permission("import_layers"))]
RevisionId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# A revision holds at most one change per issue; paging past ten million is no real request.
MAX_OFFSET = 10_000_000


class ChangeProperties(BaseModel):
    """An issue's answers before and after the revision, by code."""

    category: str
    status: str = Field(description="the issue's status when it moved")
    old_jurisdiction: str | None
    new_jurisdiction: str | None
    old_site: str | None
    new_site: str | None
    old_territorial_unit: str | None
    new_territorial_unit: str | None
    old_functional_unit: str | None
    new_functional_unit: str | None
    old_lead_unit: str | None
    new_lead_unit: str | None


class ChangeFeature(BaseModel):
    """One moved issue as a GeoJSON point Feature (its id the issue's public id)."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: Point
    properties: ChangeProperties

    @classmethod
    def of(cls, change: revisions.Change) -> ChangeFeature:
        """The feature of a stored change."""
        fields = {k: v for k, v in asdict(change).items()
                  if k not in ("public_id", "lon", "lat")}
        return cls(id=change.public_id,
                   geometry=Point.model_validate({"type": "Point",
                                                  "coordinates": [change.lon, change.lat]}),
                   properties=ChangeProperties(**fields))


class ChangeCollection(BaseModel):
    """A page of a revision's changes as a GeoJSON FeatureCollection."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True)

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[ChangeFeature]
    number_matched: int = Field(alias="numberMatched")
    number_returned: int = Field(alias="numberReturned")
    links: list[dict[str, Any]]


class RevisionDetail(BaseModel):
    """A revision, who gained and lost issues in it, and a page of its changes."""

    revision: revisions.Revision
    units: list[revisions.UnitBalance] = Field(
        description="per lead unit: issues gained and lost (and their points at risk), "
                    "biggest gain first")
    pairs: list[revisions.Handover] = Field(
        description="per from -> to pair of lead units (null: unassigned), largest first")
    points_moved: float = Field(
        0.0, description="points at risk that changed hands (issues whose lead unit changed)")
    changes: ChangeCollection


@router.get("", response_model=list[revisions.Revision])
def list_revisions(
    conn: Conn, _: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[revisions.Revision]:
    """Revisions, newest first, with who made them, from what, and how many issues moved."""
    return revisions.list_revisions(conn, limit=limit, offset=offset)


@router.get("/{revision_id}", response_model=RevisionDetail)
def get_revision(
    conn: Conn, _: Reader, request: Request, revision_id: RevisionId,
    limit: Annotated[int, Query(ge=1, le=revisions.MAX_CHANGES_PAGE,
                                description="changes per page")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> RevisionDetail:
    """One revision: its counts per unit gained/lost and per from -> to pair, and a page of
    the issues it moved as GeoJSON points with their old and new units."""
    found = revisions.summary(conn, revision_id)
    rows = revisions.changes(conn, revision_id, limit=limit, offset=offset)
    total = found.revision.changed
    links = [{"rel": "self", "href": str(request.url), "type": "application/json"}]
    if offset + len(rows) < total:
        links.append({"rel": "next", "type": "application/json",
                      "href": str(request.url.include_query_params(offset=offset + limit))})
    return RevisionDetail(
        revision=found.revision, units=found.units, pairs=found.pairs,
        points_moved=found.points_moved,
        changes=ChangeCollection.model_validate({
            "features": [ChangeFeature.of(r) for r in rows], "numberMatched": total,
            "numberReturned": len(rows), "links": links}))


class RevertRequest(BaseModel):
    """Why the revision is reverted (kept as the revert revision's note)."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=4000)


class Reverted(BaseModel):
    """The revert revision stored, and what it put back."""

    revision: int = Field(description="the new revision, of kind 'revert'")
    reverts: int = Field(description="the revision reverted")
    lines: int = Field(description="jurisdictions, sites and rules put back as they were")
    examined: int = Field(description="open issues assigned again")
    changed: int = Field(description="open issues whose answer changed back")


@router.post("/{revision_id}/revert", status_code=201, response_model=Reverted, responses={
    409: {"description": "a line it changed was changed again since (the later revision is "
                         "named: revert it first), already reverted, changed no lines, or "
                         "stored before the lines' history was kept (problem+json)"}})
def revert_revision(
    conn: Conn, caller: Reverter, revision_id: RevisionId, response: Response,
    body: Annotated[RevertRequest | None, Body()] = None,
) -> Reverted:
    """Put the lines and rules the revision changed back as they were just before it, and
    reassign the open issues by them; stored as a new revision naming the reverted one."""
    done = revert.revert(conn, revision_id, actor=caller.actor,
                         note=body.note if body is not None else None)
    response.headers["Location"] = f"/api/v1/revisions/{done.revision}"
    return Reverted(revision=done.revision, reverts=done.reverts, lines=done.lines,
                    examined=done.examined, changed=done.changed)
