"""``/api/v1/revisions`` and ``sitewatch revisions``: what an import moved, read back; the
issue's audit trail over HTTP; hostile ids and page sizes refused before any work."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.main import app
from api.routes.revisions import RevisionDetail
from tests import small_district
from tests.small_district import District

runner = CliRunner()
Headers = dict[str, str]


def _import(client: TestClient, admin: Headers, path: Path) -> Any:
    with path.open("rb") as f:
        response = client.post("/api/v1/imports", headers=admin,
                               data={"kind": "jurisdictions"},
                               files={"file": ("新网格.geojson", f, "application/geo+json")})
    return response


def test_an_import_names_its_revision_and_the_revision_lists_what_moved(
        client: TestClient, district: District, admin: Headers, tmp_path: Path) -> None:
    imported = _import(client, admin, small_district.redrawn_file(tmp_path))
    assert imported.status_code == 201, imported.text
    revision = imported.json()["reassigned"]["revision"]

    listed = client.get("/api/v1/revisions", headers=admin)
    assert listed.status_code == 200
    [row] = listed.json()
    assert row["id"] == revision and row["kind"] == "import"
    assert row["source"] == "新网格.geojson" and row["actor"] == "test admin"
    assert (row["examined"], row["changed"], row["lead_changed"]) == (5, 2, 2)

    first = client.get(f"/api/v1/revisions/{revision}", params={"limit": 1}, headers=admin)
    assert first.status_code == 200, first.text
    body = RevisionDetail.model_validate(first.json()).model_dump(by_alias=True)
    assert body["units"] == [
        {"unit": "W", "name": "湖西社区", "gained": 2, "lost": 0, "points_gained": 0.4,
         "points_lost": 0.0},
        {"unit": "E", "name": "湖东社区", "gained": 0, "lost": 2, "points_gained": 0.0,
         "points_lost": 0.4}]
    assert body["pairs"] == [{"from_unit": "E", "to_unit": "W", "issues": 2, "points": 0.4}]
    assert body["points_moved"] == pytest.approx(0.4)
    changes = first.json()["changes"]
    assert changes["type"] == "FeatureCollection"
    assert (changes["numberMatched"], changes["numberReturned"]) == (2, 1)
    [feature] = changes["features"]
    assert feature["geometry"]["type"] == "Point"
    assert feature["properties"]["old_lead_unit"] == "E"
    assert feature["properties"]["new_lead_unit"] == "W"
    assert feature["properties"]["new_jurisdiction"] == "CW"
    [following] = [link["href"] for link in changes["links"] if link["rel"] == "next"]
    second = client.get(following, headers=admin).json()["changes"]
    pages = [f["id"] for f in changes["features"] + second["features"]]
    assert sorted(pages) == sorted(district.moving)
    assert [link["rel"] for link in second["links"]] == ["self"]


def test_the_events_of_an_issue_show_the_revision_change(
        client: TestClient, district: District, admin: Headers, tmp_path: Path) -> None:
    assert _import(client, admin, small_district.redrawn_file(tmp_path)).status_code == 201
    events = client.get(f"/api/v1/issues/{district.moving[0]}/events").json()
    assert [e["action"] for e in events] == ["report", "assign", "reassign"]
    assert events[-1]["data"]["lead_unit_id"] == [district.east_unit, district.west_unit]
    assert events[-1]["data"]["revision"] >= 1
    unmoved = client.get(f"/api/v1/issues/{district.issues[0]}/events").json()
    assert "reassign" not in [e["action"] for e in unmoved]


def test_a_refused_import_stores_no_revision(
        client: TestClient, district: District, admin: Headers, tmp_path: Path) -> None:
    refused = _import(client, admin, small_district.redrawn_file(tmp_path, bad_level=True))
    assert refused.status_code == 422
    assert client.get("/api/v1/revisions", headers=admin).json() == []


@pytest.mark.parametrize(("path", "status"), [
    ("/api/v1/revisions/abc", 422),
    ("/api/v1/revisions/0", 422),
    ("/api/v1/revisions/-1", 422),
    ("/api/v1/revisions/99999999999999999999999", 422),
    ("/api/v1/revisions/1%20OR%201=1", 422),
    ("/api/v1/revisions/424242", 404),
    ("/api/v1/revisions?limit=100000", 422),
    ("/api/v1/revisions?limit=0", 422),
    ("/api/v1/revisions?offset=-1", 422),
    ("/api/v1/revisions?offset=99999999999", 422),
    ("/api/v1/revisions/1?limit=1001", 422),
    ("/api/v1/revisions/1?offset=99999999999", 422),
])
def test_hostile_ids_and_page_sizes_are_refused(client: TestClient, admin: Headers,
                                                path: str, status: int) -> None:
    response = client.get(path, headers=admin)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_only_the_office_reads_revisions(client: TestClient, dsn: str,
                                         bearer_for: Callable[..., Headers]) -> None:
    for role, status in (("viewer", 403), ("inspector", 403), ("supervisor", 200)):
        assert client.get("/api/v1/revisions", headers=bearer_for(dsn, role)
                          ).status_code == status, role


def test_cli_lists_and_shows_revisions(dsn: str, district: District, tmp_path: Path) -> None:
    env = {"DATABASE_URL": dsn}
    imported = runner.invoke(app, ["import", "jurisdictions",
                                   str(small_district.redrawn_file(tmp_path))], env=env)
    assert imported.exit_code == 0, imported.output
    assert "stored as revision 1" in imported.output
    listed = runner.invoke(app, ["revisions", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "redrawn.geojson" in listed.output and "1 revision(s)" in listed.output
    shown = runner.invoke(app, ["revisions", "show", "1"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "revision 1: import by cli:" in shown.output
    assert "2 of 5 open issues examined changed" in shown.output
    assert "points at risk that changed hands 0.4" in " ".join(shown.output.split())
    assert all(public_id in shown.output for public_id in district.moving)
    assert "CE -> CW" in shown.output and "E -> W" in shown.output
    missing = runner.invoke(app, ["revisions", "show", "99"], env=env)
    assert missing.exit_code == 1 and "no revision 99" in missing.output


def test_cli_reassign_keeps_its_note_with_the_revision(dsn: str, district: District) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE jurisdiction SET unit_id = %s WHERE code = 'CE'",
                     [district.west_unit])
    env = {"DATABASE_URL": dsn}
    moved = runner.invoke(app, ["reassign", "--note", "湖东并入湖西"], env=env)
    assert moved.exit_code == 0, moved.output
    assert "changed 3; stored as revision 1" in moved.output
    shown = runner.invoke(app, ["revisions", "show", "1", "--changes", "0"], env=env)
    assert "note: 湖东并入湖西" in shown.output and "reassign by cli:" in shown.output


def test_a_boundary_edit_through_the_api_is_a_revision_of_its_admin(
        client: TestClient, district: District, admin: Headers) -> None:
    # 湖西 grown over the border strip: the issues there change hands or are flagged.
    grown = small_district.box(small_district.WEST, small_district.REDRAWN)
    edited = client.patch("/api/v1/jurisdictions/CW", headers=admin, json={"geometry": grown})
    assert edited.status_code == 200, edited.text
    [row] = client.get("/api/v1/revisions", headers=admin).json()
    assert (row["kind"], row["source"], row["actor"]) == ("edit", "jurisdiction CW",
                                                          "test admin")
    assert row["changed"] > 0 and row["source_sha256"] is None
