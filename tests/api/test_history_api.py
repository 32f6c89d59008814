"""Revert over HTTP and the CLI, and issues "as of" a moment: an import reverted brings every
answer back and the audit trail shows both changes in order; as-of answers before and after a
redraw; hostile ids, as_of values and callers refused with problem+json."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.main import app
from api.schemas.history import IssueAsOf
from tests import small_district
from tests.small_district import District

runner = CliRunner()
Headers = dict[str, str]
PROBLEM = "application/problem+json"


def _import(client: TestClient, admin: Headers, path: Path) -> int:
    with path.open("rb") as f:
        response = client.post("/api/v1/imports", headers=admin,
                               data={"kind": "jurisdictions"},
                               files={"file": ("新网格.geojson", f, "application/geo+json")})
    assert response.status_code == 201, response.text
    return int(response.json()["reassigned"]["revision"])


def _answers(client: TestClient, district: District) -> dict[str, dict[str, Any]]:
    keys = ("jurisdiction", "territorial_unit", "functional_unit", "lead_unit", "site",
            "on_boundary", "outside_all", "via_buffer")
    return {i: {k: client.get(f"/api/v1/issues/{i}").json()["properties"][k] for k in keys}
            for i in district.issues}


def test_a_reverted_import_moves_every_issue_back_and_the_trail_shows_both(
        client: TestClient, district: District, admin: Headers, tmp_path: Path) -> None:
    before = _answers(client, district)
    imported = _import(client, admin, small_district.redrawn_file(tmp_path))
    assert _answers(client, district) != before

    reverted = client.post(f"/api/v1/revisions/{imported}/revert", headers=admin,
                           json={"note": "边界画错 / wrong border"})
    assert reverted.status_code == 201, reverted.text
    body = reverted.json()
    assert (body["reverts"], body["lines"], body["changed"]) == (imported, 2, 2)
    assert reverted.headers["location"] == f"/api/v1/revisions/{body['revision']}"
    assert _answers(client, district) == before

    stored = client.get(f"/api/v1/revisions/{body['revision']}", headers=admin).json()
    assert (stored["revision"]["kind"], stored["revision"]["reverts"]) == ("revert", imported)
    assert stored["revision"]["note"] == "边界画错 / wrong border"

    events = client.get(f"/api/v1/issues/{district.moving[0]}/events").json()
    assert [e["action"] for e in events] == ["report", "assign", "reassign", "reassign"]
    there, back = events[2], events[3]
    east, west = district.east_unit, district.west_unit
    assert (there["data"]["revision"], there["data"]["lead_unit_id"]) == (imported, [east, west])
    assert (back["data"]["revision"], back["data"]["lead_unit_id"]) == (
        body["revision"], [west, east])
    assert back["note"] == "边界画错 / wrong border" and back["at"] >= there["at"]

    again = client.post(f"/api/v1/revisions/{imported}/revert", headers=admin)
    assert again.status_code == 409 and again.headers["content-type"].startswith(PROBLEM)
    assert f"already reverted by revision {body['revision']}" in again.json()["detail"]


def test_as_of_answers_of_issues_reported_before_and_after_a_redraw(
        client: TestClient, district: District, admin: Headers, tmp_path: Path) -> None:
    _import(client, admin, small_district.redrawn_file(tmp_path))
    later = client.post("/api/v1/issues", headers=admin, json={
        "category": "CMP-03", "lon": 120.712, "lat": 31.305, "description": "乱堆乱放 新"})
    assert later.status_code == 201, later.text

    before = client.get(f"/api/v1/issues/{district.moving[0]}", params={"as_of": "reported"})
    assert before.status_code == 200, before.text
    then = IssueAsOf.model_validate(before.json()).as_of
    assert before.json()["properties"]["lead_unit"] == "W"  # today's answer, unchanged
    assert (then.answer.jurisdiction, then.answer.lead_unit, then.answer.territorial_unit) == (
        "CE", "E", "E")
    assert then.answer.lead_unit_name == "湖东社区"
    [ce] = [v for v in then.lines if v.table == "jurisdiction" and v.code == "CE"]
    assert ce.valid_to is not None  # the line of then, since redrawn

    after = client.get(f"/api/v1/issues/{later.json()['id']}", params={"as_of": "reported"})
    now = IssueAsOf.model_validate(after.json()).as_of
    assert (now.answer.jurisdiction, now.answer.lead_unit) == ("CW", "W")
    assert all(v.valid_to is None for v in now.lines)

    reported_at = before.json()["properties"]["reported_at"]
    same = client.get(f"/api/v1/issues/{district.moving[0]}", params={"as_of": reported_at})
    assert same.status_code == 200, same.text
    assert same.json()["as_of"]["answer"]["lead_unit"] == "E"
    plain = client.get(f"/api/v1/issues/{district.moving[0]}").json()
    assert "as_of" not in plain


@pytest.mark.parametrize("value", [
    "", "yesterday", "2026-13-01T00:00:00+08:00", "2026-06-01T00:00:00",
    "2000-01-01T00:00:00+00:00", "x" * 41, "reported' OR 1=1", "1e308",
])
def test_bad_as_of_values_are_refused(client: TestClient, district: District,
                                      value: str) -> None:
    response = client.get(f"/api/v1/issues/{district.issues[0]}", params={"as_of": value})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)


def test_as_of_of_an_unknown_issue_is_404(client: TestClient, district: District) -> None:
    response = client.get("/api/v1/issues/SW9999999", params={"as_of": "reported"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)


@pytest.mark.parametrize(("path", "status"), [
    ("/api/v1/revisions/abc/revert", 422),
    ("/api/v1/revisions/0/revert", 422),
    ("/api/v1/revisions/-1/revert", 422),
    ("/api/v1/revisions/99999999999999999999999/revert", 422),
    ("/api/v1/revisions/1%20OR%201=1/revert", 422),
    ("/api/v1/revisions/424242/revert", 404),
])
def test_hostile_revert_ids_are_refused(client: TestClient, admin: Headers, path: str,
                                        status: int) -> None:
    response = client.post(path, headers=admin)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)


def test_a_revert_body_with_unknown_fields_or_a_huge_note_is_refused(
        client: TestClient, district: District, admin: Headers, tmp_path: Path) -> None:
    imported = _import(client, admin, small_district.redrawn_file(tmp_path))
    for body in ({"note": "x" * 4001}, {"reverts": 1}, {"note": 5}):
        response = client.post(f"/api/v1/revisions/{imported}/revert", headers=admin,
                               json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith(PROBLEM)
    assert len(client.get("/api/v1/revisions", headers=admin).json()) == 1


def test_only_an_admin_reverts(client: TestClient, dsn: str, district: District,
                               admin: Headers, tmp_path: Path,
                               bearer_for: Callable[..., Headers]) -> None:
    imported = _import(client, admin, small_district.redrawn_file(tmp_path))
    for headers, status in ((bearer_for(dsn, "supervisor"), 403),
                            (bearer_for(dsn, "unit", "E"), 403),
                            (bearer_for(dsn, "viewer"), 403), ({"Authorization": ""}, 401)):
        response = client.post(f"/api/v1/revisions/{imported}/revert", headers=headers)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
    assert len(client.get("/api/v1/revisions", headers=admin).json()) == 1


def test_a_revert_is_refused_naming_the_later_revision(
        client: TestClient, district: District, admin: Headers, tmp_path: Path) -> None:
    imported = _import(client, admin, small_district.redrawn_file(tmp_path))
    edited = client.patch("/api/v1/jurisdictions/CW", headers=admin,
                          json={"type": "Feature", "properties": {"name": "湖西新社区"}})
    assert edited.status_code == 200, edited.text
    later = client.get("/api/v1/revisions", headers=admin).json()[0]["id"]
    refused = client.post(f"/api/v1/revisions/{imported}/revert", headers=admin)
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith(PROBLEM)
    detail = refused.json()["detail"]
    assert f"修订 {later}" in detail and f"by revision {later}" in detail and "CW" in detail


def test_cli_reverts_and_refuses_twice(dsn: str, district: District, tmp_path: Path) -> None:
    env = {"DATABASE_URL": dsn}
    imported = runner.invoke(app, ["import", "jurisdictions",
                                   str(small_district.redrawn_file(tmp_path))], env=env)
    assert imported.exit_code == 0, imported.output
    done = runner.invoke(app, ["revisions", "revert", "1", "--note", "画错了"], env=env)
    assert done.exit_code == 0, done.output
    assert "reverted revision 1 as revision 2: 2 line(s) put back; 2 of 5" in done.output
    twice = runner.invoke(app, ["revisions", "revert", "1"], env=env)
    assert twice.exit_code == 1
    assert "already reverted by revision 2" in " ".join(twice.output.split())
    shown = runner.invoke(app, ["revisions", "show", "2"], env=env)
    assert "revision 2: revert by cli:" in shown.output and "画错了" in shown.output
    assert "reverting revision 1" in shown.output
