"""Request and response models of the issue routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from geojson_pydantic import Point
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from geo.crs import CrsName
from layers.issues.records import Issue, TrafficLight
from layers.text import unsafe_character
from layers.vocab import Action, Source, Status

InputCrs = CrsName


def _printable(text: str) -> str:
    problem = unsafe_character(text)
    if problem is not None:
        raise ValueError(f"control characters are not allowed (found {problem})")
    return text


# Free text a person typed: no control characters (they break XML feeds and workbooks).
Text = Annotated[str, AfterValidator(_printable)]


class FoundAt(BaseModel):
    """Where and when a problem was found: a GeoJSON point or lon/lat, in a declared CRS.

    Shared by every way a problem comes in (a report, an inspection round's finding).
    """

    location: Point | None = Field(None, description="GeoJSON Point; or give lon and lat")
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    crs: InputCrs = Field("wgs84", description="CRS of the coordinates: phones in China "
                                                "usually give gcj02")
    reported_at: datetime | None = Field(None, description="when found; default now")
    photos: list[str] = Field(default_factory=list, max_length=9)

    @model_validator(mode="after")
    def _one_location(self) -> Self:
        has_point = self.location is not None
        has_lonlat = self.lon is not None and self.lat is not None
        if has_point == has_lonlat or (self.lon is None) != (self.lat is None):
            raise ValueError("give either location (GeoJSON Point) or both lon and lat")
        if self.reported_at is not None and self.reported_at.tzinfo is None:
            raise ValueError("reported_at needs a time zone, e.g. 2026-05-03T09:00:00+08:00")
        if any(len(p) > 500 for p in self.photos):
            raise ValueError("a photo reference is at most 500 characters")
        return self

    def coordinates(self) -> tuple[float, float]:
        """(lon, lat) as given, in ``crs``."""
        if self.location is not None:
            return float(self.location.coordinates[0]), float(self.location.coordinates[1])
        assert self.lon is not None and self.lat is not None
        return self.lon, self.lat


class IssueCreate(FoundAt):
    """A new problem: where (a GeoJSON point, or lon/lat) in a declared CRS, what and who."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [
            {"category": "MKT-01", "lon": 120.7012, "lat": 31.3105, "crs": "gcj02",
             "description": "农贸市场北门外占道经营，三个摊位", "source": "self_inspection"},
            {"category": "CON-02", "location": {"type": "Point", "coordinates": [120.69, 31.3]},
             "description": "工地东侧裸土未覆盖", "source": "supervision",
             "photos": ["https://example.org/p/1.jpg"]},
        ]},
    )

    category: str = Field(min_length=1, max_length=20, description="category code, e.g. CTY-05")
    description: Text = Field(min_length=1, max_length=4000)
    source: Source = "self_inspection"
    reporter: Text | None = Field(None, max_length=100)
    reporter_contact: Text | None = Field(None, max_length=100)


class IssueProperties(BaseModel):
    """An issue's fields, with its ground, site and units by code and name."""

    id: str = Field(description="the public id, also Open311 service_request_id")
    category: str
    category_zh: str
    category_en: str
    description: str
    photos: list[str] = Field(description="photo references (sha256: or URLs); empty for a "
                                          "unit token on another unit's issue")
    source: Source
    status: Status
    reported_at: datetime
    deadline: datetime | None
    closed_at: datetime | None
    overdue: bool
    traffic_light: TrafficLight | None = Field(
        description="green < 80% of the time allowed, yellow up to the deadline, red after; "
                    "none when closed")
    jurisdiction: str | None
    jurisdiction_name: str | None
    territorial_unit: str | None
    functional_unit: str | None
    lead_unit: str | None
    lead_unit_name: str | None
    site: str | None
    site_name: str | None
    on_boundary: bool
    outside_all: bool
    via_buffer: bool
    street: str | None = Field(None, description="the street (街道) of the issue's ground")
    on_street_border: bool = Field(
        False, description="on the border between two streets (the district settles it)")
    rework_count: int
    version: int
    reporter: str | None = Field(None, description="admin and supervisor only")
    reporter_contact: str | None = Field(None, description="admin and supervisor only")


class IssueFeature(BaseModel):
    """An issue as a GeoJSON Feature."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: Point
    properties: IssueProperties


class Nearby(BaseModel):
    """An open issue of the same category close by: perhaps the same problem."""

    id: str
    status: Status
    reported_at: datetime
    distance_m: float


class IssueCreated(IssueFeature):
    """The stored issue, already assigned, with possible duplicates nearby."""

    nearby: list[Nearby]


class IssueCollection(BaseModel):
    """A page of issues as a GeoJSON FeatureCollection."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[IssueFeature]
    number_matched: int = Field(alias="numberMatched")
    number_returned: int = Field(alias="numberReturned")
    links: list[dict[str, Any]]


class TransitionRequest(BaseModel):
    """A lifecycle action on an issue, with the version the caller last saw."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [
            {"action": "rectify", "version": 2, "note": "已清理", "evidence": ["sha256:ab12..."]},
            {"action": "reopen", "version": 3, "note": "仍有摊位占道"},
            {"action": "extend_deadline", "version": 2,
             "deadline": "2026-06-05T18:00:00+08:00", "note": "需协调市政"},
        ]},
    )

    action: Action
    version: int = Field(ge=1, description="the issue's version as last read (optimistic "
                                           "locking: a stale version gets 409)")
    note: Text | None = Field(None, max_length=4000)
    unit: str | None = Field(None, max_length=40, description="assign: lead unit code")
    duplicate_of: str | None = Field(None, max_length=40,
                                     description="mark_duplicate: the original's id")
    deadline: datetime | None = Field(None, description="extend_deadline: the new deadline")
    evidence: list[str] = Field(default_factory=list, max_length=9,
                                description="rectify: references to 'after' photos")


def feature(row: Issue) -> IssueFeature:
    """An IssueFeature from an issue of ``layers.issues.records``."""
    properties = IssueProperties(
        id=row.public_id, category=row.category, category_zh=row.category_zh,
        category_en=row.category_en, description=row.description, photos=row.photos,
        source=row.source, status=row.status, reported_at=row.reported_at,
        deadline=row.deadline, closed_at=row.closed_at, overdue=row.overdue,
        traffic_light=row.traffic_light, jurisdiction=row.jurisdiction,
        jurisdiction_name=row.jurisdiction_name, territorial_unit=row.territorial_unit,
        functional_unit=row.functional_unit, lead_unit=row.lead_unit,
        lead_unit_name=row.lead_unit_name, site=row.site, site_name=row.site_name,
        on_boundary=row.on_boundary, outside_all=row.outside_all, via_buffer=row.via_buffer,
        street=row.street, on_street_border=row.on_street_border,
        rework_count=row.rework_count, version=row.version, reporter=row.reporter,
        reporter_contact=row.reporter_contact)
    return IssueFeature(id=row.public_id,
                        geometry=Point.model_validate(
                            {"type": "Point", "coordinates": [row.lon, row.lat]}),
                        properties=properties)

