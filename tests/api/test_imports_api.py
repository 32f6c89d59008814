"""POST /api/v1/imports, GET /api/v1/exports/{layer} and the import/export CLI commands."""

from __future__ import annotations

import io
import json
from pathlib import Path

import geopandas as gpd
import openpyxl
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli.main import app as cli_app
from api.routes import imports as imports_route
from layers.auth import tokens
from layers.db.settings import Settings

PROBLEM = "application/problem+json"
runner = CliRunner()


def _token(dsn: str, role: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        token = tokens.create(conn, role=role, name=f"test {role}")
    return {"Authorization": f"Bearer {token}"}


def _sites_geojson(names: list[str], layers: list[str]) -> bytes:
    frame = gpd.GeoDataFrame({"name": names, "layer": layers},
                             geometry=[shapely.Point(120.70 + i / 1000, 31.31)
                                       for i in range(len(names))], crs="EPSG:4326")
    return str(frame.to_json()).encode()


def test_import_needs_a_token(client: TestClient, anonymous: dict[str, str]) -> None:
    response = client.post("/api/v1/imports", data={"kind": "sites"}, headers=anonymous,
                           files={"file": ("s.geojson", _sites_geojson(["a"], ["market"]))})
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM


def test_viewer_may_not_import_and_supervisor_may_not_import_sites(client: TestClient,
                                                                   dsn: str) -> None:
    for role in ("viewer", "supervisor"):
        response = client.post("/api/v1/imports", data={"kind": "sites"},
                               files={"file": ("s.geojson", _sites_geojson(["a"], ["market"]))},
                               headers=_token(dsn, role))
        assert response.status_code == 403, role


def test_import_returns_201_with_the_report(client: TestClient, dsn: str) -> None:
    response = client.post("/api/v1/imports", data={"kind": "sites"},
                           files={"file": ("菜场.geojson",
                                           _sites_geojson(["甲", "乙"], ["market"] * 2))},
                           headers=_token(dsn, "admin"))
    assert response.status_code == 201, response.text
    body = imports_route.ImportReportOut.model_validate(response.json())
    assert (body.kind, body.rows, body.created, body.updated) == ("sites", 2, 2, 0)
    # No issue to move, but two new sites: a revision of the lines all the same.
    assert body.reassigned == {"examined": 0, "changed": 0, "revision": 1}
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM site").fetchone() == (2,)


def test_import_422_lists_every_bad_row_and_stores_nothing(client: TestClient,
                                                           dsn: str) -> None:
    content = _sites_geojson(["好", "", "坏"], ["market", "market", "zoo"])
    response = client.post("/api/v1/imports", data={"kind": "sites"},
                           files={"file": ("s.geojson", content)},
                           headers=_token(dsn, "admin"))
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == "validation-failed"
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(2, "name"), (3, "layer")]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM site").fetchone() == (0,)


def test_unreadable_and_unsupported_files_are_422_without_internals(client: TestClient,
                                                                    dsn: str) -> None:
    headers = _token(dsn, "admin")
    broken = client.post("/api/v1/imports", data={"kind": "sites", "layer": "market"},
                         files={"file": ("s.gpkg", b"SQLite format 3\0 truncated")},
                         headers=headers)
    odd = client.post("/api/v1/imports", data={"kind": "sites"},
                      files={"file": ("s.exe", b"MZ")}, headers=headers)
    assert broken.status_code == odd.status_code == 422
    assert "not a readable GeoPackage" in broken.json()["detail"]
    assert "/tmp" not in broken.text and "sw-import" not in broken.text
    assert "unsupported file type" in odd.json()["detail"]


def test_upload_over_the_limit_is_413(client: TestClient, dsn: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports_route, "MAX_UPLOAD_BYTES", 100)
    response = client.post("/api/v1/imports", data={"kind": "sites", "layer": "market"},
                           files={"file": ("s.geojson", b" " * 5000)},
                           headers=_token(dsn, "admin"))
    assert response.status_code == 413
    assert response.json()["code"] == "payload-too-large"


def test_supervisor_imports_issues_with_declared_crs(demo_dsn: str) -> None:
    csv = "category,description,lon,lat\nMKT-01,占道经营,120.70,31.31\n".encode()
    with TestClient(create_app(Settings(database_url=demo_dsn))) as client:
        response = client.post("/api/v1/imports", data={"kind": "issues", "crs": "gcj02"},
                               files={"file": ("issues.csv", csv)},
                               headers=_token(demo_dsn, "supervisor"))
    assert response.status_code == 201, response.text
    [public_id] = response.json()["issue_ids"]
    with psycopg.connect(demo_dsn) as conn:
        row = conn.execute("SELECT ST_X(geom), e.actor_role FROM issue i JOIN issue_event e"
                           " ON e.issue_id = i.id AND e.action = 'report'"
                           " WHERE i.public_id = %s", [public_id]).fetchone()
    assert row is not None and row[0] < 120.70 and row[1] == "supervisor"


def test_export_downloads_a_layer(demo_client: TestClient, demo_dsn: str) -> None:
    client = demo_client
    response = client.get("/api/v1/exports/jurisdictions", params={"format": "geojson"})
    sheet = client.get("/api/v1/exports/market", params={"format": "xlsx"})
    missing = client.get("/api/v1/exports/zoo")
    bad_format = client.get("/api/v1/exports/market", params={"format": "shp"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    assert 'filename="jurisdictions.geojson"' in response.headers["content-disposition"]
    features = json.loads(response.content)["features"]
    assert {f["properties"]["level"] for f in features} == {"street", "community", "grid"}
    assert sheet.status_code == 200 and sheet.content[:2] == b"PK"
    # The market layer, all of it and nothing else (row 1: Chinese headers, row 2: fields).
    active = openpyxl.load_workbook(io.BytesIO(sheet.content)).active
    assert active is not None
    header, *rows = list(active.iter_rows(min_row=2, values_only=True))
    exported = {(row[header.index("code")], row[header.index("layer")]) for row in rows}
    with psycopg.connect(demo_dsn) as conn:
        markets = {(code, "market") for (code,) in conn.execute(
            "SELECT code FROM site WHERE layer = 'market'")}
        others = conn.execute("SELECT count(*) FROM site WHERE layer <> 'market'").fetchone()
    assert exported == markets and len(rows) == len(markets) > 0
    assert others is not None and others[0] > 0  # there were other layers to leave out
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert bad_format.status_code == 422


def test_cli_import_prints_one_line_per_bad_row(dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "sites.csv"
    path.write_text("name,layer,lon,lat\n甲,market,120.70,31.31\n乙,zoo,120.70,31.31\n"
                    "丙,market,abc,31.31\n", encoding="utf-8")
    result = runner.invoke(cli_app, ["import", "sites", str(path)], env={"DATABASE_URL": dsn})
    assert result.exit_code == 1
    assert "row 3, layer: unknown site layer 'zoo'" in result.output
    assert "row 4, lon: 'abc' is not a finite number" in result.output
    assert "Traceback" not in result.output
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM site").fetchone() == (0,)


def test_cli_import_then_export(dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "sites.csv"
    path.write_text("name,lon,lat,permit\n工地,120.70,31.31,A-1\n", encoding="utf-8")
    env = {"DATABASE_URL": dsn}
    imported = runner.invoke(cli_app, ["import", "sites", str(path), "--layer",
                                       "construction_site"], env=env)
    assert imported.exit_code == 0, imported.output
    assert "1 created" in imported.stdout
    out = tmp_path / "out.gpkg"
    exported = runner.invoke(cli_app, ["export", "construction_site", "--format", "gpkg",
                                       "--out", str(out)], env=env)
    assert exported.exit_code == 0, exported.output
    frame = gpd.read_file(out)
    assert frame["permit"].tolist() == ["A-1"] and len(frame) == 1
