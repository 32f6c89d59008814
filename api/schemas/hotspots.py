"""Hotspot responses: GeoJSON features whose properties are typed models."""

from __future__ import annotations

from typing import Any, Literal

from geojson_pydantic import MultiPolygon, Polygon
from pydantic import BaseModel


class Share(BaseModel):
    """One jurisdiction's share of a hotspot area's surface."""

    jurisdiction: str
    name: str
    share: float


class Unit(BaseModel):
    """A responsible unit, by code and name."""

    code: str
    name: str


class CellProperties(BaseModel):
    """A study cell: count, the analysed value, Gi* z, two-sided p, FDR-adjusted p, class."""

    cell: str
    count: int
    value: float
    z: float
    p: float
    p_fdr: float
    gi_bin: int


class AreaProperties(BaseModel):
    """A merged hotspot area with its split across jurisdictions and its units."""

    area_id: int
    issue_count: int
    peak_z: float
    area_km2: float
    cells: int
    categories: list[tuple[str, int]]
    shares: list[Share]
    share_text: str
    outside_share: float
    jurisdiction: str | None
    territorial_unit: Unit | None
    functional_unit: Unit | None
    lead_unit: Unit | None


class EmergingProperties(BaseModel):
    """A cell's emerging-hotspot pattern, trend and rebound flag."""

    cell: str
    category: str
    rebounding: bool
    trend_z: float
    trend_p: float
    hot_steps: int
    steps: int
    bins: str


class ClusterProperties(BaseModel):
    """A DBSCAN cluster of single reports."""

    cluster: int
    reports: int
    top_category: str


Properties = CellProperties | AreaProperties | EmergingProperties | ClusterProperties


class HotspotFeature(BaseModel):
    """A GeoJSON Feature of a hotspot result."""

    type: Literal["Feature"] = "Feature"
    geometry: Polygon | MultiPolygon | dict[str, Any]
    properties: Properties


class HotspotCollection(BaseModel):
    """A GeoJSON FeatureCollection with what was analysed."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[HotspotFeature]
    parameters: dict[str, Any]


class ChronicSite(BaseModel):
    """A site where one problem keeps coming back after closure (顽疾)."""

    rank: int
    site: str | None  # null: a site without a code, or deleted since
    name: str | None
    layer: str | None
    category: str
    recurrences: int
    issues: int
    share: float
    site_recurrences: int
    first_reported: str
    last_reported: str
