"""Jurisdiction data-quality report: each kind of finding, its area, and what is not a finding."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.demo import generate_district
from geo.quality import COLUMNS, KINDS, check_jurisdictions, summary

METRIC = "EPSG:4549"  # CGCS2000 3-degree GK CM 120E: areas in m², near Suzhou
X0, Y0 = 500000.0, 3465000.0

Row = tuple[str, str, str, str | None, shapely.Geometry]


def box(x1: float, y1: float, x2: float, y2: float) -> shapely.Polygon:
    """A rectangle in metres relative to the test origin."""
    return shapely.box(X0 + x1, Y0 + y1, X0 + x2, Y0 + y2)


def jurisdictions(*rows: Row) -> gpd.GeoDataFrame:
    code, name, level, parent, geometry = zip(*rows, strict=True)
    metric = gpd.GeoDataFrame(
        {"code": code, "name": name, "level": level, "parent": parent},
        geometry=list(geometry), crs=METRIC)
    return metric.to_crs("EPSG:4326")


STREET: Row = ("S", "星湖街道", "street", None, box(0, 0, 200, 100))
C1: Row = ("C1", "湖东社区", "community", "S", box(0, 0, 100, 100))
C2: Row = ("C2", "湖西社区", "community", "S", box(100, 0, 200, 100))
G1: Row = ("G1", "一网格", "grid", "C1", box(0, 0, 50, 100))
G2: Row = ("G2", "二网格", "grid", "C1", box(50, 0, 100, 100))


def metric_area(geometry: shapely.Geometry) -> float:
    return float(gpd.GeoSeries([geometry], crs="EPSG:4326").to_crs(METRIC).area.iloc[0])


def test_clean_tiling_has_no_findings() -> None:
    findings = check_jurisdictions(jurisdictions(STREET, C1, C2, G1, G2))
    assert findings.empty
    assert summary(findings) == dict.fromkeys(KINDS, 0)


def test_findings_frame_has_the_documented_schema_even_when_empty() -> None:
    findings = check_jurisdictions(jurisdictions(STREET, C1, C2))
    assert tuple(findings.columns) == COLUMNS
    assert findings.crs == "EPSG:4326"
    assert findings.geometry.name == "geometry"


def test_overlapping_siblings_give_one_overlap_with_its_area() -> None:
    c2 = ("C2", "湖西社区", "community", "S", box(90, 0, 200, 100))  # 10 m x 100 m strip
    findings = check_jurisdictions(jurisdictions(STREET, C1, c2, G1, G2))
    assert findings["kind"].tolist() == ["overlap"]
    row = findings.iloc[0]
    assert row["codes"] == ["C1", "C2"]
    assert row["level"] == "community"
    assert row["area_m2"] == pytest.approx(1000.0, rel=0.01)
    assert metric_area(row["geometry"]) == pytest.approx(1000.0, rel=0.01)
    assert "湖东社区" in row["detail_zh"] and "overlap" in row["detail"]


def test_children_of_different_parents_are_not_siblings() -> None:
    # G3 under C2 overlaps G2 under C1: a real defect (outside its parent), not an overlap.
    g3 = ("G3", "三网格", "grid", "C2", box(90, 0, 200, 100))
    findings = check_jurisdictions(jurisdictions(STREET, C1, C2, G1, G2, g3))
    assert findings["kind"].tolist() == ["outside_parent"]
    assert findings["codes"].iloc[0] == ["G3", "C2"]


def test_missing_piece_gives_a_gap_with_its_area() -> None:
    c2 = ("C2", "湖西社区", "community", "S", box(110, 0, 200, 100))
    findings = check_jurisdictions(jurisdictions(STREET, C1, c2, G1, G2))
    assert findings["kind"].tolist() == ["gap"]
    row = findings.iloc[0]
    assert row["codes"] == ["S"] and row["level"] == "street"
    assert row["area_m2"] == pytest.approx(1000.0, rel=0.01)
    assert metric_area(row["geometry"]) == pytest.approx(1000.0, rel=0.01)


def test_each_gap_piece_is_its_own_finding() -> None:
    c1 = ("C1", "湖东社区", "community", "S", box(10, 0, 100, 100))
    c2 = ("C2", "湖西社区", "community", "S", box(100, 0, 180, 100))
    findings = check_jurisdictions(jurisdictions(STREET, c1, c2))
    assert findings["kind"].tolist() == ["gap", "gap"]
    assert sorted(findings["area_m2"].round()) == [1000.0, 2000.0]


def test_parent_without_children_is_not_a_gap() -> None:
    findings = check_jurisdictions(jurisdictions(STREET, C1, C2))  # C2 has no grids
    assert "gap" not in set(findings["kind"])


def test_grid_sticking_out_of_its_community_is_outside_parent() -> None:
    g2 = ("G2", "二网格", "grid", "C1", box(50, 0, 105, 100))  # 5 m into C2
    findings = check_jurisdictions(jurisdictions(STREET, C1, C2, G1, g2))
    assert findings["kind"].tolist() == ["outside_parent"]
    row = findings.iloc[0]
    assert row["codes"] == ["G2", "C1"] and row["level"] == "grid"
    assert row["area_m2"] == pytest.approx(500.0, rel=0.01)
    assert metric_area(row["geometry"]) == pytest.approx(500.0, rel=0.01)


def test_bow_tie_is_invalid_with_its_location() -> None:
    bow_tie = shapely.Polygon(
        [(X0, Y0), (X0 + 100, Y0 + 100), (X0 + 100, Y0), (X0, Y0 + 100), (X0, Y0)])
    findings = check_jurisdictions(jurisdictions(("S", "星湖街道", "street", None, bow_tie)))
    assert findings["kind"].tolist() == ["invalid"]
    row = findings.iloc[0]
    assert row["codes"] == ["S"]
    assert "Self-intersection" in row["detail"] and "无效" in row["detail_zh"]
    assert np.isnan(row["area_m2"])
    # the crossing point, at the centre of the bow-tie
    assert row["geometry"].geom_type == "Point"
    crossing = gpd.GeoSeries([row["geometry"]], crs="EPSG:4326").to_crs(METRIC).iloc[0]
    assert crossing.distance(shapely.Point(X0 + 50, Y0 + 50)) < 0.01


def test_missing_and_non_polygon_geometries_are_invalid() -> None:
    frame = jurisdictions(STREET, ("P", "点", "community", "S", shapely.Point(X0, Y0)))
    frame.loc[len(frame)] = ["E", "空", "community", "S", None]
    findings = check_jurisdictions(frame)
    invalid = findings[findings["kind"] == "invalid"]
    assert invalid["codes"].tolist() == [["P"], ["E"]]
    assert "not a polygon (POINT)" in invalid["detail"].iloc[0]
    assert "missing" in invalid["detail"].iloc[1]


def test_sub_threshold_slivers_are_ignored_by_default() -> None:
    c2 = ("C2", "湖西社区", "community", "S", box(99.999, 0, 200, 100))  # 0.1 m² overlap
    frame = jurisdictions(STREET, C1, c2)
    assert check_jurisdictions(frame).empty
    findings = check_jurisdictions(frame, min_area_m2=0.01)
    assert findings["kind"].tolist() == ["overlap"]
    assert findings["area_m2"].iloc[0] == pytest.approx(0.1, rel=0.05)


def test_unknown_parent_is_an_orphan() -> None:
    c3 = ("C3", "飞地社区", "community", "S9", box(300, 0, 400, 100))
    findings = check_jurisdictions(jurisdictions(STREET, C1, C2, c3))
    assert findings["kind"].tolist() == ["orphan"]
    row = findings.iloc[0]
    assert row["codes"] == ["C3", "S9"]
    assert "S9" in row["detail"] and "S9" in row["detail_zh"]
    assert row["area_m2"] == pytest.approx(10_000.0, rel=0.01)


def test_empty_string_and_nan_parents_mean_no_parent() -> None:
    frame = jurisdictions(STREET, C1, C2)
    frame["parent"] = frame["parent"].astype(object)
    frame.loc[0, "parent"] = ""
    assert check_jurisdictions(frame).empty
    frame.loc[0, "parent"] = np.nan
    assert check_jurisdictions(frame).empty


def test_duplicate_codes_are_reported() -> None:
    again = ("C1", "湖东社区", "community", "S", box(100, 0, 200, 100))
    findings = check_jurisdictions(jurisdictions(STREET, C1, again))
    assert findings["kind"].tolist() == ["duplicate_code"]
    assert findings["codes"].iloc[0] == ["C1"]


def test_findings_are_ordered_by_kind() -> None:
    c2 = ("C2", "湖西社区", "community", "S", box(90, 0, 190, 100))  # overlap and gap
    c3 = ("C3", "飞地社区", "community", "S9", box(300, 0, 400, 100))
    findings = check_jurisdictions(jurisdictions(STREET, C1, c2, c3))
    assert findings["kind"].tolist() == ["orphan", "overlap", "gap"]
    assert summary(findings) == {**dict.fromkeys(KINDS, 0), "orphan": 1, "overlap": 1, "gap": 1}


def test_input_in_another_crs_is_accepted() -> None:
    c2 = ("C2", "湖西社区", "community", "S", box(90, 0, 200, 100))
    findings = check_jurisdictions(jurisdictions(STREET, C1, c2).to_crs(METRIC))
    assert findings.crs == "EPSG:4326"
    assert findings["area_m2"].iloc[0] == pytest.approx(1000.0, rel=0.01)


def test_bad_input_is_refused() -> None:
    frame = jurisdictions(STREET)
    with pytest.raises(ValueError, match="parent"):
        check_jurisdictions(frame.drop(columns="parent"))
    with pytest.raises(ValueError, match="CRS"):
        check_jurisdictions(frame.set_crs(None, allow_override=True))


def test_demo_district_is_clean() -> None:
    # 70 polygons tiled in EPSG:4549 and stored in 4326: shared borders must not produce
    # findings above the default threshold.
    findings = check_jurisdictions(generate_district().jurisdictions)
    assert summary(findings) == dict.fromkeys(KINDS, 0)
