"""The demo district and its issues: exact tiling, placement, determinism, planted patterns."""

from __future__ import annotations

from datetime import datetime
from itertools import combinations
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from shapely.geometry.base import BaseGeometry

from geo.demo import METRIC_CRS, DemoDistrict, generate_district
from geo.demo_issues import SOURCES, STATUSES, generate_issues

CATALOG = Path(__file__).resolve().parents[2] / "layers" / "data" / "categories.csv"
START = datetime.fromisoformat("2026-05-01T00:00:00+08:00")
END = datetime.fromisoformat("2026-12-31T23:59:59+08:00")
NOW = datetime.fromisoformat("2026-12-01T09:00:00+08:00")
ZONE = ZoneInfo("Asia/Shanghai")  # the demo's district, as the settings default names it


@pytest.fixture(scope="module")
def district() -> DemoDistrict:
    return generate_district()


@pytest.fixture(scope="module")
def categories() -> pd.DataFrame:
    return pd.read_csv(CATALOG).drop(columns=["functional_unit"])


@pytest.fixture(scope="module")
def issues(district: DemoDistrict, categories: pd.DataFrame) -> pd.DataFrame:
    return generate_issues(
        district, categories, 3000, seed=7, start=START, end=END, now=NOW, zone=ZONE)


def _level(district: DemoDistrict, level: str) -> gpd.GeoDataFrame:
    j = district.jurisdictions
    return j[j["level"] == level].to_crs(METRIC_CRS).reset_index(drop=True)


def _street(district: DemoDistrict) -> BaseGeometry:
    street: BaseGeometry = _level(district, "street").geometry.iloc[0]
    return street


def _max_pairwise_overlap(geoms: gpd.GeoSeries) -> float:
    tree = shapely.STRtree(geoms.to_numpy())
    left, right = tree.query(geoms.to_numpy(), predicate="intersects")
    pairs = left < right
    areas = shapely.area(shapely.intersection(geoms.to_numpy()[left[pairs]],
                                              geoms.to_numpy()[right[pairs]]))
    return float(areas.max(initial=0.0))


def test_communities_tile_the_street_exactly(district: DemoDistrict) -> None:
    communities = _level(district, "community")
    street = _street(district)
    union = shapely.union_all(communities.geometry.to_numpy())
    assert shapely.symmetric_difference(union, street).area < 1.0
    assert _max_pairwise_overlap(communities.geometry) < 1e-3
    assert 10e6 <= street.area <= 20e6
    assert 10 <= len(communities) <= 15


def test_street_outline_is_irregular(district: DemoDistrict) -> None:
    street = _street(district)
    assert street.area / street.minimum_rotated_rectangle.area < 0.9


def test_grids_tile_their_community(district: DemoDistrict) -> None:
    grids = _level(district, "grid")
    for community in _level(district, "community").itertuples():
        mine = grids[grids["parent"] == community.code]
        assert 3 <= len(mine) <= 6
        assert (mine["unit"] == community.unit).all()
        union = shapely.union_all(mine.geometry.to_numpy())
        assert shapely.symmetric_difference(union, community.geometry).area < 1.0
        assert _max_pairwise_overlap(mine.geometry) < 1e-3
        assert all(name.startswith(community.name) for name in mine["name"])


def test_jurisdiction_codes_are_hierarchical_and_geometries_multipolygons(
    district: DemoDistrict,
) -> None:
    j = district.jurisdictions
    assert j.crs.to_epsg() == 4326
    assert (j.geom_type == "MultiPolygon").all()
    street = j[j["level"] == "street"].iloc[0]
    assert (street["code"], street["parent"], street["unit"]) == ("320571001", None, "JD")
    children = j[j["level"] != "street"]
    assert all(code.startswith(parent) and len(code) == len(parent) + 3
               for code, parent in zip(children["code"], children["parent"], strict=True))
    assert j["code"].is_unique


def test_units_cover_communities_street_and_the_four_departments(
    district: DemoDistrict,
) -> None:
    units = district.units
    functional = units[units["kind"] == "functional"].set_index("code")["name"].to_dict()
    assert functional == {"CG": "城管", "JS": "建设", "SCJG": "市场监管", "PCS": "派出所"}
    territorial = set(units.loc[units["kind"] == "territorial", "code"])
    assert territorial == set(district.jurisdictions["unit"])
    assert units["contact"].str.fullmatch(r"1[358]\d{9}").all()
    assert units["leader"].str.len().between(2, 3).all()


def test_sites_counts_and_attributes(district: DemoDistrict) -> None:
    sites = district.sites
    counts = sites["layer"].value_counts()
    assert 6 <= counts["market"] <= 10
    assert 10 <= counts["construction_site"] <= 20
    assert 20 <= counts["old_compound"] <= 40
    assert sites["code"].is_unique
    assert sites["name"].is_unique
    compounds = sites[sites["layer"] == "old_compound"]["attributes"]
    unmanaged = sum(not a["property_management"] for a in compounds)
    assert 0.15 <= unmanaged / len(compounds) <= 0.55
    permits = sites.loc[sites["layer"] == "construction_site", "attributes"]
    assert all(len(a["permit_no"]) == 16 for a in permits)


def test_each_site_lies_in_exactly_one_community_and_sites_do_not_overlap(
    district: DemoDistrict,
) -> None:
    communities = _level(district, "community")
    sites = district.sites.to_crs(METRIC_CRS)
    for site in sites.itertuples():
        containing = communities[communities.contains(site.geometry)]
        assert len(containing) == 1
        assert containing["unit"].iloc[0] == site.unit
    for a, b in combinations(sites.geometry, 2):
        assert not a.intersects(b)


def test_district_is_deterministic_per_seed() -> None:
    a, b, c = generate_district(3), generate_district(3), generate_district(4)
    pd.testing.assert_frame_equal(a.units, b.units)
    assert_geodataframe_equal(a.jurisdictions, b.jurisdictions)
    assert_geodataframe_equal(a.sites, b.sites)
    assert (a.rebound_site, a.chronic_sites) == (b.rebound_site, b.chronic_sites)
    assert not a.jurisdictions.geometry.iloc[0].equals(c.jurisdictions.geometry.iloc[0])


def test_issues_are_deterministic_per_seed(
    district: DemoDistrict, categories: pd.DataFrame, issues: pd.DataFrame
) -> None:
    again = generate_issues(
        district, categories, 3000, seed=7, start=START, end=END, now=NOW, zone=ZONE)
    pd.testing.assert_frame_equal(issues, again)
    other = generate_issues(
        district, categories, 3000, seed=8, start=START, end=END, now=NOW, zone=ZONE)
    assert not issues["lon"].equals(other["lon"])


def test_issues_have_the_promised_columns_and_dtypes(issues: pd.DataFrame) -> None:
    assert list(issues.columns) == [
        "category", "lon", "lat", "description", "source", "reported_at", "status",
        "assigned_at", "rectified_at", "closed_at", "rework_count", "reporter"]
    assert len(issues) == 3000
    assert issues["lon"].dtype == np.float64
    assert issues["lat"].dtype == np.float64
    assert issues["rework_count"].dtype == np.int64
    for column in ("reported_at", "assigned_at", "rectified_at", "closed_at"):
        assert issues[column].dt.tz == ZONE
    assert set(issues["source"]) <= set(SOURCES)
    assert set(issues["status"]) <= set(STATUSES)
    assert 0.02 <= (issues["source"] == "external_assessment").mean() <= 0.08
    assert issues["reported_at"].between(START, NOW).all()
    assert issues["reported_at"].is_monotonic_increasing


def test_every_issue_lies_inside_the_street(
    district: DemoDistrict, issues: pd.DataFrame
) -> None:
    j = district.jurisdictions
    street = j.loc[j["level"] == "street", "geometry"].iloc[0]
    assert shapely.contains_xy(street, issues["lon"], issues["lat"]).all()


def test_statuses_are_plausible_at_now(issues: pd.DataFrame, categories: pd.DataFrame) -> None:
    closed = issues["status"].isin(["verified", "rejected", "duplicate"])
    assert issues["closed_at"].notna().eq(closed).all()
    assert (issues.loc[closed, "closed_at"] >= issues.loc[closed, "reported_at"]).all()
    assert (issues["closed_at"].dropna() <= NOW).all()
    for earlier, later in (("reported_at", "assigned_at"), ("assigned_at", "rectified_at"),
                           ("rectified_at", "closed_at")):
        both = issues[earlier].notna() & issues[later].notna()
        assert (issues.loc[both, earlier] <= issues.loc[both, later]).all()
    verified = issues[issues["status"] == "verified"]
    assert verified["rectified_at"].notna().all()
    assert (issues.loc[issues["status"] != "verified", "rework_count"] == 0).all()
    old = issues["reported_at"] < pd.Timestamp("2026-10-01", tz=ZONE)
    assert (issues.loc[old, "status"] == "verified").mean() > 0.85
    deadline = pd.to_timedelta(
        issues["category"].map(categories.set_index("code")["deadline_hours"]), unit="h")
    overdue_open = ~closed & (issues["reported_at"] + deadline < NOW)
    assert overdue_open.sum() >= 5
    late = (verified["closed_at"] > verified["reported_at"] + deadline[verified.index]).mean()
    assert 0.05 <= late <= 0.2
    assert 0.8 <= (issues["rework_count"] == 0).mean() < 1.0


def _metric_points(issues: pd.DataFrame) -> gpd.GeoSeries:
    return gpd.GeoSeries(gpd.points_from_xy(issues["lon"], issues["lat"]),
                         crs=4326).to_crs(METRIC_CRS)


def test_category_follows_the_site_it_is_near(
    district: DemoDistrict, issues: pd.DataFrame
) -> None:
    sites = district.sites.to_crs(METRIC_CRS)
    points = _metric_points(issues)
    for prefix, layer in (("MKT", "market"), ("CON", "construction_site"),
                          ("CMP", "old_compound")):
        mine = sites[sites["layer"] == layer]
        zone = shapely.union_all(mine.geometry.buffer(mine["buffer_m"] + 0.5).to_numpy())
        chosen = issues["category"].str.startswith(prefix).to_numpy()
        assert chosen.sum() > 30
        assert points[chosen].within(zone).all()


def test_rebound_compound_empties_in_summer_and_refills_in_autumn(
    district: DemoDistrict, issues: pd.DataFrame
) -> None:
    site = district.sites.set_index("code").loc[district.rebound_site]
    assert not site["attributes"]["property_management"]
    inside = shapely.contains_xy(site["geometry"], issues["lon"], issues["lat"])
    months = issues.loc[inside, "reported_at"].dt.month
    spring = months.isin([5, 6]).sum()
    summer = months.isin([7, 8]).sum()
    autumn = months.isin([10, 11]).sum()
    assert spring > 4 * max(summer, 1)
    assert autumn > 4 * max(summer, 1)
    assert spring >= 30


def test_hotspot_markets_are_much_denser_than_other_markets(
    district: DemoDistrict, issues: pd.DataFrame
) -> None:
    markets = district.sites[district.sites["layer"] == "market"].to_crs(METRIC_CRS)
    points = _metric_points(issues)
    density = {
        code: int(points.within(shapely.buffer(geom.centroid, 250.0)).sum())
        for code, geom in zip(markets["code"], markets.geometry, strict=True)}
    hot = [density[c] for c in district.hotspot_markets]
    planted = {*district.hotspot_markets, *district.chronic_sites}
    cold = [v for c, v in density.items() if c not in planted]
    assert min(hot) > 2.5 * max(cold)
    street = gpd.GeoSeries([district.back_street], crs=4326).to_crs(METRIC_CRS).iloc[0]
    assert points.within(street.buffer(40.0)).sum() > 3 * max(cold)


def test_chronic_sites_repeat_one_category_soon_after_each_closure(
    district: DemoDistrict, issues: pd.DataFrame
) -> None:
    sites = district.sites.set_index("code")
    for code in district.chronic_sites:
        inside = issues[shapely.contains_xy(sites.loc[code, "geometry"], issues["lon"],
                                            issues["lat"])]
        top = inside["category"].value_counts()
        chain = inside[inside["category"] == top.index[0]]
        assert top.iloc[0] >= 20
        assert top.iloc[0] > 3 * top.iloc[1]
        gaps = (chain["reported_at"].iloc[1:].to_numpy()
                - chain["closed_at"].iloc[:-1].to_numpy()) / pd.Timedelta(days=1)
        assert np.mean((gaps >= 2) & (gaps <= 6)) > 0.8


@pytest.mark.parametrize("n", [0, 1, 17])
def test_tiny_counts_still_work(
    district: DemoDistrict, categories: pd.DataFrame, n: int
) -> None:
    frame = generate_issues(
        district, categories, n, seed=1, start=START, end=END, now=NOW, zone=ZONE)
    assert len(frame) == n


def test_start_after_now_is_rejected(district: DemoDistrict, categories: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="start"):
        generate_issues(
            district, categories, 10, seed=1, start=NOW, end=END, now=START, zone=ZONE)


def test_dense_grids_keep_the_rest_of_the_district() -> None:
    dense = generate_district(grids_per_community=20)
    plain = generate_district()
    levels = dense.jurisdictions["level"].value_counts()
    assert int(levels["grid"]) == 20 * int(levels["community"])
    pd.testing.assert_frame_equal(dense.sites, plain.sites)
    communities = dense.jurisdictions[dense.jurisdictions["level"] == "community"]
    grids = dense.jurisdictions[dense.jurisdictions["level"] == "grid"]
    assert abs(grids.to_crs(4549).area.sum() - communities.to_crs(4549).area.sum()) < 1.0
