"""Hostile input to the notification routes (admin only, but an admin's token can leak):
every field and parameter bounded before any work, each refusal a clear problem, nothing
stored by a refused request."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

Headers = dict[str, str]


def _subscriptions(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM subscription").fetchone()
    return int(row[0]) if row else -1


@pytest.mark.parametrize("body", [
    {"channel": "webhook", "target": "https://example.cn/" + "x" * 2001},
    {"channel": "email", "target": "a@example.cn", "secret": "s" * 201},
    {"channel": "email", "target": "a@example.cn", "unit": "U" * 41},
    {"channel": "email", "target": "a@example.cn", "events": ["issue.assigned"] * 21},
    {"channel": "email", "target": "a@example.cn", "events": ["issue.deleted"]},
    {"channel": "sms", "target": "13800001111"},
    {"channel": "email", "target": ""},
    {"channel": "email", "target": "a@example.cn\r\nBcc: everyone@example.cn"},
    {"channel": "webhook", "target": "https://example.cn/\u0000"},
    {"channel": "email", "target": "a@example.cn", "unit": "NO-SUCH-UNIT"},
    {"channel": "email"},
])
def test_a_bad_subscription_is_refused_and_stores_nothing(
        client: TestClient, admin: Headers, dsn: str, body: dict[str, object]) -> None:
    refused = client.post("/api/v1/subscriptions", headers=admin, json=body)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert _subscriptions(dsn) == 0


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/api/v1/subscriptions?limit=1001", 422),
    ("GET", "/api/v1/subscriptions?limit=0", 422),
    ("GET", "/api/v1/deliveries?limit=100000", 422),
    ("GET", "/api/v1/deliveries?state=everything", 422),
    ("DELETE", "/api/v1/subscriptions/0", 422),
    ("DELETE", f"/api/v1/subscriptions/{2**63}", 422),
    ("DELETE", "/api/v1/subscriptions/1%20OR%201=1", 422),
    ("POST", "/api/v1/deliveries/not-a-uuid/retry", 404),
    ("POST", f"/api/v1/deliveries/{'0' * 37}/retry", 422),
    ("POST", "/api/v1/deliveries/00000000-0000-0000-0000-000000000000/retry", 404),
])
def test_bad_ids_and_sizes_are_refused_before_any_work(
        client: TestClient, admin: Headers, method: str, path: str, status: int) -> None:
    answer = client.request(method, path, headers=admin)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
