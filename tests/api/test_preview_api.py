"""Previews over HTTP and the command line: ``POST /api/v1/imports`` with ``preview=true``,
``PATCH /api/v1/jurisdictions|sites/{code}?preview=true`` and ``sitewatch import ...
--preview`` answer what would happen and store nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.main import app
from tests import small_district
from tests.small_district import District

runner = CliRunner()
Headers = dict[str, str]


def _checksum(dsn: str) -> dict[str, str | None]:
    with psycopg.connect(dsn) as conn:
        return small_district.checksum(conn)


def _post(client: TestClient, headers: Headers, path: Path, **form: str) -> Any:
    with path.open("rb") as f:
        return client.post("/api/v1/imports", headers=headers,
                           data={"kind": "jurisdictions", **form},
                           files={"file": ("新网格.geojson", f, "application/geo+json")})


def test_an_import_preview_answers_200_stores_nothing_and_matches_the_import(
        client: TestClient, dsn: str, district: District, admin: Headers,
        tmp_path: Path) -> None:
    path = small_district.redrawn_file(tmp_path)
    before = _checksum(dsn)
    shown = _post(client, admin, path, preview="true")
    assert shown.status_code == 200, shown.text
    assert _checksum(dsn) == before
    body = shown.json()
    assert body["rows"]["changed_codes"] == ["CE", "CW"]
    assert (body["examined"], body["changed"], body["lead_changed"]) == (5, 2, 2)
    assert body["pairs"] == [{"from_unit": "E", "to_unit": "W", "issues": 2, "points": 0.4}]
    assert body["points_moved"] == pytest.approx(0.4)
    assert set(body["quality"]["counts"]) >= {"gap", "overlap"}

    imported = _post(client, admin, path)
    assert imported.status_code == 201, imported.text
    stored = client.get(f"/api/v1/revisions/{imported.json()['reassigned']['revision']}",
                        headers=admin).json()
    assert stored["pairs"] == body["pairs"] and stored["units"] == body["units"]


def test_an_invalid_file_gives_the_imports_422_and_stores_nothing(
        client: TestClient, dsn: str, district: District, admin: Headers,
        tmp_path: Path) -> None:
    path = small_district.redrawn_file(tmp_path, bad_level=True)
    before = _checksum(dsn)
    previewed = _post(client, admin, path, preview="true")
    imported = _post(client, admin, path)
    assert previewed.status_code == imported.status_code == 422
    assert previewed.json()["errors"] == imported.json()["errors"]
    assert _checksum(dsn) == before


def test_a_preview_needs_the_permission_of_the_import(
        client: TestClient, dsn: str, district: District, tmp_path: Path,
        bearer_for: Callable[..., Headers]) -> None:
    path = small_district.redrawn_file(tmp_path)
    for role in ("supervisor", "viewer"):
        assert _post(client, bearer_for(dsn, role), path, preview="true").status_code == 403
    with path.open("rb") as f:
        issues = client.post("/api/v1/imports", headers=bearer_for(dsn, "admin"),
                             data={"kind": "issues", "preview": "true"},
                             files={"file": ("x.csv", f, "text/csv")})
    assert issues.status_code == 422


def test_a_patch_preview_leaves_the_row_and_the_issues_unchanged(
        client: TestClient, dsn: str, district: District, admin: Headers) -> None:
    grown = small_district.box(small_district.WEST, small_district.REDRAWN)
    before = _checksum(dsn)
    row = client.get("/api/v1/jurisdictions/CW").json()
    shown = client.patch("/api/v1/jurisdictions/CW", headers=admin,
                         params={"preview": "true"}, json={"geometry": grown})
    assert shown.status_code == 200, shown.text
    assert shown.json()["rows"]["changed_codes"] == ["CW"]
    # The strip now lies in both communities: its two issues are flagged, not moved.
    assert (shown.json()["examined"], shown.json()["changed"]) == (2, 2)
    assert client.get("/api/v1/jurisdictions/CW").json() == row
    assert _checksum(dsn) == before

    edited = client.patch("/api/v1/jurisdictions/CW", headers=admin, json={"geometry": grown})
    assert edited.status_code == 200 and edited.json()["type"] == "Feature"
    [revision] = client.get("/api/v1/revisions", headers=admin).json()
    assert (revision["examined"], revision["changed"], revision["lead_changed"]) == (
        shown.json()["examined"], shown.json()["changed"], shown.json()["lead_changed"])


def test_a_site_patch_preview_stores_nothing(
        client: TestClient, dsn: str, district: District, admin: Headers) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO site (code, name, layer, geom) VALUES ('M1', '菜场', 'market',"
                     " ST_SetSRID(ST_MakePoint(120.705, 31.305), 4326))")
    before = _checksum(dsn)
    shown = client.patch("/api/v1/sites/M1", headers=admin, params={"preview": "true"},
                         json={"properties": {"name": "新菜场"}})
    assert shown.status_code == 200, shown.text
    assert shown.json()["rows"]["changed_codes"] == ["M1"] and shown.json()["quality"] is None
    assert _checksum(dsn) == before
    assert client.get("/api/v1/sites/M1").json()["properties"]["name"] == "菜场"
    refused = client.patch("/api/v1/sites/M1", params={"preview": "true"},
                           json={"properties": {"name": "新菜场"}})
    assert refused.status_code in (401, 403)


def test_cli_preview_prints_the_summary_and_stores_nothing(
        dsn: str, district: District, tmp_path: Path) -> None:
    before = _checksum(dsn)
    page = tmp_path / "预览.html"
    shown = runner.invoke(app, ["import", "jurisdictions", "--preview", "--map", str(page),
                                str(small_district.redrawn_file(tmp_path))],
                          env={"DATABASE_URL": dsn})
    assert shown.exit_code == 0, shown.output
    assert _checksum(dsn) == before
    text = " ".join(shown.output.split())  # however the console wrapped it
    assert "预览 preview of redrawn.geojson" in text
    assert "变更 changed 2" in text and "CE, CW" in text
    assert "转移分值 points at risk changing hands 0.4" in text
    assert "原单位 from" in text and "数据质量 data quality" in text
    # Its map is kept (not a line, not an issue) under the token printed.
    with psycopg.connect(dsn) as conn:
        [(token,)] = conn.execute("SELECT token FROM line_preview").fetchall()
    assert f"/maps/revisions/preview/{token}" in text
    # --map wrote the page as one file, its scripts inlined (no server needed).
    html = page.read_text(encoding="utf-8")
    assert all(public_id in html for public_id in district.moving)
    assert "pv_new_lines" in html and 'src="/static' not in html
    alone = runner.invoke(app, ["import", "jurisdictions", "--map", str(page),
                                str(small_district.redrawn_file(tmp_path))],
                          env={"DATABASE_URL": dsn})
    assert alone.exit_code != 0 and "--preview" in alone.output
