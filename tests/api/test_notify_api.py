"""Subscriptions and deliveries over REST (admin only) and ``sitewatch notify``."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.main import app
from tests.loopback import Answer, receiving

Bearer = Callable[..., dict[str, str]]


@pytest.fixture
def admin(dsn: str, bearer_for: Bearer) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO unit (code, name, kind) VALUES ('C01', '湖东社区',"
                     " 'territorial')")
    return bearer_for(dsn, "admin")


@pytest.fixture
def hook() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback webhook receiver answering 200; the bodies it got."""
    bodies: list[bytes] = []

    def keep(_request: BaseHTTPRequestHandler, body: bytes) -> Answer:
        bodies.append(body)
        return Answer()

    with receiving(keep) as url:
        yield f"{url}/hook", bodies


def test_an_admin_subscribes_lists_and_deletes(client: TestClient,
                                               admin: dict[str, str]) -> None:
    made = client.post("/api/v1/subscriptions", headers=admin, json={
        "unit": "C01", "channel": "email", "target": "c01@example.cn",
        "secret": "never-shown", "events": ["issue.assigned", "order.issued"]})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["unit"] == "C01" and body["signed"] is True and "secret" not in body
    assert body["events"] == ["issue.assigned", "order.issued"]
    listed = client.get("/api/v1/subscriptions", headers=admin).json()
    assert [s["id"] for s in listed] == [body["id"]]
    assert client.delete(f"/api/v1/subscriptions/{body['id']}",
                         headers=admin).status_code == 204
    assert client.get("/api/v1/subscriptions", headers=admin).json() == []
    assert client.delete(f"/api/v1/subscriptions/{body['id']}",
                         headers=admin).status_code == 404


@pytest.mark.parametrize("target", ["http://127.0.0.1:8000/hook", "http://169.254.169.254/",
                                    "file:///etc/passwd", "http://[::1"])
def test_webhook_targets_on_private_addresses_are_refused(
        client: TestClient, admin: dict[str, str], target: str) -> None:
    refused = client.post("/api/v1/subscriptions", headers=admin, json={
        "channel": "webhook", "target": target})
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")


def test_dead_deliveries_are_listed_and_retried(client: TestClient, dsn: str,
                                                admin: dict[str, str]) -> None:
    with psycopg.connect(dsn) as conn:
        dead = conn.execute(
            "WITH s AS (INSERT INTO subscription (channel, target, created_by) VALUES"
            " ('webhook', 'https://example.cn/hook', 'test') RETURNING id),"
            " o AS (INSERT INTO outbox (kind, payload) VALUES ('test', '{}') RETURNING id)"
            " INSERT INTO delivery (outbox_id, subscription_id, state, attempts, last_error)"
            " SELECT o.id, s.id, 'dead', 7, 'HTTP 503: busy' FROM o, s RETURNING id::text"
        ).fetchone()
    assert dead is not None
    listed = client.get("/api/v1/deliveries?state=dead", headers=admin).json()
    assert [(d["id"], d["last_error"], d["attempts"]) for d in listed] == [
        (dead[0], "HTTP 503: busy", 7)]
    assert client.get("/api/v1/deliveries?state=pending", headers=admin).json() == []
    retried = client.post(f"/api/v1/deliveries/{dead[0]}/retry", headers=admin)
    assert retried.status_code == 200 and retried.json()["state"] == "pending"
    assert client.post(f"/api/v1/deliveries/{dead[0]}/retry",
                       headers=admin).status_code == 409
    assert client.post("/api/v1/deliveries/not-a-uuid/retry", headers=admin).status_code == 404
    assert client.get("/api/v1/deliveries?state=lost", headers=admin).status_code == 422


def test_the_cli_names_an_unknown_channel_before_judging_its_target(dsn: str) -> None:
    typo = CliRunner().invoke(app, ["notify", "add", "--channel", "wechat", "--target",
                                    "https://example.invalid/hook"], env={"DATABASE_URL": dsn})
    assert typo.exit_code == 1
    assert "unknown channel 'wechat'" in typo.output
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM subscription").fetchone() == (0,)


def test_the_cli_adds_lists_and_tests_a_subscription(
        dsn: str, hook: tuple[str, list[bytes]]) -> None:
    url, bodies = hook
    env = {"DATABASE_URL": dsn, "SITEWATCH_WEBHOOK_ALLOW_PRIVATE": "1"}
    runner = CliRunner()
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO unit (code, name, kind) VALUES ('C01', '湖东社区',"
                     " 'territorial')")
    added = runner.invoke(app, ["notify", "add", "--unit", "C01", "--channel", "webhook",
                                "--target", url, "--secret", "k", "--events",
                                "issue.assigned"], env=env)
    assert added.exit_code == 0, added.output
    assert added.output.startswith("subscription 1: C01 -> webhook")
    listed = runner.invoke(app, ["notify", "list"], env=env)
    assert listed.exit_code == 0 and "issue.assigned" in listed.output
    tested = runner.invoke(app, ["notify", "test", "1"], env=env)
    assert tested.exit_code == 0, tested.output
    assert "delivered" in tested.output and len(bodies) == 1
    assert "测试消息" in bodies[0].decode()

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    runner.invoke(app, ["notify", "add", "--channel", "webhook", "--target",
                        f"http://127.0.0.1:{closed}/"], env=env)
    failed = runner.invoke(app, ["notify", "test", "2"], env=env)
    assert failed.exit_code == 1 and "not delivered" in failed.output
    refused = runner.invoke(app, ["notify", "add", "--channel", "webhook", "--target",
                                  "http://127.0.0.1/"], env={"DATABASE_URL": dsn})
    assert refused.exit_code == 1 and "SITEWATCH_WEBHOOK_ALLOW_PRIVATE" in refused.output


def test_a_report_from_the_field_is_in_the_outbox_for_its_lead_unit(
        demo_client: TestClient, demo_dsn: str, bearer_for: Bearer) -> None:
    with psycopg.connect(demo_dsn) as conn:
        conn.execute("INSERT INTO subscription (channel, target, created_by) VALUES"
                     " ('email', 'office@example.cn', 'test')")
        point = conn.execute("SELECT ST_X(p), ST_Y(p), s.name FROM site s,"
                             " ST_PointOnSurface(s.geom) p WHERE s.layer = 'market'"
                             " ORDER BY s.code LIMIT 1").fetchone()
    assert point is not None
    made = demo_client.post("/api/v1/issues", headers=bearer_for(demo_dsn, "inspector"), json={
        "category": "MKT-01", "lon": point[0], "lat": point[1], "description": "北门外占道经营"})
    assert made.status_code == 201, made.text
    public_id = made.json()["properties"]["id"]
    with psycopg.connect(demo_dsn) as conn:
        rows = conn.execute(
            "SELECT o.kind, o.payload, u.code, (SELECT count(*) FROM delivery d"
            " WHERE d.outbox_id = o.id) FROM outbox o LEFT JOIN unit u ON u.id = o.unit_id"
            ).fetchall()
        lead = conn.execute("SELECT u.code FROM issue i JOIN unit u ON u.id = i.lead_unit_id"
                            " WHERE i.public_id = %s", [public_id]).fetchone()
    assert lead is not None
    [(kind, payload, unit, deliveries)] = rows
    assert (kind, unit, deliveries) == ("issue.assigned", lead[0], 1)
    assert payload["issue"] == public_id and payload["site"] == point[2]
    assert payload["unit"] == lead[0] and payload["deadline"] and payload["community"]


@pytest.mark.slow  # a real server and its worker
def test_a_report_reaches_the_units_group_chat_with_a_link_to_its_work_page(
        demo_dsn: str, tmp_path: Path, serving: Callable[..., Any], bearer_for: Bearer,
        hook: tuple[str, list[bytes]]) -> None:
    url, bodies = hook
    with psycopg.connect(demo_dsn) as conn:
        point = conn.execute("SELECT ST_X(p), ST_Y(p) FROM site s, ST_PointOnSurface(s.geom) p"
                             " WHERE s.layer = 'market' ORDER BY s.code LIMIT 1").fetchone()
        conn.execute("INSERT INTO subscription (channel, target, created_by) VALUES"
                     " ('wecom', %s, 'test')", [url])
    assert point is not None
    env = {"DATABASE_URL": demo_dsn, "SITEWATCH_DATA_DIR": str(tmp_path),
           "SITEWATCH_WORKER_TICK": "0.2", "SITEWATCH_WEBHOOK_ALLOW_PRIVATE": "1"}
    with serving(["api.cli.main", "serve"], env, tmp_path) as (base, _):
        made = httpx.post(f"{base}/api/v1/issues", headers=bearer_for(demo_dsn, "inspector"),
                          json={"category": "MKT-01", "lon": point[0], "lat": point[1],
                                "description": "北门外占道经营"}, timeout=30)
        assert made.status_code == 201, made.text
        public_id = made.json()["properties"]["id"]
        # The office's subscription also hears the worker's first escalation of the demo's
        # overdue issues: wait for the message about this issue (one, not one per event).
        def about_it() -> list[str]:
            contents = [json.loads(b)["markdown"]["content"] for b in list(bodies)]
            return [c for c in contents if public_id in c]
        for _ in range(600):  # the worker's deliver job runs every 5 s
            if about_it():
                break
            time.sleep(0.1)
        [content] = about_it()
        link = content.split("](")[-1].rstrip(")")
        # Without SITEWATCH_PUBLIC_URL the link names the address serve binds.
        assert link.startswith(f"{base}/units/") and link.endswith("/work")
        assert httpx.get(link, timeout=30).status_code == 200
