"""/api/v1/scores/handovers: the line/block hand-over matrix counted from a history built
through the normal write paths (reports, an import that redraws a border, a supervisor's
assignment, rectifications and failed verifications), plus the older audit formats."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from layers.assignment import load_assigner
from layers.issues import records
from layers.supervision.handovers import Matrix
from tests import small_district

Headers = dict[str, str]


def _transition(client: TestClient, public_id: str, headers: Headers, **body: Any) -> None:
    version = client.get(f"/api/v1/issues/{public_id}").json()["properties"]["version"]
    response = client.post(f"/api/v1/issues/{public_id}/transitions", headers=headers,
                           json={"version": version, **body})
    assert response.status_code == 200, response.text


def _rectify(client: TestClient, public_id: str, unit: Headers, photo: bytes) -> None:
    uploaded = client.post("/api/v1/evidence", headers=unit,
                           files={"file": ("after.jpg", photo, "image/jpeg")})
    assert uploaded.status_code == 201, uploaded.text
    _transition(client, public_id, unit, action="rectify", evidence=[uploaded.json()["ref"]])


def _reported_without_lead(conn: psycopg.Connection[Any], before: dict[str, Any] | None
                           ) -> str:
    """An issue waiting for a unit (status reported) with its 'report' event; with
    ``before``, an early-format 'reassign' event (whole assignment before and after) that
    gave it unit E as its lead while it waited."""
    row = conn.execute(
        "INSERT INTO issue (category_code, geom, description, source, status)"
        " VALUES ('CMP-03', ST_SetSRID(ST_MakePoint(120.717, 31.305), 4326), '待分派',"
        " 'citizen', 'reported') RETURNING id, public_id").fetchone()
    assert row is not None
    conn.execute("INSERT INTO issue_event (issue_id, actor, actor_role, action, to_status)"
                 " VALUES (%s, '市民', 'inspector', 'report', 'reported')", [row[0]])
    if before is not None:
        east = conn.execute("SELECT id FROM unit WHERE code = 'E'").fetchone()
        assert east is not None
        conn.execute("UPDATE issue SET lead_unit_id = %s WHERE id = %s", [east[0], row[0]])
        conn.execute(
            "INSERT INTO issue_event (issue_id, actor, actor_role, action, from_status,"
            " to_status, data) VALUES (%s, 'sitewatch', 'system', 'reassign', 'reported',"
            " 'reported', %s)",
            [row[0], json.dumps({"before": before, "after": {**before, "lead_unit_id": east[0]}})])
    return str(row[1])


@pytest.fixture
def history(dsn: str, client: TestClient, tmp_path: Path, bearer_for: Callable[..., Headers],
            jpeg: Callable[..., bytes]) -> None:
    """湖西 (W) and 湖东 (E) communities and 市场监管 (SCJG, the catalog's department of
    market interiors, MKT-03).

    - the import redrawing the border moves two issues from E to W (reassign E->W, twice);
    - an early-format event moved one of W's issues to E (reassign W->E);
    - E tidied up a market issue SCJG leads, the fix failed (rework E->SCJG); W's own failed fix
      of its own issue is no hand-over;
    - the supervisor assigned to SCJG an issue an early-format event had given E
      (assign E->SCJG), and one waiting for its first unit (no hand-over).
    """
    with psycopg.connect(dsn) as conn:
        district = small_district.build(conn)
        [market] = records.store(conn, *records.prepare(load_assigner(conn), [
            records.NewIssue(category="MKT-03", lon=120.717, lat=31.305,
                             description="占道经营")]), actor="巡查员", actor_role="inspector")
        row = conn.execute("SELECT l.code, t.code FROM issue i JOIN unit l ON l.id ="
                           " i.lead_unit_id JOIN unit t ON t.id = i.territorial_unit_id"
                           " WHERE i.public_id = %s", [market]).fetchone()
        assert row == ("SCJG", "E")
        conn.execute(
            "INSERT INTO issue_event (issue_id, actor, actor_role, action, from_status,"
            " to_status, data) SELECT id, 'sitewatch', 'system', 'reassign', status, status,"
            " jsonb_build_object('lead_unit_id', jsonb_build_array(%s::bigint, %s::bigint))"
            " FROM issue WHERE public_id = %s",
            [district.west_unit, district.east_unit, district.issues[1]])
    admin = bearer_for(dsn, "admin")
    with small_district.redrawn_file(tmp_path).open("rb") as f:
        imported = client.post("/api/v1/imports", headers=admin, data={"kind": "jurisdictions"},
                               files={"file": ("新边界.geojson", f, "application/geo+json")})
    assert imported.status_code == 201, imported.text
    with psycopg.connect(dsn) as conn:  # after the import, which would find them a unit
        waiting = _reported_without_lead(conn, None)
        claimed = _reported_without_lead(conn, {"lead_unit_id": None})
    supervisor = bearer_for(dsn, "supervisor")
    east, west = bearer_for(dsn, "unit", "E"), bearer_for(dsn, "unit", "W")
    _rectify(client, market, east, jpeg(lon=120.717, lat=31.305))
    _transition(client, market, supervisor, action="reopen", note="摊位仍在")
    _rectify(client, district.issues[0], west, jpeg(lon=120.703, lat=31.305))
    _transition(client, district.issues[0], supervisor, action="reopen", note="仍有堆物")
    _transition(client, waiting, supervisor, action="assign", unit="W")
    _transition(client, claimed, supervisor, action="assign", unit="SCJG")


@pytest.mark.usefixtures("history")
def test_the_matrix_counts_each_hand_over_between_units(client: TestClient) -> None:
    response = client.get("/api/v1/scores/handovers")
    assert response.status_code == 200, response.text
    body = response.json()
    assert TypeAdapter(Matrix).validate_python(body).pairs[0].from_code == "E"
    pairs = [(p["from_code"], p["to_code"], p["direction"], p["reassign"], p["assign"],
              p["rework"], p["total"]) for p in body["pairs"]]
    assert pairs == [
        ("E", "SCJG", "territorial->functional", 0, 1, 1, 2),
        ("E", "W", "territorial->territorial", 2, 0, 0, 2),
        ("W", "E", "territorial->territorial", 1, 0, 0, 1),
    ]
    assert [(d["direction"], d["reassign"], d["assign"], d["rework"], d["total"])
            for d in body["directions"]] == [
        ("territorial->territorial", 3, 0, 0, 3),
        ("territorial->functional", 0, 1, 1, 2),
        ("functional->territorial", 0, 0, 0, 0),
        ("functional->functional", 0, 0, 0, 0),
    ]
    first = body["pairs"][0]
    assert (first["from_name"], first["from_kind"], first["to_name"], first["to_kind"]) == (
        "湖东社区", "territorial", "市场监管", "functional")


@pytest.mark.usefixtures("history")
def test_issues_count_by_when_they_were_reported(client: TestClient) -> None:
    body = client.get("/api/v1/scores/handovers",
                      params={"since": "2020-01-01", "until": "2020-02-01"}).json()
    assert body["pairs"] == [] and {d["total"] for d in body["directions"]} == {0}
    assert client.get("/api/v1/scores/handovers",
                      params={"since": "2026-06-01", "until": "2026-05-01"}).status_code == 422


@pytest.mark.usefixtures("history")
def test_the_workbook_carries_the_matrix_as_its_second_sheet(client: TestClient) -> None:
    response = client.get("/api/v1/scores.xlsx")
    assert response.status_code == 200, response.text
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["得分排名", "条块移交", "街道排名"]
    sheet = book["条块移交"]
    assert str(sheet["A1"].value).startswith("条块移交矩阵")
    assert [(sheet.cell(r, 1).value, sheet.cell(r, 2).value) for r in range(3, 7)] == [
        ("块转块（属地→属地）", 3), ("块转条（属地→职能）", 2),
        ("条转块（职能→属地）", 0), ("条转条（职能→职能）", 0)]
    fields = [c.value for c in sheet[8]]
    rows = [dict(zip(fields, (c.value for c in row), strict=True))
            for row in sheet.iter_rows(min_row=9)]
    assert [(r["from_code"], r["to_code"], r["from_kind"], r["to_kind"], r["total"])
            for r in rows] == [("E", "SCJG", "属地单位", "职能部门", 2),
                               ("E", "W", "属地单位", "属地单位", 2),
                               ("W", "E", "属地单位", "属地单位", 1)]
