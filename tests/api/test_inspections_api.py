"""/api/v1/inspections over HTTP: plan and store, GeoJSON route, visits, findings, roles."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from api.schemas.inspections import RoundCollection, RouteFeature, StopFeature
from layers.auth import tokens
from layers.inspections.rounds import RoundSummary

BASE = "/api/v1/inspections"


def bearer(dsn: str, role: str, unit: str | None = None) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        return {"Authorization": "Bearer " + tokens.create(conn, role=role, unit_code=unit,
                                                           name=f"{role} 张三")}


@pytest.fixture
def supervisor(demo_dsn: str) -> dict[str, str]:
    return bearer(demo_dsn, "supervisor")


def stored_rows(dsn: str) -> tuple[int, int, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM inspection_round),"
                           " (SELECT count(*) FROM inspection_stop),"
                           " (SELECT count(*) FROM issue)").fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def plan(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post(BASE, headers=headers, json={"seed": 7, **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_supervisor_plans_a_round_and_reads_it_back_as_a_walking_route(
        demo_client: TestClient, supervisor: dict[str, str]) -> None:
    response = demo_client.post(BASE, headers=supervisor,
                                json={"size": 6, "seed": 7, "start": [120.70, 31.31]})
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/geo+json"
    created = RoundCollection.model_validate(response.json())
    assert created.round is not None and created.round.created_by == "supervisor 张三"
    assert response.headers["location"] == f"{BASE}/{created.round.id}"
    read = RoundCollection.model_validate(
        demo_client.get(f"{BASE}/{created.round.id}", headers=supervisor).json())
    assert read.round is not None
    stops = [f for f in read.features if isinstance(f, StopFeature)]
    [line] = [f for f in read.features if isinstance(f, RouteFeature)]
    assert [s.properties.seq for s in stops] == [1, 2, 3, 4, 5, 6]
    assert all(s.properties.checklist for s in stops)
    assert {s.properties.reason["why"] for s in stops} <= {"stratum", "risk"}
    # The line starts where the walk starts, then passes the stops in walking order.
    assert [list(p) for p in line.geometry.coordinates] == [
        [120.70, 31.31], *([list(s.geometry.coordinates)[:2] for s in stops])]
    assert line.properties.length_m == read.round.route_length_m > 0
    listed = demo_client.get(BASE, headers=supervisor).json()
    assert [r.id for r in TypeAdapter(list[RoundSummary]).validate_python(listed)] == [
        created.round.id]


def test_a_dry_run_proposes_and_stores_nothing(demo_client: TestClient, demo_dsn: str,
                                               supervisor: dict[str, str]) -> None:
    before = stored_rows(demo_dsn)
    response = demo_client.post(BASE, headers=supervisor, json={"seed": 3, "dry_run": True})
    assert response.status_code == 200, response.text
    proposal = RoundCollection.model_validate(response.json())
    assert proposal.round is None and proposal.seed == 3 and proposal.min_size == 5
    assert len([f for f in proposal.features if isinstance(f, StopFeature)]) == 8
    assert stored_rows(demo_dsn) == before


@pytest.mark.parametrize(("body", "words"), [
    ({"size": 4}, "at least 5 places"),
    ({"size": 0}, "size"),
    ({"cover_rounds": 0}, "cover_rounds"),
    ({"weights": {"overdue": -1}}, "overdue"),
    ({"planned_for": "2026-13-01"}, "planned_for"),
    ({"start": [500, 31]}, "start"),
    ({"colour": "red"}, "colour"),
])
def test_bad_plans_are_422_problems_and_write_nothing(
        demo_client: TestClient, demo_dsn: str, supervisor: dict[str, str],
        body: dict[str, Any], words: str) -> None:
    before = stored_rows(demo_dsn)
    response = demo_client.post(BASE, headers=supervisor, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.text
    assert stored_rows(demo_dsn) == before


def test_a_second_round_on_the_same_day_is_a_conflict(demo_client: TestClient,
                                                      supervisor: dict[str, str]) -> None:
    first = plan(demo_client, supervisor, planned_for="2027-01-10")
    again = demo_client.post(BASE, headers=supervisor, json={"planned_for": "2027-01-10"})
    assert again.status_code == 409 and "already planned" in again.json()["detail"]
    assert plan(demo_client, supervisor)["round"]["planned_for"] == "2027-01-20"
    assert first["round"]["planned_for"] == "2027-01-10"


@pytest.mark.parametrize(("role", "may_read", "may_plan", "may_record"), [
    ("admin", True, True, True),
    ("supervisor", True, True, True),
    ("inspector", True, False, True),
    ("viewer", True, False, False),
    ("unit", False, False, False),
])
def test_who_may_read_plan_and_record(demo_client: TestClient, demo_dsn: str,
                                      supervisor: dict[str, str], role: str, may_read: bool,
                                      may_plan: bool, may_record: bool) -> None:
    round_id = plan(demo_client, supervisor)["round"]["id"]
    headers = bearer(demo_dsn, role, unit="CG" if role == "unit" else None)
    expected = {True: {200, 201}, False: {403}}
    assert demo_client.get(BASE, headers=headers).status_code in expected[may_read]
    assert demo_client.get(f"{BASE}/{round_id}", headers=headers).status_code in \
        expected[may_read]
    planned = demo_client.post(BASE, headers=headers, json={"dry_run": True})
    assert planned.status_code in expected[may_plan]
    visit = demo_client.post(f"{BASE}/{round_id}/stops/1/visit", headers=headers)
    assert visit.status_code in expected[may_record]
    anonymous = {"Authorization": ""}  # overrides any header the client sends by default
    for response in (demo_client.get(BASE, headers=anonymous),
                     demo_client.get(f"{BASE}/{round_id}", headers=anonymous),
                     demo_client.post(BASE, headers=anonymous, json={})):
        assert response.status_code == 401


def test_visits_and_findings_become_issues_of_the_round(
        demo_client: TestClient, demo_dsn: str, supervisor: dict[str, str]) -> None:
    created = plan(demo_client, supervisor)
    round_id = created["round"]["id"]
    inspector = bearer(demo_dsn, "inspector")
    visited = demo_client.post(f"{BASE}/{round_id}/stops/1/visit", headers=inspector)
    assert visited.status_code == 200 and visited.json()["visited_by"] == "inspector 张三"
    twice = demo_client.post(f"{BASE}/{round_id}/stops/1/visit", headers=inspector)
    assert twice.status_code == 409 and twice.json()["current"]["visited_by"] == "inspector 张三"
    assert demo_client.post(f"{BASE}/{round_id}/stops/99/visit",
                            headers=inspector).status_code == 404

    stop = created["features"][2]
    lon, lat = stop["geometry"]["coordinates"]
    code = stop["properties"]["checklist"][0]["code"]
    response = demo_client.post(f"{BASE}/{round_id}/findings", headers=inspector, json={
        "findings": [
            {"category": code, "lon": lon, "lat": lat, "description": "督查发现", "seq": 3},
            {"category": "CTY-05", "location": {"type": "Point", "coordinates": [lon, lat]},
             "description": "路边暴露垃圾"}]})
    assert response.status_code == 201, response.text
    ids = response.json()["issues"]
    assert response.json()["round_id"] == round_id and len(ids) == 2
    for public_id in ids:
        issue = demo_client.get(f"/api/v1/issues/{public_id}",
                                headers=inspector).json()["properties"]
        assert issue["source"] == "supervision" and issue["lead_unit"] is not None
    read = demo_client.get(f"{BASE}/{round_id}", headers=inspector).json()
    assert read["round"]["findings"] == 2 and read["round"]["status"] == "in_progress"
    assert read["features"][2]["properties"]["findings"] == [ids[0]]


def test_bad_findings_are_422_problems_by_index_and_store_nothing(
        demo_client: TestClient, demo_dsn: str, supervisor: dict[str, str]) -> None:
    created = plan(demo_client, supervisor)
    round_id = created["round"]["id"]
    lon, lat = created["features"][0]["geometry"]["coordinates"]
    before = stored_rows(demo_dsn)
    response = demo_client.post(f"{BASE}/{round_id}/findings", headers=supervisor, json={
        "findings": [
            {"category": "CTY-05", "lon": lon, "lat": lat, "description": "好的", "seq": 1},
            {"category": "NOPE-01", "lon": lon, "lat": lat, "description": "坏类别"},
            {"category": "CTY-05", "lon": lon, "lat": lat, "description": "坏站", "seq": 77},
            {"category": "CTY-05", "lon": lon + 1.0, "lat": lat, "description": "太远"}]})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [
        (1, "category"), (2, "seq"), (3, "location")]
    assert stored_rows(demo_dsn) == before
    bodies: list[dict[str, Any]] = [
        {"findings": []}, {"findings": [{"category": "CTY-05", "description": "x"}]}]
    for body in bodies:
        shape = demo_client.post(f"{BASE}/{round_id}/findings", headers=supervisor, json=body)
        assert shape.status_code == 422
    unknown = demo_client.post(f"{BASE}/{round_id + 1}/findings", headers=supervisor, json={
        "findings": [{"category": "CTY-05", "lon": lon, "lat": lat, "description": "x"}]})
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert stored_rows(demo_dsn) == before
