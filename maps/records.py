"""What the map builders read: their input contract, one record type per kind of row.

The builders take these and nothing else (no frames with columns named elsewhere, no dicts
shaped by the API's schemas), so a field renamed on either side fails type checking where the
caller (api/services/map_pages.py) fills them from the layers' results. Geometries are shapely
objects in EPSG:4326, or GeoJSON geometry mappings where the analysis produced them so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import geopandas as gpd
import pandas as pd
from shapely.geometry.base import BaseGeometry


@dataclass(frozen=True)
class Jurisdiction:
    """A jurisdiction polygon: street, community or grid, with its owner unit's name."""

    code: str
    name: str
    level: str
    unit: str | None
    geometry: BaseGeometry


@dataclass(frozen=True)
class Site:
    """A monitored site with its open and overdue issues now and its last inspection."""

    code: str | None
    name: str
    layer: str
    layer_zh: str
    layer_en: str
    unit: str | None
    open_issues: int
    overdue: int
    last_inspection: datetime | None
    geometry: BaseGeometry


@dataclass(frozen=True)
class CellCounts:
    """Issue counts per H3 cell at one resolution, as columns (a page carries thousands)."""

    cell: Sequence[str]
    issues: Sequence[int]
    open: Sequence[int]
    overdue: Sequence[int]


@dataclass(frozen=True)
class CommunityMeasure:
    """A community's issues, open issues and points lost in the page's period."""

    code: str
    issues: int
    open: int
    points_lost: float


@dataclass(frozen=True)
class UnitIssue:
    """An open issue of a unit, public fields only; ``lon``/``lat`` in WGS84."""

    public_id: str
    category_zh: str
    category_en: str
    status: str
    reported_at: datetime
    deadline: datetime | None
    lead_unit: str | None
    site: str | None
    traffic_light: str | None
    overdue: bool | None
    lon: float
    lat: float


@dataclass(frozen=True)
class OrderCounts:
    """A supervision order as the unit page lists it."""

    code: str
    still_open: int
    overdue_now: int


@dataclass(frozen=True)
class GiCell:
    """A Gi* study cell: its issue count, z score and confidence bin (-3..3)."""

    geometry: Mapping[str, Any]
    count: int
    z: float
    gi_bin: int


@dataclass(frozen=True)
class HotArea:
    """A merged hotspot area with its split across jurisdictions and its units' names."""

    geometry: Mapping[str, Any]
    issue_count: int
    peak_z: float
    area_km2: float
    share_text: str
    lead_unit: str | None
    territorial_unit: str | None
    functional_unit: str | None


@dataclass(frozen=True)
class EmergingCell:
    """A cell's emerging-hotspot category (new, intensifying, ...) over the time steps."""

    geometry: Mapping[str, Any]
    category: str
    rebounding: bool
    hot_steps: int
    steps: int


@dataclass(frozen=True)
class ChronicSite:
    """A site where one problem keeps coming back after closure (顽疾)."""

    code: str | None
    category: str
    recurrences: int


def frame(records: Sequence[Any], kind: type[Any]) -> pd.DataFrame:
    """``records`` of dataclass ``kind`` as a frame with a column per field."""
    names = [f.name for f in fields(kind)]
    return pd.DataFrame({n: [getattr(r, n) for r in records] for n in names}, columns=names)


def geo_frame(records: Sequence[Any], kind: type[Any]) -> gpd.GeoDataFrame:
    """``records`` of dataclass ``kind`` (with a ``geometry``) as a GeoDataFrame in EPSG:4326,
    for the folium layers that take frames."""
    names = [f.name for f in fields(kind) if f.name != "geometry"]
    return gpd.GeoDataFrame({n: [getattr(r, n) for r in records] for n in names},
                            geometry=[r.geometry for r in records], crs="EPSG:4326")
