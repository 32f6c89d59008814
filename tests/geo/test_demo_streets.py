"""A demo district of several streets: exact shared borders, each street's own ground, units,
sites and patterns, issues on the borders, and one street unchanged."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.demo import METRIC_CRS, DemoDistrict, generate_district
from geo.demo_issues import BORDER_SHARE, generate_issues
from geo.demo_streets import group_streets, street_borders
from layers.db.settings import Settings

CATALOG = Path(__file__).resolve().parents[2] / "layers" / "data" / "categories.csv"
ZONE = Settings().zone
START = datetime(2026, 5, 1, tzinfo=ZONE)
END = datetime(2026, 12, 31, 23, 59, tzinfo=ZONE)
NOW = datetime(2026, 12, 1, 9, tzinfo=ZONE)
PER_STREET = 600


@pytest.fixture(scope="module")
def district() -> DemoDistrict:
    return generate_district(streets=3)


@pytest.fixture(scope="module")
def issues(district: DemoDistrict) -> pd.DataFrame:
    categories = pd.read_csv(CATALOG).drop(columns=["functional_unit"])
    return generate_issues(district, categories, PER_STREET, seed=7, start=START, end=END,
                           now=NOW, zone=ZONE)


def _level(district: DemoDistrict, level: str, crs: str = METRIC_CRS) -> gpd.GeoDataFrame:
    j = district.jurisdictions
    return j[j["level"] == level].to_crs(crs).reset_index(drop=True)


def test_streets_tile_the_district_without_gaps_or_overlaps(district: DemoDistrict) -> None:
    streets = _level(district, "street").geometry.to_numpy()
    communities = _level(district, "community").geometry.to_numpy()
    union = shapely.union_all(streets)
    # One piece with no hole: nothing between the streets is left out.
    assert shapely.get_num_geometries(union) == 1
    assert shapely.get_num_interior_rings(shapely.get_geometry(union, 0)) == 0
    assert abs(union.area - shapely.area(streets).sum()) < 1e-3  # m²: no overlap
    assert shapely.symmetric_difference(union, shapely.union_all(communities)).area < 1e-3
    assert 3 * 12e6 <= union.area <= 3 * 17e6


def test_each_streets_communities_and_grids_lie_in_it(district: DemoDistrict) -> None:
    streets = _level(district, "street").set_index("code").geometry
    communities = _level(district, "community")
    grids = _level(district, "grid")
    street_of = communities.set_index("code")["parent"]
    assert set(street_of) == set(streets.index)
    for community in communities.itertuples():
        assert shapely.difference(community.geometry, streets[community.parent]).area < 1e-6
    for grid in grids.itertuples():
        street = streets[street_of[grid.parent]]
        # Grids are tiled inside their community on the 1 mm grid: within a few mm of it.
        assert shapely.covers(shapely.buffer(street, 0.002), grid.geometry)
    assert communities.groupby("parent").size().min() >= 3


def test_adjacent_streets_share_their_border_vertices(district: DemoDistrict) -> None:
    streets = _level(district, "street", "EPSG:4326").geometry.to_numpy()
    borders = street_borders(streets)
    assert len(borders) >= 2  # three streets, at least two of them neighbours
    vertices = [set(map(tuple, shapely.get_coordinates(s))) for s in streets]
    for border in borders:
        on_border = set(map(tuple, shapely.get_coordinates(border)))
        sharing = [s for s in vertices if on_border <= s]
        assert len(sharing) == 2  # every vertex of the border is a vertex of both streets


def test_streets_are_named_and_each_has_its_own_units_and_sites(district: DemoDistrict) -> None:
    streets = _level(district, "street")
    assert sorted(streets["code"]) == ["320571001", "320571002", "320571003"]
    assert streets["name"].str.endswith("街道").all()
    assert sorted(streets["unit"]) == ["JD01", "JD02", "JD03"]
    units = district.units
    assert units["code"].is_unique and units["name"].is_unique
    assert units["name_en"].str.len().gt(0).all()
    functional = units.loc[units["kind"] == "functional", "code"]
    assert sorted(functional) == ["CG", "JS", "PCS", "SCJG"]  # shared, one each
    assert district.sites["code"].is_unique and district.sites["name"].is_unique
    for part in district.parts():
        street = _level(part, "street").geometry.iloc[0]
        mine = part.sites.to_crs(METRIC_CRS)
        assert len(mine) >= 36
        assert shapely.covers(street, mine.geometry.to_numpy()).all()
        assert set(part.hotspot_markets) <= set(mine["code"])
        assert part.rebound_site in set(mine["code"])
        territorial = set(part.units.loc[part.units["kind"] == "territorial", "code"])
        assert set(mine["unit"]) <= territorial
        assert set(part.jurisdictions["unit"]) == territorial


def test_one_street_is_the_demo_district_as_it_was() -> None:
    default, one = generate_district(), generate_district(streets=1)
    assert default.streets == () and one.parts() == (one,)
    pd.testing.assert_frame_equal(default.jurisdictions, one.jurisdictions)
    street = default.jurisdictions[default.jurisdictions["level"] == "street"]
    assert street[["code", "name", "unit"]].values.tolist() == [["320571001", "星湖街道", "JD"]]
    assert default.sites["code"].str.fullmatch(r"(NM|GD|XQ)\d{2}").all()


def test_street_count_is_bounded() -> None:
    for bad in (0, 21):
        with pytest.raises(ValueError, match="streets"):
            generate_district(streets=bad)


def test_grouping_keeps_every_street_connected(district: DemoDistrict) -> None:
    for street in _level(district, "street").geometry:
        assert shapely.get_num_geometries(street) == 1
    cells = np.array([shapely.box(x, 0, x + 10, 10) for x in range(0, 50, 10)], dtype=object)
    with pytest.raises(ValueError, match="connected"):
        group_streets(np.delete(cells, 2), np.array([[5.0, 5.0]]))  # a gap splits them


def test_issues_cover_every_street_and_its_borders(
    district: DemoDistrict, issues: pd.DataFrame
) -> None:
    assert len(issues) == 3 * PER_STREET
    assert issues["reported_at"].is_monotonic_increasing
    streets = _level(district, "street", "EPSG:4326")
    inside = np.stack([shapely.covers(g, shapely.points(issues["lon"], issues["lat"]))
                       for g in streets.geometry])
    assert inside.any(axis=0).all()  # none outside the district
    per_street = inside.sum(axis=1)
    assert (per_street >= PER_STREET * (1 - BORDER_SHARE)).all()
    borders = shapely.union_all(street_borders(streets.geometry.to_numpy()))
    points = shapely.points(issues["lon"], issues["lat"])
    near = shapely.dwithin(borders, points, 1e-9)
    assert near.sum() == 3 * int(PER_STREET * BORDER_SHARE)
    # Each lies exactly on a border vertex: in both neighbouring streets as stored.
    assert (inside[:, near].sum(axis=0) >= 2).all()


def test_district_issues_are_deterministic(district: DemoDistrict, issues: pd.DataFrame
                                           ) -> None:
    categories = pd.read_csv(CATALOG).drop(columns=["functional_unit"])
    again = generate_issues(district, categories, PER_STREET, seed=7, start=START, end=END,
                            now=NOW, zone=ZONE)
    pd.testing.assert_frame_equal(issues, again)
