"""Request and response models of the reference-data REST API (``/api/v1``).

Units, categories and site layers are plain JSON; jurisdictions and sites are GeoJSON
(RFC 7946) Features in EPSG:4326. Input geometry is checked here, with the reason, before
anything touches the database: readable, non-empty, inside lon/lat range and OGC-valid.
A unit is answered as ``layers.catalog.units.Unit`` itself; the models below that answer
describe or reshape a ``layers.catalog`` record, built from it field by field (so that a
renamed field fails mypy).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

import numpy as np
import shapely
import shapely.geometry
from geojson_pydantic import Feature, FeatureCollection, MultiPolygon, Point, Polygon
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    model_validator,
)

from layers.catalog import categories, jurisdictions, sites
from layers.errors import ValidationFailed
from layers.vocab import CampaignAction, Level, UnitKind

Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]
CategoryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2,6}-[0-9]{2,3}$")]
LayerCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
# English names run longer than Chinese ones; the schema allows 200 characters for them.
EnglishName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                               max_length=200)]
ShortText = Annotated[str, StringConstraints(max_length=100)]
BufferM = Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)]
IntervalDays = Annotated[int, Field(ge=1, le=366)]
Points = Annotated[float, Field(ge=0, le=9999.99, allow_inf_nan=False)]
DeadlineHours = Annotated[int, Field(ge=1, le=8760)]
WorkingDays = Annotated[int, Field(ge=1, le=60)]
BBox = tuple[float, float, float, float]

G = TypeVar("G", Point, Polygon, MultiPolygon)


def valid_geometry(geometry: G) -> G:
    """Reject geometry PostGIS should never see, saying why (shapely's validity reason)."""
    try:
        shape = shapely.geometry.shape(geometry.model_dump(mode="python"))
    except (ValueError, TypeError, IndexError, shapely.errors.GEOSException):
        raise ValueError("the geometry cannot be read as GeoJSON") from None
    if shape.is_empty:
        raise ValueError("the geometry is empty")
    xy = shapely.get_coordinates(shape)
    if not (np.isfinite(xy).all() and (np.abs(xy[:, 0]) <= 180).all()
            and (np.abs(xy[:, 1]) <= 90).all()):
        raise ValueError("coordinates must be longitude -180..180 and latitude -90..90 "
                         "(EPSG:4326, longitude first)")
    if not shape.is_valid:
        raise ValueError(f"the geometry is not valid: {shapely.is_valid_reason(shape)}")
    return geometry


AreaGeometry = Annotated[Polygon | MultiPolygon, Field(discriminator="type"),
                         AfterValidator(valid_geometry)]
SiteGeometry = Annotated[Point | Polygon | MultiPolygon, Field(discriminator="type"),
                         AfterValidator(valid_geometry)]


def parse_bbox(text: str) -> BBox:
    """``minx,miny,maxx,maxy`` in EPSG:4326 as four floats; ValidationFailed otherwise."""
    try:
        minx, miny, maxx, maxy = (float(part) for part in text.split(","))
    except ValueError:
        raise ValidationFailed("bbox must be four numbers: minx,miny,maxx,maxy") from None
    box = (minx, miny, maxx, maxy)
    if not all(math.isfinite(v) for v in box) or not (
            -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise ValidationFailed("bbox must be minx<=maxx within -180..180 and miny<=maxy "
                               "within -90..90 (EPSG:4326)")
    return box


class Patch(BaseModel):
    """A partial update: only the fields sent change; ``null`` clears a nullable field."""

    model_config = ConfigDict(extra="forbid")
    not_null: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _required_fields_not_null(self) -> Self:
        nulls = [f for f in self.not_null if f in self.model_fields_set
                 and getattr(self, f) is None]
        if nulls:
            raise ValueError(f"may not be null: {', '.join(nulls)}")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, as plain values."""
        return self.model_dump(mode="json", exclude_unset=True)


# -- units -----------------------------------------------------------------------------------

class UnitCreate(BaseModel):
    """A new unit."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "code": "WSJ", "name": "卫生健康局", "name_en": "Health Commission",
        "kind": "functional", "leader": "王主任", "contact": "0512-6500 0000"}]})

    code: Code
    name: Name
    kind: UnitKind
    name_en: EnglishName | None = None
    leader: ShortText | None = None
    contact: ShortText | None = None


class UnitPatch(Patch):
    """Changes to a unit."""

    not_null = ("code", "name", "kind")
    code: Code | None = None
    name: Name | None = None
    kind: UnitKind | None = None
    name_en: EnglishName | None = None
    leader: ShortText | None = None
    contact: ShortText | None = None


# -- categories and site layers ---------------------------------------------------------------

class Category(BaseModel):
    """A problem category of the assessment standard (测评标准)."""

    code: str
    name_zh: str
    name_en: str
    site_layer: str | None
    functional_unit: str | None = Field(description="default functional unit's code")
    deadline_hours: int
    deadline_working_days: int | None = Field(
        None, description="when set, the deadline is this many working days (holidays and "
                          "make-up working days per the calendar) instead of deadline_hours")
    points: float
    dcm_event_class: str | None
    active: bool
    campaign_action: CampaignAction | None = Field(
        None, description="which of the campaign's five rectification actions (五大整治行动) "
                          "it belongs to; the report page groups its categories so")

    @classmethod
    def of(cls, c: categories.Category) -> Category:
        """The answer for a category of the catalog."""
        return cls(code=c.code, name_zh=c.name_zh, name_en=c.name_en, site_layer=c.site_layer,
                   functional_unit=c.functional_unit, deadline_hours=c.deadline_hours,
                   deadline_working_days=c.deadline_working_days, points=c.points,
                   dcm_event_class=c.dcm_event_class, active=c.active,
                   campaign_action=c.campaign_action)


class CategoryCreate(BaseModel):
    """A new problem category."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "code": "MKT-09", "name_zh": "活禽宰杀区不洁", "name_en": "Unclean poultry area",
        "site_layer": "market", "functional_unit": "SCJG", "deadline_hours": 48,
        "points": 0.3}]})

    code: CategoryCode
    name_zh: Name
    name_en: EnglishName
    deadline_hours: DeadlineHours
    points: Points
    deadline_working_days: WorkingDays | None = None
    site_layer: LayerCode | None = None
    functional_unit: Code | None = None
    dcm_event_class: Annotated[str, StringConstraints(max_length=200)] | None = None
    active: bool = True
    campaign_action: CampaignAction | None = None


class CategoryPatch(Patch):
    """Changes to a category; ``active: false`` retires it (categories are never deleted)."""

    not_null = ("name_zh", "name_en", "deadline_hours", "points", "active")
    name_zh: Name | None = None
    name_en: EnglishName | None = None
    deadline_hours: DeadlineHours | None = None
    deadline_working_days: WorkingDays | None = None
    points: Points | None = None
    site_layer: LayerCode | None = None
    functional_unit: Code | None = None
    dcm_event_class: Annotated[str, StringConstraints(max_length=200)] | None = None
    active: bool | None = None
    campaign_action: CampaignAction | None = None


class SiteLayer(BaseModel):
    """A site layer (market, construction site, ...); built-in ones ship with the schema."""

    code: str
    name_zh: str
    name_en: str
    builtin: bool
    public_attributes: list[str] = Field(
        description="attribute names the public OGC API collection shows; the others are "
                    "read with a token only")

    @classmethod
    def of(cls, layer: sites.SiteLayer) -> SiteLayer:
        """The answer for a site layer."""
        return cls(code=layer.code, name_zh=layer.name_zh, name_en=layer.name_en,
                   builtin=layer.builtin, public_attributes=layer.public_attributes)


# An imported attribute column's name, as the public whitelist names it.
AttributeName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
PublicAttributes = Annotated[list[AttributeName], Field(max_length=200)]


class SiteLayerCreate(BaseModel):
    """A new site layer added by an admin."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "code": "school", "name_zh": "校园周边", "name_en": "School surroundings",
        "public_attributes": ["school_name"]}]})

    code: LayerCode
    name_zh: Name
    name_en: EnglishName
    public_attributes: PublicAttributes = []


class SiteLayerPatch(BaseModel):
    """Changes to a site layer: its names, or which attributes the public sees."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "public_attributes": ["property_management", "households"]}]})

    name_zh: Name | None = None
    name_en: EnglishName | None = None
    public_attributes: PublicAttributes | None = None

    def changes(self) -> dict[str, Any]:
        """The fields the request sets."""
        return self.model_dump(exclude_unset=True)


# -- jurisdictions ---------------------------------------------------------------------------

class JurisdictionProperties(BaseModel):
    """A jurisdiction's properties; ``parent`` and ``unit`` are codes."""

    code: str
    name: str
    level: Level
    parent: str | None
    unit: str | None


class JurisdictionCreateProperties(BaseModel):
    """Properties of a new jurisdiction."""

    model_config = ConfigDict(extra="forbid")

    code: Code
    name: Name
    level: Level
    parent: Code | None = None
    unit: Code | None = None


_SQUARE: JsonValue = [[[120.60, 31.30], [120.61, 31.30], [120.61, 31.31], [120.60, 31.31],
            [120.60, 31.30]]]


class JurisdictionCreate(BaseModel):
    """A GeoJSON Feature: Polygon or MultiPolygon in EPSG:4326 (stored as MultiPolygon)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "type": "Feature", "geometry": {"type": "Polygon", "coordinates": _SQUARE},
        "properties": {"code": "XH001007", "name": "星湖社区第7网格", "level": "grid",
                       "parent": "XH001", "unit": "C01"}}]})

    type: Literal["Feature"]
    geometry: AreaGeometry
    properties: JurisdictionCreateProperties


class JurisdictionPatchProperties(Patch):
    """Changed properties of a jurisdiction."""

    not_null = ("code", "name", "level")
    code: Code | None = None
    name: Name | None = None
    level: Level | None = None
    parent: Code | None = None
    unit: Code | None = None


class JurisdictionPatch(Patch):
    """A partial GeoJSON Feature: new properties and/or a new geometry."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{
        "type": "Feature", "properties": {"name": "星湖社区第七网格"}}]})
    not_null = ("geometry",)

    type: Literal["Feature"] = "Feature"
    geometry: AreaGeometry | None = None
    properties: JurisdictionPatchProperties | None = None

    def changes(self) -> dict[str, Any]:
        """Property changes plus ``geometry`` (a GeoJSON dict) when one was sent."""
        changes = self.properties.changes() if self.properties else {}
        if self.geometry is not None:
            changes["geometry"] = self.geometry.model_dump(mode="json", exclude_none=True)
        return changes


JurisdictionFeature = Feature[MultiPolygon, JurisdictionProperties]
JurisdictionCollection = FeatureCollection[JurisdictionFeature]


def jurisdiction_feature(j: jurisdictions.Jurisdiction) -> JurisdictionFeature:
    """A Feature (id = code) of a jurisdiction."""
    properties = JurisdictionProperties(code=j.code, name=j.name, level=j.level,
                                        parent=j.parent, unit=j.unit)
    return JurisdictionFeature.model_validate(
        {"type": "Feature", "id": j.code, "geometry": j.geometry, "properties": properties})


# -- sites -----------------------------------------------------------------------------------

class SiteProperties(BaseModel):
    """A site's properties; ``unit`` is the responsible unit's code."""

    code: str | None
    name: str
    layer: str
    unit: str | None
    buffer_m: float = Field(description="surroundings (及周边) in metres")
    inspection_interval_days: int | None
    attributes: dict[str, Any]


class SiteCreateProperties(BaseModel):
    """Properties of a new site; ``attributes`` holds layer-specific facts."""

    model_config = ConfigDict(extra="forbid")

    code: Code
    name: Name
    layer: LayerCode
    unit: Code | None = None
    buffer_m: BufferM = 0.0
    inspection_interval_days: IntervalDays | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class SiteCreate(BaseModel):
    """A GeoJSON Feature: Point, Polygon or MultiPolygon in EPSG:4326."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "type": "Feature", "geometry": {"type": "Polygon", "coordinates": _SQUARE},
        "properties": {"code": "NM09", "name": "星湖农贸市场", "layer": "market",
                       "unit": "C01", "buffer_m": 50, "inspection_interval_days": 7,
                       "attributes": {"stalls": 120, "operator": "星湖市场管理公司"}}}]})

    type: Literal["Feature"]
    geometry: SiteGeometry
    properties: SiteCreateProperties


class SitePatchProperties(Patch):
    """Changed properties of a site."""

    not_null = ("code", "name", "layer", "buffer_m", "attributes")
    code: Code | None = None
    name: Name | None = None
    layer: LayerCode | None = None
    unit: Code | None = None
    buffer_m: BufferM | None = None
    inspection_interval_days: IntervalDays | None = None
    attributes: dict[str, Any] | None = None


class SitePatch(Patch):
    """A partial GeoJSON Feature: new properties and/or a new geometry."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{
        "type": "Feature", "properties": {"buffer_m": 100}}]})
    not_null = ("geometry",)

    type: Literal["Feature"] = "Feature"
    geometry: SiteGeometry | None = None
    properties: SitePatchProperties | None = None

    def changes(self) -> dict[str, Any]:
        """Property changes plus ``geometry`` (a GeoJSON dict) when one was sent."""
        changes = self.properties.changes() if self.properties else {}
        if self.geometry is not None:
            changes["geometry"] = self.geometry.model_dump(mode="json", exclude_none=True)
        return changes


SiteFeature = Feature[Point | Polygon | MultiPolygon, SiteProperties]
SiteCollection = FeatureCollection[SiteFeature]


def site_feature(s: sites.Site) -> SiteFeature:
    """A Feature (id = code) of a site."""
    properties = SiteProperties(code=s.code, name=s.name, layer=s.layer, unit=s.unit,
                                buffer_m=s.buffer_m,
                                inspection_interval_days=s.inspection_interval_days,
                                attributes=s.attributes)
    return SiteFeature.model_validate(
        {"type": "Feature", "id": s.code, "geometry": s.geometry, "properties": properties})
