"""The jurisdiction data-quality report, through the API and the CLI."""

from __future__ import annotations

import json

import psycopg
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.main import app as cli


def _push_grid_into_neighbour(dsn: str) -> tuple[str, str]:
    """Grow one grid 30 m into its sibling; return both codes."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("""
            SELECT a.code, b.code FROM jurisdiction a JOIN jurisdiction b
              ON a.parent_id = b.parent_id AND a.id < b.id
            WHERE a.level = 'grid' AND b.level = 'grid'
              AND ST_Length(ST_Intersection(a.geom, b.geom)::geography) > 300
            ORDER BY a.id LIMIT 1""").fetchone()
        assert row is not None
        conn.execute("""
            UPDATE jurisdiction SET geom = ST_Multi(ST_Union(geom, ST_Intersection(
                ST_Buffer(geom::geography, 30)::geometry,
                (SELECT geom FROM jurisdiction WHERE code = %s))))
            WHERE code = %s""", [row[1], row[0]])
    return row[0], row[1]


def test_demo_jurisdictions_are_clean(demo_client: TestClient) -> None:
    body = demo_client.get("/api/v1/checks/jurisdictions").json()
    assert body["type"] == "FeatureCollection"
    assert body["features"] == []
    assert set(body["summary"].values()) == {0}


def test_an_overlap_is_reported_with_its_area_and_geometry(demo_client: TestClient,
                                                           demo_dsn: str) -> None:
    grown, neighbour = _push_grid_into_neighbour(demo_dsn)
    response = demo_client.get("/api/v1/checks/jurisdictions")
    assert response.headers["content-type"] == "application/geo+json"
    overlaps = [f for f in response.json()["features"] if f["properties"]["kind"] == "overlap"]
    assert len(overlaps) == 1
    first = overlaps[0]
    assert sorted(first["properties"]["codes"]) == sorted([grown, neighbour])
    assert first["properties"]["area_m2"] > 30 * 300 * 0.9  # at least 30 m x 300 m
    assert first["geometry"]["type"] in ("Polygon", "MultiPolygon")


def test_cli_check_prints_findings_and_writes_geojson(demo_dsn: str, tmp_path: object) -> None:
    grown, neighbour = _push_grid_into_neighbour(demo_dsn)
    out = f"{tmp_path}/findings.geojson"
    result = CliRunner().invoke(cli, ["check", "--out", out], env={"DATABASE_URL": demo_dsn})
    assert result.exit_code == 0, result.output
    # A row for the overlap naming both grids (the summary line names every kind, even at 0).
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("overlap ")]
    assert [sorted(row[1].split(",")) for row in rows] == [sorted([grown, neighbour])]
    with open(out, encoding="utf-8") as f:
        features = json.load(f)["features"]
    assert [sorted(f["properties"]["codes"]) for f in features
            if f["properties"]["kind"] == "overlap"] == [sorted([grown, neighbour])]


def test_cli_reassign_reports_counts(demo_dsn: str) -> None:
    result = CliRunner().invoke(cli, ["reassign"], env={"DATABASE_URL": demo_dsn})
    assert result.exit_code == 0, result.output
    assert "changed 0" in result.output
