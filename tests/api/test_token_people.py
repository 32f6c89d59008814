"""People, not tokens: what a named token's holder does is shown with their name and post, in
the audit trail, on the supervision order and on its printed page (签发人), and in ``token
list``."""

from __future__ import annotations

import re

import psycopg
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.main import app
from layers.auth import tokens
from tests import two_streets


def test_an_order_and_its_printed_page_name_the_person_who_issued_it(
        demo_client: TestClient, demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        token = tokens.create(conn, role="supervisor", name="王建国", post="督查组组长",
                              mobile="13900001111")
        token_id = tokens.info(conn, token).id
    signed = {"Authorization": f"Bearer {token}"}
    written = demo_client.post("/api/v1/orders", headers=signed, json={})
    assert written.status_code == 201, written.text
    code = written.json()[0]["code"]
    order = demo_client.get(f"/api/v1/orders/{code}").json()
    assert order["issued_by"] == "王建国（督查组组长）"

    page = demo_client.get(f"/api/v1/orders/{code}/print").text
    row = re.search(r"<th>签发人</th>\s*<td>([^<]*)</td>", page)
    assert row is not None and row.group(1) == "王建国（督查组组长）"
    # The mobile number is for group-chat @mentions, not for a page handed around.
    assert "13900001111" not in page and f"token {token_id}" not in page

    trail = demo_client.get(f"/api/v1/issues/{order['items'][0]['public_id']}/events").json()
    assert [e["actor"] for e in trail if e["action"] == "order"] == ["王建国（督查组组长）"]


def test_a_person_without_a_post_is_shown_by_name_alone(demo_client: TestClient,
                                                        demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        token = tokens.create(conn, role="supervisor", name="  李四  ")
    written = demo_client.post("/api/v1/orders", headers={"Authorization": f"Bearer {token}"},
                               json={})
    assert {o["code"] for o in written.json()}
    listed = demo_client.get("/api/v1/orders", params={"limit": 500}).json()["orders"]
    assert {o["issued_by"] for o in listed} == {"李四"}


def test_token_list_shows_each_person_with_post_and_mobile(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        tokens.create(conn, role="inspector", name="巡查员 小李", post="网格员",
                      mobile="+86 138 0013 8000")
        tokens.create(conn, role="viewer", name="挂钩领导")
    listed = CliRunner().invoke(app, ["token", "list"], env={"DATABASE_URL": dsn})
    assert listed.exit_code == 0, listed.output
    rows = listed.stdout.strip().splitlines()
    assert rows[0].endswith(" 巡查员 小李（网格员） +8613800138000")
    assert rows[1].endswith(" 挂钩领导")


def test_token_list_shows_the_street_of_a_street_token(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        two_streets.build(conn)
        tokens.create(conn, role="supervisor", name="乙街道督查", street_code="BRAVOST")
        tokens.create(conn, role="supervisor", name="区督查")
    listed = CliRunner().invoke(app, ["token", "list"], env={"DATABASE_URL": dsn})
    assert listed.exit_code == 0, listed.output
    streets = [row.split()[3] for row in listed.stdout.strip().splitlines()]
    assert streets == ["BRAVOST", "-"]
