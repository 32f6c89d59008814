"""Hotspot routes and command on the demo district: the planted patterns are found, nothing
else is flagged at the default settings, results are analysis snapshots shared with the
hotspot page, bad input is a 422."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely.ops import nearest_points
from typer.testing import CliRunner

from api.app import create_app
from api.cli.main import app
from api.services import hotspot_results
from geo.demo import DemoDistrict, generate_district
from layers.analysis import snapshots
from layers.analysis.hotspots import HotspotQuery
from layers.analysis.snapshots import Spec
from layers.assignment import load_assigner
from layers.db.settings import Settings

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


def test_a_chronic_site_without_a_code_is_null_not_the_word_none(
        demo_client: TestClient, demo_dsn: str, district: DemoDistrict) -> None:
    uncoded = sorted(district.chronic_sites)[0]
    with psycopg.connect(demo_dsn) as conn:
        conn.execute("UPDATE site SET code = NULL WHERE code = %s", [uncoded])
    ranked = demo_client.get("/api/v1/sites/chronic").json()
    # Missing values are left out of hotspot JSON, as everywhere in these routes.
    assert {r.get("site") for r in ranked} == set(district.chronic_sites) - {uncoded} | {None}
    assert all(r["name"] for r in ranked)


def _computed_at(dsn: str, spec: Spec) -> datetime | None:
    with psycopg.connect(dsn) as conn:
        found = snapshots.read(conn, spec.key)
    return None if found is None else found.computed_at


def test_results_are_the_pages_snapshots_computed_once_per_data_version(
        demo_client: TestClient, demo_dsn: str, tmp_path: Path,
        anonymous: dict[str, str]) -> None:
    query = HotspotQuery()
    specs = {"/api/v1/hotspots": hotspot_results.gi_spec(query, load_assigner),
             "/api/v1/hotspots/emerging": hotspot_results.emerging_spec(query, load_assigner),
             "/api/v1/sites/chronic": hotspot_results.chronic_spec(query)}
    assert demo_client.get("/maps/hotspots", headers=anonymous).status_code == 200
    computed = {path: _computed_at(demo_dsn, spec) for path, spec in specs.items()}
    assert None not in computed.values()
    # The page's snapshots answer the API at its defaults, in this process and in another.
    with TestClient(create_app(Settings(database_url=demo_dsn, data_dir=tmp_path)),
                    headers=dict(demo_client.headers)) as restarted:
        for client in (demo_client, restarted):
            for path, spec in specs.items():
                assert client.get(path).status_code == 200
                assert _computed_at(demo_dsn, spec) == computed[path], path
    gi = specs["/api/v1/hotspots"]
    with psycopg.connect(demo_dsn) as conn:
        stored = snapshots.read(conn, gi.key)
    assert stored is not None
    areas = demo_client.get("/api/v1/hotspots").json()["features"]
    assert areas == hotspot_results.without_none(stored.payload["areas"])
    cells = demo_client.get("/api/v1/hotspots", params={"output": "cells"}).json()
    assert cells["features"] == hotspot_results.without_none(stored.payload["cells"])
    # A change to the issues makes the stored result stale: the API computes it again.
    with psycopg.connect(demo_dsn) as conn:
        conn.execute("UPDATE issue SET description = description || '.'"
                     " WHERE id = (SELECT min(id) FROM issue)")
    assert demo_client.get("/api/v1/hotspots").status_code == 200
    again = _computed_at(demo_dsn, gi)
    assert again is not None and again > stored.computed_at


def test_results_for_other_parameters_are_ad_hoc_snapshots(demo_client: TestClient,
                                                           demo_dsn: str) -> None:
    asked = {"resolution": "9", "period": PERIOD}
    first = demo_client.get("/api/v1/hotspots", params=asked).json()
    with psycopg.connect(demo_dsn) as conn:
        keys = [k for (k,) in conn.execute("SELECT key FROM analysis_snapshot WHERE"
                                           " starts_with(key, 'adhoc:hotspots-gi:')")]
    assert len(keys) == 1
    computed = _computed_at(demo_dsn, Spec(keys[0], lambda _: None))
    assert demo_client.get("/api/v1/hotspots", params=asked).json() == first
    assert _computed_at(demo_dsn, Spec(keys[0], lambda _: None)) == computed


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
