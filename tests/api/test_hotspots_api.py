"""Hotspot routes and command on the demo district: the planted patterns are found, nothing
else is flagged at the default settings, results are cached, bad input is a 422."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely.ops import nearest_points
from typer.testing import CliRunner

from api.cli.main import app
from geo.demo import DemoDistrict, generate_district

PERIOD = "2026-05-01/2026-11-20T10:00:00+08:00"  # the demo's campaign start to its "now"
NEAR_M = 600.0  # Gi* neighbourhoods (ring 3 at resolution 10) reach about this far
_geod = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def district() -> DemoDistrict:
    return generate_district()


def _site(district: DemoDistrict, code: str) -> shapely.Geometry:
    sites = district.sites.set_index("code")
    site: shapely.Geometry = sites.loc[code, "geometry"]
    return site


def _distance_m(a: shapely.Geometry, b: shapely.Geometry) -> float:
    pa, pb = nearest_points(a, b)
    return float(_geod.inv(pa.x, pa.y, pb.x, pb.y)[2])


def _planted_hotspots(district: DemoDistrict) -> dict[str, shapely.Geometry]:
    planted = {code: _site(district, code) for code in district.hotspot_markets}
    planted["back street"] = district.back_street
    planted[district.rebound_site] = _site(district, district.rebound_site)
    return planted


def test_default_hotspot_areas_are_the_planted_ones_and_nothing_else(
        demo_client: TestClient, district: DemoDistrict) -> None:
    response = demo_client.get("/api/v1/hotspots")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    areas = response.json()["features"]
    geoms = [shapely.geometry.shape(f["geometry"]) for f in areas]
    planted = _planted_hotspots(district)
    for name, place in planted.items():
        assert any(g.intersects(place) for g in geoms), f"{name} not found"
    for g in geoms:
        assert min(_distance_m(g, p) for p in planted.values()) == 0.0
    for feature in areas:
        props = feature["properties"]
        assert props["peak_z"] > 3
        assert sum(s["share"] for s in props["shares"]) + props["outside_share"] == \
            pytest.approx(1.0, abs=1e-3)
        assert props["lead_unit"] is not None and "%" in props["share_text"]


def test_cells_carry_z_two_sided_p_and_fdr(demo_client: TestClient) -> None:
    cells = demo_client.get("/api/v1/hotspots", params={"output": "cells"}).json()["features"]
    props = [f["properties"] for f in cells]
    assert len(props) > 1000
    assert sum(p["count"] for p in props) > 2500
    assert any(p["count"] == 0 for p in props)  # empty ground is part of the study area
    z = np.array([p["z"] for p in props])
    p_fdr = np.array([p["p_fdr"] for p in props])
    p = np.array([p["p"] for p in props])
    assert (p_fdr >= p - 1e-12).all()
    hot = np.array([c["gi_bin"] for c in props]) >= 2
    assert (z[hot] > 0).all() and (p_fdr[hot] <= 0.05).all()


def test_emerging_finds_the_rebound_compound_near_where_it_is(
        demo_client: TestClient, district: DemoDistrict) -> None:
    response = demo_client.get("/api/v1/hotspots/emerging", params={"period": PERIOD})
    assert response.status_code == 200
    features = response.json()["features"]
    rebound = _site(district, district.rebound_site)
    rebounding = [shapely.geometry.shape(f["geometry"]) for f in features
                  if f["properties"]["rebounding"]]
    planted = _planted_hotspots(district)
    planted.update({code: _site(district, code) for code in district.chronic_sites})
    assert any(g.intersects(rebound) for g in rebounding)
    # Most rebounding cells are the compound's; a few on the fringe of a persistent market
    # hotspot flicker in and out of significance, as Gi* neighbourhoods do.
    near = [_distance_m(g, rebound) <= NEAR_M for g in rebounding]
    assert sum(near) >= 0.75 * len(near)
    for f in features:
        g = shapely.geometry.shape(f["geometry"])
        assert min(_distance_m(g, p) for p in planted.values()) <= NEAR_M
        assert f["properties"]["steps"] == 20


def test_chronic_sites_are_the_planted_ones(demo_client: TestClient,
                                           district: DemoDistrict) -> None:
    response = demo_client.get("/api/v1/sites/chronic")
    assert response.status_code == 200
    ranked = response.json()
    assert {r["site"] for r in ranked} == set(district.chronic_sites)
    assert [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1))
    assert all(r["recurrences"] >= 20 for r in ranked)  # ~once per 10 days over 203 days
    lowered = demo_client.get("/api/v1/sites/chronic", params={"min_recurrences": 5}).json()
    assert len(lowered) > len(ranked)


def test_results_are_cached_per_data_version(demo_client: TestClient) -> None:
    assert isinstance(demo_client.app, FastAPI)
    cache = demo_client.app.state.hotspot_cache
    first = demo_client.get("/api/v1/hotspots").json()
    hits = cache.hits
    assert demo_client.get("/api/v1/hotspots").json() == first
    assert cache.hits == hits + 1


@pytest.mark.parametrize("params", [
    {"resolution": "20"}, {"period": "last week"}, {"period": "2026-06-01/2026-05-01"},
    {"method": "kde"}, {"confidence": "80"}])
def test_bad_parameters_are_problem_details(demo_client: TestClient,
                                            params: dict[str, str]) -> None:
    response = demo_client.get("/api/v1/hotspots", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


def test_emerging_needs_at_least_three_steps(demo_client: TestClient) -> None:
    response = demo_client.get("/api/v1/hotspots/emerging",
                               params={"period": "2026-05-01/2026-05-20"})
    assert response.status_code == 422
    assert "时间步" in response.json()["detail"]


def test_cli_writes_hotspot_areas_as_geojson_and_gpkg(demo_dsn: str, tmp_path: Path) -> None:
    runner = CliRunner()
    target = tmp_path / "hot.geojson"
    result = runner.invoke(app, ["hotspots", "--period", PERIOD, "--out", str(target)],
                           env={"DATABASE_URL": demo_dsn})
    assert result.exit_code == 0, result.output
    body = json.loads(target.read_text(encoding="utf-8"))
    assert len(body["features"]) >= 3
    gpkg = tmp_path / "hot.gpkg"
    result = runner.invoke(app, ["hotspots", "--output", "cells", "--out", str(gpkg)],
                           env={"DATABASE_URL": demo_dsn})
    assert result.exit_code == 0, result.output
    assert gpkg.stat().st_size > 0
    bad = runner.invoke(app, ["hotspots", "--out", str(tmp_path / "x.txt")],
                        env={"DATABASE_URL": demo_dsn})
    assert bad.exit_code == 1
