"""/api/v1/orders over HTTP: roles, idempotent writes, the printable page and the workbook."""

from __future__ import annotations

import html
import io
import re

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from layers.auth import tokens


def _bearer(dsn: str, role: str, unit: str | None = None, name: str = "") -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        return {"Authorization": "Bearer " + tokens.create(conn, role=role, unit_code=unit,
                                                           name=name or role)}


@pytest.fixture
def supervisor(demo_dsn: str) -> dict[str, str]:
    return _bearer(demo_dsn, "supervisor", name="督查组 李四")


def test_supervisor_issues_orders_once(demo_client: TestClient,
                                       supervisor: dict[str, str]) -> None:
    first = demo_client.post("/api/v1/orders", headers=supervisor, json={})
    assert first.status_code == 201, first.text
    written = first.json()
    assert written and all(o["kind"] == "order" for o in written)
    again = demo_client.post("/api/v1/orders", headers=supervisor, json={})
    assert (again.status_code, again.json()) == (200, [])
    listed = demo_client.get("/api/v1/orders", params={"limit": 500}).json()
    assert listed["total"] == len(written)
    assert {o["code"] for o in listed["orders"]} == {o["code"] for o in written}
    assert all(o["issued_by"] == "督查组 李四" for o in listed["orders"])


@pytest.mark.parametrize("role", ["inspector", "viewer", "unit"])
def test_only_supervisors_and_admins_issue_orders(demo_client: TestClient, demo_dsn: str,
                                                  role: str, anonymous: dict[str, str]) -> None:
    headers = _bearer(demo_dsn, role, unit="CG" if role == "unit" else None)
    for path in ("/api/v1/orders", "/api/v1/orders/escalate"):
        response = demo_client.post(path, headers=headers, json={})
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
    assert demo_client.post("/api/v1/orders", json={}, headers=anonymous).status_code == 401
    assert demo_client.get("/api/v1/orders").json()["total"] == 0


def test_bad_requests_are_refused_and_write_nothing(demo_client: TestClient,
                                                    supervisor: dict[str, str]) -> None:
    too_long = demo_client.post("/api/v1/orders", headers=supervisor, json={"note": "长" * 2001})
    assert too_long.status_code == 422
    unknown = demo_client.post("/api/v1/orders", headers=supervisor, json={"unit": "NOPE"})
    assert unknown.status_code == 422
    assert "NOPE" in unknown.json()["detail"]
    missing = demo_client.get("/api/v1/orders/DB2026-9999")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert demo_client.get("/api/v1/orders").json()["total"] == 0


def test_escalation_over_http_is_idempotent(demo_client: TestClient,
                                            supervisor: dict[str, str]) -> None:
    first = demo_client.post("/api/v1/orders/escalate", headers=supervisor, json={})
    assert first.status_code == 201, first.text
    escalated = first.json()
    assert escalated and all(o["kind"] == "escalation" and o["level"] == 2 for o in escalated)
    assert demo_client.post("/api/v1/orders/escalate", headers=supervisor,
                            json={}).json() == []
    order = demo_client.get(f"/api/v1/orders/{escalated[0]['code']}").json()
    assert order["items"] and all(i["traffic_light"] == "red" for i in order["items"])
    page = demo_client.get(f"/api/v1/orders/{escalated[0]['code']}/print").text
    assert "升级督办单" in page and "超期" in page and "抄送" in page


def test_printable_page_lists_every_issue_and_draws_them(demo_client: TestClient,
                                                         supervisor: dict[str, str]) -> None:
    written = demo_client.post("/api/v1/orders", headers=supervisor,
                               json={"note": "请于期限内整改到位"}).json()
    code = max(written, key=lambda o: o["issues"])["code"]
    order = demo_client.get(f"/api/v1/orders/{code}").json()
    response = demo_client.get(f"/api/v1/orders/{code}/print")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "督办单" in page and code in page and order["unit_name"] in page
    assert "请于期限内整改到位" in page and "@page { size: A4" in page
    for item in order["items"]:
        assert item["public_id"] in page
    assert len(re.findall(r"<circle ", page)) == len(order["items"])
    english = demo_client.get(f"/api/v1/orders/{code}/print", params={"lang": "en"}).text
    assert "Supervision order" in english and "督办单" not in english
    assert demo_client.get(f"/api/v1/orders/{code}/print",
                           params={"lang": "fr"}).status_code == 422


def test_workbook_has_the_header_and_one_row_per_issue(demo_client: TestClient,
                                                       supervisor: dict[str, str]) -> None:
    code = demo_client.post("/api/v1/orders", headers=supervisor, json={}).json()[0]["code"]
    order = demo_client.get(f"/api/v1/orders/{code}").json()
    response = demo_client.get(f"/api/v1/orders/{code}/xlsx")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == f'attachment; filename="{code}.xlsx"'
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert "督办单" in str(values[0][0])
    header = values.index(["序号", "问题编号", "问题类别", "位置", "问题描述", "发现时间",
                           "整改时限", "分值"])
    # The field names every workbook of ours carries for machines, under the people's labels.
    assert values[header + 1] == ["position", "public_id", "category", "place", "description",
                                  "reported_at", "deadline", "points"]
    rows = values[header + 2:]
    assert [r[1] for r in rows] == [i["public_id"] for i in order["items"]]
    assert [r[7] for r in rows] == [i["points"] for i in order["items"]]
    assert ["责任单位", order["unit_name"]] == [v for v in values[2] if v is not None]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_and_workbook_list_the_same_columns_and_cells(demo_client: TestClient,
                                                           supervisor: dict[str, str],
                                                           lang: str) -> None:
    written = demo_client.post("/api/v1/orders", headers=supervisor, json={}).json()
    code = max(written, key=lambda o: o["issues"])["code"]
    page = demo_client.get(f"/api/v1/orders/{code}/print", params={"lang": lang}).text
    table = re.search(r'<table class="items">(.*?)</table>', page, re.S)
    assert table is not None
    cells = [[html.unescape(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
             for row in re.findall(r"<tr>(.*?)</tr>", table[1], re.S)]
    book = demo_client.get(f"/api/v1/orders/{code}/xlsx", params={"lang": lang}).content
    sheet = load_workbook(io.BytesIO(book)).active
    assert sheet is not None
    values = [["" if v is None else str(v) for v in row]
              for row in sheet.iter_rows(values_only=True)]
    header = values.index(cells[0])  # the page's column headings, in the page's order
    assert len(cells) > 2 and len(cells[0]) == 8
    assert values[header + 2:] == cells[1:]  # and every cell of every row the same


def test_the_addressed_unit_acknowledges(demo_client: TestClient, demo_dsn: str,
                                         supervisor: dict[str, str]) -> None:
    written = demo_client.post("/api/v1/orders", headers=supervisor, json={}).json()
    mine, theirs = written[0], written[1]
    own = _bearer(demo_dsn, "unit", unit=mine["unit"], name="张书记")
    refused = demo_client.post(f"/api/v1/orders/{theirs['code']}/acknowledge", headers=own)
    assert refused.status_code == 403
    signed = demo_client.post(f"/api/v1/orders/{mine['code']}/acknowledge", headers=own)
    assert signed.status_code == 200, signed.text
    assert signed.json()["acknowledged_by"] == "张书记"
    pending = demo_client.get("/api/v1/orders", params={"acknowledged": "false",
                                                        "limit": 500}).json()
    assert pending["total"] == len(written) - 1
    assert mine["code"] not in {o["code"] for o in pending["orders"]}
    page = demo_client.get(f"/api/v1/orders/{mine['code']}/print").text
    assert "张书记" in page
