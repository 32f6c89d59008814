"""CRS handling: GCJ-02 forward/inverse against published pairs, passthrough, CRS names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer

from geo.crs import (
    CRS_NAMES,
    GCJ02,
    CrsName,
    gcj02_to_wgs84,
    in_china_bbox,
    lonlat_to_wgs84,
    normalize_crs,
    to_wgs84,
    wgs84_to_gcj02,
)

# ((WGS84 lon, lat), (GCJ-02 lon, lat)) published as test vectors by two independent open
# implementations: googollee/eviltransform python/test.py (Shanghai, Shenzhen, Beijing) and
# wandergis/coordtransform test/app.js (Tiananmen, wgs84togcj02(116.404, 39.915)).
LonLat = tuple[float, float]
PUBLISHED_PAIRS: list[tuple[LonLat, LonLat]] = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),
    ((116.404, 39.915), (116.41024449916938, 39.91640428150164)),
]
# Our own forward result near the demo district in Suzhou Industrial Park, pinned so that a
# change of constants shows up here too.
SUZHOU_WGS = (120.70, 31.31)
SUZHOU_GCJ = (120.704318987324, 31.307959211635)


@pytest.mark.parametrize(("wgs", "gcj"), PUBLISHED_PAIRS)
def test_forward_matches_published_pairs(wgs: LonLat, gcj: LonLat) -> None:
    assert tuple(map(float, wgs84_to_gcj02(*wgs))) == pytest.approx(gcj, abs=1e-9)


@pytest.mark.parametrize(("wgs", "gcj"), PUBLISHED_PAIRS)
def test_inverse_recovers_published_wgs84(wgs: LonLat, gcj: LonLat) -> None:
    assert tuple(map(float, gcj02_to_wgs84(*gcj))) == pytest.approx(wgs, abs=1e-9)


def test_suzhou_offset_is_in_the_expected_range_and_pinned() -> None:
    gcj_lon, gcj_lat = wgs84_to_gcj02(*SUZHOU_WGS)
    assert 0.004 < gcj_lon - SUZHOU_WGS[0] < 0.005
    assert -0.0025 < gcj_lat - SUZHOU_WGS[1] < -0.0015
    assert (float(gcj_lon), float(gcj_lat)) == pytest.approx(SUZHOU_GCJ, abs=1e-9)


def test_inverse_beats_the_one_step_shortcut() -> None:
    # The common "subtract the offset evaluated at the GCJ point" is off by metres; the
    # iterated inverse must land on the forward formula's preimage instead.
    gcj_lon, gcj_lat = 116.404, 39.915
    one_step = (116.39775550083061, 39.91359571849836)  # wandergis gcj02towgs84 result
    lon, lat = gcj02_to_wgs84(gcj_lon, gcj_lat)
    back_lon, back_lat = wgs84_to_gcj02(lon, lat)
    assert abs(back_lon - gcj_lon) < 1e-9 and abs(back_lat - gcj_lat) < 1e-9
    assert abs(lat - one_step[1]) > 1e-7  # > 1 cm: the two methods genuinely differ


def test_round_trip_on_random_points_in_china() -> None:
    rng = np.random.default_rng(42)
    lon = rng.uniform(73.0, 135.0, 10_000)
    lat = rng.uniform(18.0, 53.0, 10_000)
    wgs_lon, wgs_lat = gcj02_to_wgs84(lon, lat)
    back_lon, back_lat = wgs84_to_gcj02(wgs_lon, wgs_lat)
    assert np.abs(back_lon - lon).max() < 1e-8
    assert np.abs(back_lat - lat).max() < 1e-8
    # and the other way round, starting from WGS84
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    again_lon, again_lat = gcj02_to_wgs84(gcj_lon, gcj_lat)
    assert np.abs(again_lon - lon).max() < 1e-8
    assert np.abs(again_lat - lat).max() < 1e-8
    # the offsets really are hundreds of metres, so the test above is not vacuous
    assert np.median(np.hypot(gcj_lon - lon, gcj_lat - lat)) > 1e-3


Converter = Callable[..., tuple[Any, Any]]


@pytest.mark.parametrize("convert", [wgs84_to_gcj02, gcj02_to_wgs84])
def test_points_outside_china_pass_through(convert: Converter) -> None:
    lon = np.array([2.35, -74.0, 139.69, 120.7, np.nan])
    lat = np.array([48.86, 40.7, 35.69, 60.0, 31.0])
    out_lon, out_lat = convert(lon, lat)
    np.testing.assert_array_equal(out_lon, lon)
    np.testing.assert_array_equal(out_lat, lat)


def test_in_china_bbox_edges() -> None:
    assert in_china_bbox([72.004, 72.0039, 137.8347, 137.8348], [30, 30, 30, 30]).tolist() == [
        True, False, True, False]


@pytest.mark.parametrize("convert", [wgs84_to_gcj02, gcj02_to_wgs84])
def test_conversions_keep_shape_and_return_float64(convert: Converter) -> None:
    lon = np.full((3, 4), 120.7)
    lat = np.full((3, 4), 31.31)
    out_lon, out_lat = convert(lon, lat)
    assert out_lon.shape == out_lat.shape == (3, 4)
    assert out_lon.dtype == out_lat.dtype == np.float64
    scalar_lon, scalar_lat = convert(120, 31)
    assert scalar_lon.shape == scalar_lat.shape == ()
    assert scalar_lon.dtype == np.float64
    broadcast_lon, _ = convert([120.1, 120.2], 31.3)
    assert broadcast_lon.shape == (2,)


def test_conversions_do_not_modify_their_input() -> None:
    lon = np.array([120.7, 121.0])
    lat = np.array([31.31, 31.0])
    wgs84_to_gcj02(lon, lat)
    gcj02_to_wgs84(lon, lat)
    np.testing.assert_array_equal(lon, [120.7, 121.0])


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("wgs84", "EPSG:4326"), ("WGS84", "EPSG:4326"), ("epsg:4326", "EPSG:4326"),
        ("4326", "EPSG:4326"), (" EPSG:4326 ", "EPSG:4326"),
        ("cgcs2000", "EPSG:4490"), ("CGCS2000", "EPSG:4490"), ("EPSG:4490", "EPSG:4490"),
        ("gcj02", GCJ02), ("GCJ-02", GCJ02),
        ("EPSG:4549", "EPSG:4549"), ("4549", "EPSG:4549"), ("epsg:32651", "EPSG:32651"),
        ("+proj=utm +zone=51 +datum=WGS84 +units=m +no_defs", "EPSG:32651"),
    ],
)
def test_normalize_crs_accepts_known_names(name: str, label: str) -> None:
    assert normalize_crs(name) == label


def test_normalize_crs_returns_wkt_when_there_is_no_epsg_code() -> None:
    label = normalize_crs("+proj=tmerc +lon_0=120.7 +lat_0=0 +k=1 +ellps=GRS80 +units=m")
    assert label.startswith("PROJCRS[")


def test_normalize_crs_wkt_of_an_epsg_crs_gives_the_code() -> None:
    from pyproj import CRS

    assert normalize_crs(CRS.from_epsg(4549).to_wkt()) == "EPSG:4549"


@pytest.mark.parametrize("name", ["", "mars", "bd09", "EPSG:99999", "gcj03"])
def test_normalize_crs_rejects_unknown_names_in_english_and_chinese(name: str) -> None:
    with pytest.raises(ValueError, match="Unknown coordinate reference system") as info:
        normalize_crs(name)
    assert "无法识别的坐标系" in str(info.value)


def test_to_wgs84_from_gauss_kruger_4549() -> None:
    # On the central meridian x = 500000 is exactly 120°E; 3465000 m of northing is ~31.3°N.
    frame = gpd.GeoDataFrame(
        {"name": ["a", "b"]},
        geometry=[shapely.Point(500000, 3465000), shapely.box(500000, 3465000, 501000, 3466000)],
        crs="EPSG:4549",
    )
    out = to_wgs84(frame)
    assert out.crs == "EPSG:4326"
    assert out["name"].tolist() == ["a", "b"]
    point = out.geometry.iloc[0]
    assert point.x == pytest.approx(120.0, abs=1e-9)
    assert point.y == pytest.approx(31.306891, abs=1e-6)
    minx, _, maxx, _ = out.geometry.iloc[1].bounds
    assert maxx - minx == pytest.approx(1000 / (111320 * np.cos(np.radians(31.31))), rel=5e-3)
    assert frame.crs == "EPSG:4549"  # the input is untouched


def test_to_wgs84_undoes_gcj02_on_every_vertex_and_keeps_z() -> None:
    wgs_lon = np.array([120.70, 120.71, 120.71, 120.70, 120.70])
    wgs_lat = np.array([31.31, 31.31, 31.32, 31.32, 31.31])
    gcj_lon, gcj_lat = wgs84_to_gcj02(wgs_lon, wgs_lat)
    frame = gpd.GeoDataFrame(
        {"code": ["poly", "pt"]},
        geometry=[
            shapely.Polygon(np.column_stack([gcj_lon, gcj_lat])),
            shapely.Point(gcj_lon[0], gcj_lat[0], 12.5),
        ],
        crs="EPSG:4326",  # how a GeoJSON of GCJ-02 coordinates arrives
    )
    out = to_wgs84(frame, "gcj-02")
    assert out.crs == "EPSG:4326"
    assert not out.geometry.iloc[0].has_z
    coords = shapely.get_coordinates(out.geometry.iloc[0])
    np.testing.assert_allclose(coords[:, 0], wgs_lon, atol=1e-9)
    np.testing.assert_allclose(coords[:, 1], wgs_lat, atol=1e-9)
    point = out.geometry.iloc[1]
    assert point.has_z and point.z == 12.5
    assert point.x == pytest.approx(120.70, abs=1e-9)


def test_to_wgs84_declared_crs_for_a_frame_without_one() -> None:
    frame = gpd.GeoDataFrame(geometry=[shapely.Point(500000, 3465000)])
    assert to_wgs84(frame, "4549").geometry.iloc[0].x == pytest.approx(120.0)


def test_to_wgs84_refuses_contradictions() -> None:
    projected = gpd.GeoDataFrame(geometry=[shapely.Point(500000, 3465000)], crs="EPSG:4549")
    with pytest.raises(ValueError, match="GCJ-02 was declared"):
        to_wgs84(projected, "gcj02")
    with pytest.raises(ValueError, match="declares"):
        to_wgs84(projected, "EPSG:32651")
    with pytest.raises(ValueError, match="no CRS"):
        to_wgs84(gpd.GeoDataFrame(geometry=[shapely.Point(0, 0)]))


def test_lonlat_to_wgs84_variants() -> None:
    lon, lat = lonlat_to_wgs84([500000.0], [3465000.0], "EPSG:4549")
    assert lon.shape == (1,) and lon[0] == pytest.approx(120.0)
    lon, lat = lonlat_to_wgs84(*wgs84_to_gcj02(120.70, 31.31), "gcj02")
    assert (float(lon), float(lat)) == pytest.approx((120.70, 31.31), abs=1e-9)
    lon, lat = lonlat_to_wgs84(120.70, 31.31, "cgcs2000")
    assert (float(lon), float(lat)) == pytest.approx((120.70, 31.31), abs=1e-9)
    utm = Transformer.from_crs("EPSG:4326", "EPSG:32651", always_xy=True)
    x, y = utm.transform(120.70, 31.31)
    lon, lat = lonlat_to_wgs84(x, y, "epsg:32651")
    assert (float(lon), float(lat)) == pytest.approx((120.70, 31.31), abs=1e-9)


def test_each_short_crs_name_has_its_label_and_normalize_crs_knows_it() -> None:
    # The API's crs fields and the importers' --crs take CrsName; each must map and parse.
    assert set(get_args(CrsName)) == set(CRS_NAMES)
    for name, label in CRS_NAMES.items():
        assert normalize_crs(name) == normalize_crs(name.upper()) == label
