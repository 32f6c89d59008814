"""/api/v1/scores: points at risk and lost, rework rate and time to rectify per unit, community
and site, by period or campaign phase, and the workbook for meetings, on known numbers."""

from __future__ import annotations

import io
from typing import Any

import openpyxl
import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.conftest import fold_tallies

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
    fold_tallies(dsn)


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


# -- rework rate, time to rectify, sites, phases, the workbook --------------------------------

JUNE = {"since": "2026-06-01T00:00:00+08:00", "until": "2026-07-01T00:00:00+08:00"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _issue(conn: psycopg.Connection[Any], unit: str, category: str, status: str,
           reported: str, *, deadline: str = "2099-01-01 09:00", closed: str | None = None,
           rework: int = 0, site: str | None = None, rectified: tuple[str, ...] = ()) -> None:
    """One issue (times local, +08) with a 'rectify' event at each of ``rectified``."""
    row = conn.execute(
        "INSERT INTO issue (category_code, geom, description, source, status, reported_at,"
        " deadline, closed_at, rework_count, lead_unit_id, site_id)"
        " VALUES (%s, ST_SetSRID(ST_MakePoint(120.5, 31.5), 4326), 'x', 'supervision', %s,"
        " (%s || '+08')::timestamptz, (%s || '+08')::timestamptz,"
        " (%s || '+08')::timestamptz, %s, (SELECT id FROM unit WHERE code = %s),"
        " (SELECT id FROM site WHERE name = %s)) RETURNING id",
        [category, status, reported, deadline, closed, rework, unit, site]).fetchone()
    assert row is not None
    for at in rectified:
        conn.execute("INSERT INTO issue_event (issue_id, at, actor, action, from_status,"
                     " to_status) VALUES (%s, (%s || '+08')::timestamptz, 'unit', 'rectify',"
                     " 'assigned', 'rectified')", [row[0], at])


@pytest.fixture
def measured(dsn: str) -> None:
    """Unit C's June: five issues rectified at known times, two of them sent back; unit D's
    two issues an hour either side of the attack phase's local ends."""
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO unit (code, name, kind) VALUES ('C', '城管中队', 'functional'),"
                     " ('D', '市场监管所', 'functional')")
        conn.execute(
            "INSERT INTO site (layer, code, name, geom) VALUES"
            " ('market', 'MKT1', '湖东菜市场', ST_SetSRID(ST_MakePoint(120.5, 31.5), 4326)),"
            " ('old_compound', NULL, '湖东新村', ST_SetSRID(ST_MakePoint(120.6, 31.5), 4326))")
        # first rectification after 12 h, on time
        _issue(conn, "C", "MKT-03", "verified", "2026-06-01 09:00", deadline="2026-06-03 09:00",
               closed="2026-06-02 09:00", site="湖东菜市场", rectified=("2026-06-01 21:00",))
        # 24 h, sent back twice, closed late: loses its 0.3
        _issue(conn, "C", "MKT-03", "verified", "2026-06-02 09:00", deadline="2026-06-04 09:00",
               closed="2026-06-06 09:00", rework=2, site="湖东菜市场",
               rectified=("2026-06-03 09:00", "2026-06-04 09:00", "2026-06-05 09:00"))
        # 6 h, sent back, being redone
        _issue(conn, "C", "CMP-01", "assigned", "2026-06-03 09:00", rework=1, site="湖东新村",
               rectified=("2026-06-03 15:00",))
        # never rectified: no time to rectify, not in the rework rate's denominator
        _issue(conn, "C", "CTY-05", "assigned", "2026-06-03 09:00")
        # 24 h, awaiting verification
        _issue(conn, "C", "MKT-01", "rectified", "2026-06-04 09:00", site="湖东菜市场",
               rectified=("2026-06-05 09:00",))
        # 2 h, on time
        _issue(conn, "C", "CTY-01", "verified", "2026-06-06 09:00", deadline="2026-06-08 09:00",
               closed="2026-06-07 09:00", rectified=("2026-06-06 11:00",))
        _issue(conn, "D", "MKT-01", "assigned", "2026-05-01 07:00")  # 4-30 23:00 UTC: attack
        _issue(conn, "D", "MKT-01", "assigned", "2026-07-01 07:00")  # 6-30 23:00 UTC: not
    fold_tallies(dsn)


def _by_code(rows: list[dict[str, Any]]) -> dict[str | None, dict[str, Any]]:
    return {row["code"]: row for row in rows}


@pytest.mark.usefixtures("measured")
def test_rework_rate_counts_cases_sent_back_over_cases_rectified(client: TestClient) -> None:
    c = _by_code(client.get("/api/v1/scores", params=JUNE).json())["C"]
    assert (c["issues"], c["reworks"]) == (6, 3)
    # 2 cases sent back of the 5 that reached rectification; not 3 reworks / 5 (0.6), not
    # 2 of all 6 issues (0.333), not 3 reworks / 7 rectifications (0.429)
    assert c["rework_rate"] == pytest.approx(0.4)
    assert c["on_time_rate"] == pytest.approx(0.667)


@pytest.mark.usefixtures("measured")
def test_time_to_rectify_runs_to_the_first_rectification(client: TestClient) -> None:
    c = _by_code(client.get("/api/v1/scores", params=JUNE).json())["C"]
    # (12 + 24 + 6 + 24 + 2) / 5; to the last rectification it would be 23.2
    assert c["avg_hours_to_rectify"] == pytest.approx(13.6)


@pytest.mark.usefixtures("scored")
def test_measures_without_rectifications_are_null_not_zero(client: TestClient) -> None:
    b = _by_code(client.get("/api/v1/scores", params=PERIOD).json())["B"]
    # B's verified issue has no audit events: no time to rectify is known
    assert b["avg_hours_to_rectify"] is None
    assert b["rework_rate"] == pytest.approx(0.0)


@pytest.mark.usefixtures("measured")
def test_sites_are_charged_for_their_linked_issues(client: TestClient) -> None:
    rows = client.get("/api/v1/scores", params={**JUNE, "group": "site"}).json()
    assert [(r["rank"], r["code"], r["name"], r["kind"], r["layer"]) for r in rows] == [
        (1, "MKT1", "湖东菜市场", "site", "market"),
        (2, None, "湖东新村", "site", "old_compound")]
    market, compound = rows
    assert (market["issues"], market["open"]) == (3, 1)  # the unlinked issues are not here
    assert market["points_lost"] == pytest.approx(0.3)
    assert market["points_at_risk"] == pytest.approx(0.2)
    assert market["rework_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert market["avg_hours_to_rectify"] == pytest.approx(20.0)
    assert (compound["issues"], compound["rework_rate"]) == (1, pytest.approx(1.0))
    assert compound["points_at_risk"] == pytest.approx(0.1)


def test_default_phases_are_listed_by_date(client: TestClient) -> None:
    body = client.get("/api/v1/scores/phases", params={"year": 2026}).json()
    assert [(p["code"], p["name_zh"], p["starts_on"], p["ends_on"]) for p in body] == [
        ("attack", "重点攻坚", "2026-05-01", "2026-06-30"),
        ("compliance", "全面达标", "2026-07-01", "2026-08-31"),
        ("consolidation", "巩固提高", "2026-09-01", "2026-12-31")]
    assert {p["year"] for p in client.get("/api/v1/scores/phases").json()} == {2026, 2027}


@pytest.mark.usefixtures("scored", "measured")
def test_a_phase_is_its_local_days(client: TestClient) -> None:
    attack = _by_code(client.get("/api/v1/scores",
                                 params={"phase": "attack", "year": 2026}).json())
    # May and June; D's first hour of May 1 in China is in, its first hour of July 1 is out
    assert {k: r["issues"] for k, r in attack.items()} == {"A": 4, "B": 2, "C": 6, "D": 1}
    compliance = client.get("/api/v1/scores", params={"phase": "compliance", "year": 2026})
    assert [(r["code"], r["issues"]) for r in compliance.json()] == [("D", 1)]


@pytest.mark.parametrize("params", [
    {"phase": "nope", "year": 2026},
    {"phase": "attack", "year": 2031},  # no phases defined for that year
    {"phase": "attack", "year": 1999},
    {"phase": "attack", "year": "next"},
    {"phase": "attack", "since": "2026-05-01T00:00:00+08:00"},
    {"year": 2026},
    {"group": "street"},
])
@pytest.mark.parametrize("path", ["/api/v1/scores", "/api/v1/scores.xlsx"])
def test_bad_phases_and_years_are_problem_422(client: TestClient, path: str,
                                              params: dict[str, Any]) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "validation-failed"


def test_an_unknown_phase_names_the_known_ones(client: TestClient) -> None:
    detail = client.get("/api/v1/scores", params={"phase": "nope", "year": 2026}).json()
    assert "attack, compliance, consolidation" in detail["detail"]


@pytest.mark.usefixtures("scored", "measured")
def test_workbook_for_meetings(client: TestClient) -> None:
    params: dict[str, str | int] = {"phase": "attack", "year": 2026}
    response = client.get("/api/v1/scores.xlsx", params=params)
    assert response.status_code == 200
    assert response.headers["content-type"] == XLSX
    assert ('filename="scores-unit-2026-05-01-2026-06-30.xlsx"'
            in response.headers["content-disposition"])
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    assert sheet["A1"].value == "创建工作得分排名（责任单位） 重点攻坚 2026-05-01 至 2026-06-30"
    assert str(sheet["A2"].value).startswith(
        "Scores and rankings by unit, Key attack phase, 2026-05-01 to 2026-06-30")
    # how to read the rates: one line in Chinese, then one in English
    assert str(sheet["A3"].value).startswith("调整率：经验贝叶斯估计")
    assert "案卷少于20件的不参与比率排名（案卷过少，不排名）" in str(sheet["A3"].value)
    assert str(sheet["A4"].value).startswith("Adjusted rate: empirical Bayes")
    headers = [c.value for c in sheet[5]]
    assert headers[:3] == ["排名", "编码", "名称"]
    assert "返工率" in headers and "按期结案率" in headers and "平均整改用时(小时)" in headers
    assert "返工率(调整)" in headers and "返工率下限(95%)" in headers
    fields = [c.value for c in sheet[6]]
    assert sheet.freeze_panes == "A7"
    ranked = client.get("/api/v1/scores", params=params).json()
    rows = [dict(zip(fields, (c.value for c in row), strict=True))
            for row in sheet.iter_rows(min_row=7)]
    assert [(r["rank"], r["code"]) for r in rows] == [(r["rank"], r["code"]) for r in ranked]
    c = next(r for r in rows if r["code"] == "C")
    assert (c["issues"], c["kind"]) == (6, "职能部门")
    assert c["rework_rate"] == pytest.approx(0.4)
    assert c["avg_hours_to_rectify"] == pytest.approx(13.6)
    assert c["rework_rate_adjusted"] == pytest.approx(
        next(r for r in ranked if r["code"] == "C")["rework_rate_adjusted"])
    row_c = 7 + rows.index(c)
    rate = sheet.cell(row_c, fields.index("rework_rate") + 1)
    assert (rate.data_type, rate.number_format) == ("n", "0.0%")
    assert sheet.cell(row_c, fields.index("on_time_rate") + 1).number_format == "0.0%"
    assert sheet.column_dimensions["C"].width >= len("城管中队") * 2


def test_workbook_of_an_empty_period_has_its_headers(client: TestClient) -> None:
    response = client.get("/api/v1/scores.xlsx", params={**PERIOD, "group": "site"})
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    assert sheet["A1"].value == "创建工作得分排名（点位） 2026-05-01 至 2026-05-31"
    assert (sheet.max_row, sheet["A6"].value) == (6, "rank")
