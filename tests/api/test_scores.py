"""/api/v1/scores: points at risk and lost per unit and community, on known numbers."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

PERIOD = {"since": "2026-05-01T00:00:00+08:00", "until": "2026-06-01T00:00:00+08:00"}
SQUARE = "ST_Multi(ST_GeomFromText('POLYGON((120 31, 121 31, 121 32, 120 32, 120 31))', 4326))"


@pytest.fixture
def scored(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO unit (code, name, kind) VALUES ('A', '湖东社区', 'territorial'),"
                     " ('B', '湖西社区', 'territorial')")
        conn.execute(f"""
            INSERT INTO jurisdiction (code, name, level, parent_id, unit_id, geom)
            VALUES ('S', '街道', 'street', NULL, NULL, {SQUARE});
            INSERT INTO jurisdiction (code, name, level, parent_id, unit_id, geom)
            SELECT 'M1', '湖东社区', 'community', id, (SELECT id FROM unit WHERE code = 'A'),
                   {SQUARE} FROM jurisdiction WHERE code = 'S';
            INSERT INTO jurisdiction (code, name, level, parent_id, unit_id, geom)
            SELECT 'G1', '湖东社区第1网格', 'grid', id, unit_id, {SQUARE}
            FROM jurisdiction WHERE code = 'M1';""")
        rows: list[tuple[Any, ...]] = [
            # unit, area, category, status, source, reported, deadline, closed, rework
            ("A", "G1", "CTY-05", "assigned", "self_inspection", "2026-05-10", "2099-01-01",
             None, 0),
            ("A", "G1", "MKT-03", "assigned", "self_inspection", "2026-05-10", "2026-05-12",
             None, 0),
            ("A", "G1", "CTY-01", "verified", "supervision", "2026-05-10", "2026-05-12",
             "2026-05-11", 0),
            ("A", "G1", "CTY-05", "verified", "supervision", "2026-05-10", "2026-05-12",
             "2026-05-14", 1),
            ("B", "M1", "CTY-05", "verified", "external_assessment", "2026-05-20",
             "2026-05-22", "2026-05-21", 0),
            ("B", "M1", "CTY-01", "rejected", "external_assessment", "2026-05-20",
             "2026-05-22", "2026-05-21", 0),
            ("B", "M1", "CTY-05", "assigned", "self_inspection", "2026-04-20", "2026-04-22",
             None, 0),
        ]
        for unit, area, cat, status, source, reported, deadline, closed, rework in rows:
            conn.execute(
                "INSERT INTO issue (category_code, geom, description, source, status,"
                " reported_at, deadline, closed_at, rework_count, lead_unit_id, jurisdiction_id)"
                " VALUES (%s, ST_SetSRID(ST_MakePoint(120.5, 31.5), 4326), 'x', %s, %s,"
                " (%s || ' 09:00+08')::timestamptz, (%s || ' 09:00+08')::timestamptz,"
                " (%s || ' 09:00+08')::timestamptz, %s,"
                " (SELECT id FROM unit WHERE code = %s),"
                " (SELECT id FROM jurisdiction WHERE code = %s))",
                [cat, source, status, reported, deadline, closed, rework, unit, area])


@pytest.mark.usefixtures("scored")
def test_units_ranked_by_points_lost(client: TestClient) -> None:
    body = client.get("/api/v1/scores", params=PERIOD).json()
    by_code = {row["code"]: row for row in body}
    a, b = by_code["A"], by_code["B"]
    assert (a["rank"], b["rank"]) == (1, 2)
    assert (a["issues"], a["open"], a["overdue_open"], a["reworks"]) == (4, 2, 1, 1)
    assert a["points_at_risk"] == pytest.approx(0.5)
    assert a["points_lost"] == pytest.approx(0.5)  # the overdue MKT-03 and the late CTY-05
    assert a["on_time_rate"] == pytest.approx(0.5)
    assert (b["issues"], b["open"]) == (2, 0)  # the April issue is outside the period
    assert b["points_lost"] == pytest.approx(0.2)  # external assessment; rejected ones don't
    assert b["on_time_rate"] == pytest.approx(1.0)


@pytest.mark.usefixtures("scored")
def test_communities_are_charged_for_their_ground(client: TestClient) -> None:
    [m1] = client.get("/api/v1/scores", params={**PERIOD, "group": "community"}).json()
    assert (m1["code"], m1["issues"]) == ("M1", 6)
    assert m1["points_lost"] == pytest.approx(0.7)


def test_bad_periods_are_422(client: TestClient) -> None:
    assert client.get("/api/v1/scores", params={"since": "2026-06-01T00:00:00+08:00",
                                                "until": "2026-05-01T00:00:00+08:00"}
                      ).status_code == 422
    assert client.get("/api/v1/scores", params={"since": "yesterday"}).status_code == 422
    assert client.get("/api/v1/scores", params={"group": "street"}).status_code == 422


@pytest.mark.usefixtures("scored")
def test_accountability_register_explains_the_points_lost(client: TestClient,
                                                          dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO issue_event (issue_id, at, actor, actor_role, action, from_status,"
            " to_status, note) SELECT id, closed_at, '督查指导组', 'supervisor', 'verify',"
            " 'rectified', 'verified', '超期整改' FROM issue WHERE category_code = 'CTY-05'"
            " AND rework_count = 1")
    a = client.get("/api/v1/accountability", params={**PERIOD, "unit": "A"}).json()
    assert (a["overdue"], a["reworks"], a["found_by_assessors"]) == (2, 1, 0)
    assert [e["category"] for e in a["entries"]] == ["MKT-03", "CTY-05"]
    late = a["entries"][1]
    assert late["hours_late"] == pytest.approx(48.0)
    assert [(e["action"], e["note"]) for e in late["events"]] == [("verify", "超期整改")]
    scores = {r["code"]: r for r in client.get("/api/v1/scores", params=PERIOD).json()}
    assert a["points_lost"] == pytest.approx(scores["A"]["points_lost"])
    b = client.get("/api/v1/accountability", params={**PERIOD, "unit": "B"}).json()
    assert (b["found_by_assessors"], len(b["entries"])) == (1, 1)  # rejected one not charged
    assert b["points_lost"] == pytest.approx(scores["B"]["points_lost"])
    missing = client.get("/api/v1/accountability", params={**PERIOD, "unit": "NOPE"})
    assert missing.status_code == 404
