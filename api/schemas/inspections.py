"""Request and response models of the inspection-round routes (``/api/v1/inspections``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal

from geojson_pydantic import LineString, Point
from pydantic import BaseModel, ConfigDict, Field

from api.schemas.issues import FoundAt
from layers.inspections.rounds import RoundSummary
from layers.inspections.visits import ChecklistItem, Stop


class Weights(BaseModel):
    """Weights of the risk score (geo.sampling.risk_scores); defaults when omitted."""

    model_config = ConfigDict(extra="forbid")

    recent: float = Field(1.0, ge=0, le=100, allow_inf_nan=False)
    open: float = Field(1.0, ge=0, le=100, allow_inf_nan=False)
    overdue: float = Field(2.0, ge=0, le=100, allow_inf_nan=False)
    stale: float = Field(1.0, ge=0, le=100, allow_inf_nan=False)
    stale_cap: float = Field(3.0, ge=0, le=100, allow_inf_nan=False)


class PlanCreate(BaseModel):
    """How to draw the next round; every field has a default."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [
            {"size": 8, "cover_rounds": 3},
            {"size": 10, "seed": 20261201, "planned_for": "2026-12-01", "dry_run": True,
             "start": [120.70, 31.31], "weights": {"overdue": 3.0}},
        ]},
    )

    size: int = Field(8, ge=1, le=500, description="places to visit")
    seed: int | None = Field(None, ge=0, le=2**31 - 1,
                             description="random seed; drawn and stored when omitted")
    cover_rounds: int = Field(3, ge=1, le=52, description="every community and layer is "
                                                          "visited within this many rounds")
    planned_for: date | None = Field(None, description="default: last round + interval_days, "
                                                       "at least today")
    interval_days: int = Field(10, ge=1, le=366)
    recent_days: int = Field(90, ge=1, le=3660,
                             description="issues reported this many days back count as recent")
    weights: Weights = Field(default_factory=lambda: Weights.model_validate({}))
    start: tuple[float, float] | None = Field(None, description="WGS84 [lon, lat] where the "
                                                                "walk starts")
    dry_run: bool = Field(False, description="only propose: nothing is stored")


# A layers.inspections.visits.Stop without its coordinates (the feature's geometry), plus
# the kind that tells stops from the route.
class StopProperties(BaseModel):
    """A stop: the site, why it was drawn, what to check, what was found."""

    kind: Literal["stop"] = "stop"
    seq: int
    site_code: str | None
    site_name: str | None
    layer: str
    community: str | None
    community_name: str | None
    risk: float
    reason: dict[str, Any] = Field(description="why: 'stratum' (with the community or layer "
                                               "it covers) or 'risk' (weighted draw)")
    visited_at: datetime | None = None
    visited_by: str | None = None
    checklist: list[ChecklistItem]
    findings: list[str] = Field(default_factory=list, description="issue ids found here")


class StopFeature(BaseModel):
    """A stop as a GeoJSON Feature."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: Point
    properties: StopProperties


class RouteProperties(BaseModel):
    """The walking route through the stops."""

    kind: Literal["route"] = "route"
    length_m: float


class RouteFeature(BaseModel):
    """The route as a GeoJSON LineString Feature (absent with fewer than two stops)."""

    type: Literal["Feature"] = "Feature"
    id: str = "route"
    geometry: LineString
    properties: RouteProperties


class RoundCollection(BaseModel):
    """A round as GeoJSON: its stops in walking order, then the route line."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    round: RoundSummary | None = Field(description="the stored round; null for a dry run")
    planned_for: date
    seed: int
    min_size: int | None = None
    greedy_length_m: float | None = None
    uncoverable: list[str] = Field(default_factory=list,
                                   description="communities without sites: no round of "
                                               "sites can visit them")
    features: list[StopFeature | RouteFeature]


class FindingCreate(FoundAt):
    """A problem found on the round; it becomes an issue (source supervision)."""

    model_config = ConfigDict(extra="forbid")

    category: str = Field(min_length=1, max_length=20)
    description: str = Field(min_length=1, max_length=4000)
    seq: int | None = Field(None, ge=1, description="the stop it was found at")


class FindingsCreate(BaseModel):
    """Findings of a round, stored all or nothing."""

    model_config = ConfigDict(extra="forbid")

    findings: list[FindingCreate] = Field(min_length=1, max_length=200)


class FindingsCreated(BaseModel):
    """The issues the findings became, in input order."""

    round_id: int
    issues: list[str]


def stop_feature(stop: Stop) -> StopFeature:
    """A StopFeature from a stop (stored or proposed)."""
    return StopFeature(
        id=f"stop-{stop.seq}",
        geometry=Point.model_validate({"type": "Point", "coordinates": [stop.lon, stop.lat]}),
        properties=StopProperties.model_validate(stop, from_attributes=True))


def route_feature(stops: Sequence[Stop], length_m: float,
                  start: list[float] | None = None) -> list[RouteFeature]:
    """The route from ``start`` (if any) through ``stops`` in order, as a list of at most one
    feature (none when fewer than two points)."""
    coordinates = ([start] if start else []) + [[s.lon, s.lat] for s in stops]
    if len(coordinates) < 2:
        return []
    return [RouteFeature(
        geometry=LineString.model_validate({"type": "LineString",
                                            "coordinates": coordinates}),
        properties=RouteProperties(length_m=length_m))]
