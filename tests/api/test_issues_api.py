"""POST /api/v1/issues stores an issue already assigned; listing, reading, audit trail."""

from __future__ import annotations

import threading

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from api.app import create_app
from api.schemas.issues import IssueCollection, IssueCreated
from geo.crs import wgs84_to_gcj02
from layers.auth import tokens
from layers.db.settings import Settings
from layers.issues.records import IssueEvent


@pytest.fixture
def inspector(demo_dsn: str) -> dict[str, str]:
    with psycopg.connect(demo_dsn) as conn:
        return {"Authorization": "Bearer " + tokens.create(conn, role="inspector", name="巡查员A")}


@pytest.fixture
def market(demo_dsn: str) -> tuple[float, float, str, str]:
    """A point inside a demo market, with the market's code and its grid's code."""
    with psycopg.connect(demo_dsn) as conn:
        row = conn.execute("""
            SELECT ST_X(p), ST_Y(p), s.code, j.code
            FROM site s, ST_PointOnSurface(s.geom) p, jurisdiction j
            WHERE s.layer = 'market' AND j.level = 'grid' AND ST_Covers(j.geom, p)
            ORDER BY s.code LIMIT 1""").fetchone()
    assert row is not None
    return row[0], row[1], row[2], row[3]


def test_created_issue_is_assigned_and_audited(demo_client: TestClient, inspector: dict[str, str],
                                               market: tuple[float, float, str, str]) -> None:
    lon, lat, site, grid = market
    response = demo_client.post("/api/v1/issues", headers=inspector, json={
        "category": "MKT-01", "lon": lon, "lat": lat, "description": "北门外占道经营"})
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/geo+json"
    created = IssueCreated.model_validate(response.json())
    props = created.properties
    assert props.status == "assigned"
    assert props.site == site
    assert props.jurisdiction == grid
    assert props.functional_unit == "CG"  # MKT-01's department
    assert props.lead_unit == "CG"
    assert props.territorial_unit is not None
    assert props.deadline is not None
    assert (props.deadline - props.reported_at).total_seconds() == 24 * 3600
    assert response.headers["location"] == f"/api/v1/issues/{created.id}"

    trail = demo_client.get(f"/api/v1/issues/{created.id}/events").json()
    events = TypeAdapter(list[IssueEvent]).validate_python(trail)
    assert [(e.action, e.to_status) for e in events] == [("report", "reported"),
                                                          ("assign", "assigned")]
    assert events[0].actor == "巡查员A"
    assert events[1].data["site_id"] is not None

    fetched = demo_client.get(f"/api/v1/issues/{created.id}").json()
    assert fetched["properties"]["site"] == site


def test_gcj02_coordinates_are_converted(demo_client: TestClient, inspector: dict[str, str],
                                         market: tuple[float, float, str, str]) -> None:
    lon, lat, site, _ = market
    glon, glat = wgs84_to_gcj02(lon, lat)
    response = demo_client.post("/api/v1/issues", headers=inspector, json={
        "category": "MKT-02", "location": {"type": "Point",
                                           "coordinates": [float(glon), float(glat)]},
        "crs": "gcj02", "description": "流动摊贩"})
    assert response.status_code == 201, response.text
    got = response.json()["geometry"]["coordinates"]
    assert abs(got[0] - lon) < 1e-7 and abs(got[1] - lat) < 1e-7
    assert response.json()["properties"]["site"] == site
    declared_wrong = demo_client.post("/api/v1/issues", headers=inspector, json={
        "category": "MKT-02", "lon": float(glon), "lat": float(glat), "crs": "wgs84",
        "description": "流动摊贩"})
    assert declared_wrong.json()["geometry"]["coordinates"] != got  # ~500 m apart


def test_nearby_open_issues_of_the_same_category_are_hinted(
        demo_client: TestClient, inspector: dict[str, str],
        market: tuple[float, float, str, str]) -> None:
    lon, lat, _, _ = market
    body = {"category": "MKT-04", "lon": lon, "lat": lat, "description": "市场周边暴露垃圾"}
    first = demo_client.post("/api/v1/issues", headers=inspector, json=body).json()
    second = demo_client.post("/api/v1/issues", headers=inspector,
                         json={**body, "lon": lon + 0.0001}).json()
    assert first["id"] in [n["id"] for n in second["nearby"]]
    assert all(n["distance_m"] <= 50 for n in second["nearby"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"category": "NOPE-01"}, "category"),
        ({"lon": 100.0, "lat": 31.3}, "location"),
        ({"lon": 200.0}, "lon"),
        ({"description": ""}, "description"),
        ({"description": "x" * 4001}, "description"),
        ({"source": "rumour"}, "source"),
        ({"crs": "bd09"}, "crs"),
        ({"reported_at": "2026-05-03T09:00:00"}, "reported_at"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_bad_input_is_a_422_problem_and_stores_nothing(
        demo_client: TestClient, inspector: dict[str, str], demo_dsn: str,
        market: tuple[float, float, str, str], body: dict[str, object], field: str) -> None:
    lon, lat, _, _ = market
    good = {"category": "CTY-05", "lon": lon, "lat": lat, "description": "暴露垃圾"}
    with psycopg.connect(demo_dsn) as conn:
        before = conn.execute("SELECT count(*) FROM issue").fetchone()
    response = demo_client.post("/api/v1/issues", headers=inspector, json={**good, **body})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in response.text
    assert "Traceback" not in response.text
    with psycopg.connect(demo_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM issue").fetchone() == before


def test_reporting_needs_a_reporting_role(demo_client: TestClient, demo_dsn: str,
                                          market: tuple[float, float, str, str],
                                          anonymous: dict[str, str]) -> None:
    lon, lat, _, _ = market
    body = {"category": "CTY-05", "lon": lon, "lat": lat, "description": "暴露垃圾"}
    assert demo_client.post("/api/v1/issues", json=body, headers=anonymous).status_code == 401
    with psycopg.connect(demo_dsn) as conn:
        viewer = tokens.create(conn, role="viewer", name="测试")
    denied = demo_client.post("/api/v1/issues", json=body,
                         headers={"Authorization": f"Bearer {viewer}"})
    assert denied.status_code == 403
    assert denied.json()["code"] == "forbidden"
    bad = demo_client.post("/api/v1/issues", json=body, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"] == "Bearer"


def test_list_filters_and_paging(demo_client: TestClient) -> None:
    page = demo_client.get("/api/v1/issues", params={"status": "assigned", "limit": 5})
    assert page.status_code == 200
    collection = IssueCollection.model_validate(page.json())
    body = page.json()
    assert body["numberReturned"] == len(collection.features) <= 5
    assert all(f.properties.status == "assigned" for f in collection.features)
    assert any(link["rel"] == "next" for link in body["links"])
    overdue = demo_client.get("/api/v1/issues", params={"overdue": "true", "limit": 1000}).json()
    assert all(f["properties"]["overdue"] for f in overdue["features"])
    bbox = demo_client.get("/api/v1/issues", params={"bbox": "120.0,31.0,120.1,31.1"}).json()
    assert bbox["numberMatched"] == 0
    bad = demo_client.get("/api/v1/issues", params={"bbox": "1,2,3"})
    assert bad.status_code == 422


def test_unknown_issue_is_404_problem(demo_client: TestClient) -> None:
    response = demo_client.get("/api/v1/issues/SW9999999")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_a_retry_with_the_same_idempotency_key_creates_one_issue(
        demo_client: TestClient, inspector: dict[str, str], demo_dsn: str,
        market: tuple[float, float, str, str]) -> None:
    lon, lat, _, _ = market
    body = {"category": "CTY-05", "lon": lon, "lat": lat, "description": "暴露垃圾"}
    headers = {**inspector, "Idempotency-Key": "phone-7f3a-0001"}
    first = demo_client.post("/api/v1/issues", headers=headers, json=body)
    retry = demo_client.post("/api/v1/issues", headers=headers, json=body)
    assert first.status_code == retry.status_code == 201
    assert retry.json()["id"] == first.json()["id"]
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    with psycopg.connect(demo_dsn) as conn:
        count = conn.execute("SELECT count(*) FROM issue WHERE description = '暴露垃圾'"
                             " AND reported_at > now() - interval '1 hour'").fetchone()
    assert count == (1,)
    reused = demo_client.post("/api/v1/issues", headers=headers,
                              json={**body, "description": "另一个问题"})
    assert reused.status_code == 422
    assert "Idempotency-Key" in reused.json()["detail"]


def test_concurrent_retries_with_one_key_create_one_issue(
        demo_dsn: str, inspector: dict[str, str], market: tuple[float, float, str, str]) -> None:
    lon, lat, _, _ = market
    body = {"category": "CTY-04", "lon": lon, "lat": lat, "description": "非法小广告"}
    headers = {**inspector, "Idempotency-Key": "phone-race"}
    app = create_app(Settings(database_url=demo_dsn))
    ids: list[str] = []
    with TestClient(app) as one, TestClient(app) as two:
        barrier = threading.Barrier(2)

        def post(client: TestClient) -> None:
            barrier.wait()
            ids.append(client.post("/api/v1/issues", headers=headers, json=body).json()["id"])

        threads = [threading.Thread(target=post, args=(c,)) for c in (one, two)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(ids) == 2
    assert ids[0] == ids[1]
    with psycopg.connect(demo_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM issue WHERE description = '非法小广告'"
                            ).fetchone() == (1,)
