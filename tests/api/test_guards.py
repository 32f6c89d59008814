"""Rate limits for anonymous callers and failed authentication, body limits, CORS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from layers.auth import tokens
from layers.db.settings import Settings


def _client(dsn: str, tmp_path: Path, **settings: Any) -> TestClient:
    return TestClient(create_app(Settings(database_url=dsn, data_dir=tmp_path, **settings)))


def test_anonymous_callers_are_limited_per_address(dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(dsn) as conn:
        token = tokens.create(conn, role="viewer", name="测试")
    with _client(dsn, tmp_path, anonymous_rate="3/minute") as client:
        assert [client.get("/ogc/conformance").status_code for _ in range(3)] == [200] * 3
        refused = client.get("/ogc/conformance")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # Open311 clients get the refusal in their own format.
        open311 = client.get("/open311/v2/services.xml")
        assert open311.status_code == 429 and b"<errors>" in open311.content
        # With a token the work goes on.
        authed = client.get("/ogc/conformance", headers={"Authorization": f"Bearer {token}"})
        assert authed.status_code == 200
        assert client.get("/health").status_code == 200  # probes are never limited


def test_failed_authentications_block_the_address(dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(dsn) as conn:
        token = tokens.create(conn, role="viewer", name="测试")
    with _client(dsn, tmp_path, failed_auth_rate="2/minute") as client:
        bad = {"Authorization": "Bearer sw_guessing"}
        assert [client.get("/api/v1/evidence/sha256:00", headers=bad).status_code
                for _ in range(2)] == [401, 401]
        blocked = client.get("/api/v1/evidence/sha256:00",
                             headers={"Authorization": f"Bearer {token}"})
        assert blocked.status_code == 429
        assert "failed authentications" in blocked.json()["detail"]


def test_bad_open311_keys_count_as_failures(dsn: str, tmp_path: Path) -> None:
    with _client(dsn, tmp_path, failed_auth_rate="2/minute") as client:
        form = {"api_key": "sw_guessing", "service_code": "CTY-05", "lat": "31.3",
                "long": "120.7"}
        codes = [client.post("/open311/v2/requests.json", data=form).status_code
                 for _ in range(3)]
        assert codes == [403, 403, 429]
        assert client.post("/open311/v2/requests.json", data=form).json()[0]["code"] == 429


@pytest.fixture
def small(dsn: str, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with psycopg.connect(dsn) as conn:
        token = tokens.create(conn, role="admin", name="测试")
    with _client(dsn, tmp_path, max_body_bytes=2048) as client:
        yield client, {"Authorization": f"Bearer {token}"}


def test_declared_oversized_bodies_are_refused_unread(
        small: tuple[TestClient, dict[str, str]]) -> None:
    client, admin = small
    body = '{"description": "' + "x" * 4000 + '"}'
    response = client.post("/api/v1/units", headers={**admin, "Content-Type":
                                                     "application/json"}, content=body)
    assert response.status_code == 413
    assert response.json()["code"] == "payload-too-large"
    # The imports route has its own, larger limit.
    imported = client.post("/api/v1/imports", headers=admin, data={"kind": "sites"},
                           files={"file": ("x.csv", b"name,lon,lat\n" + b"a,1,2\n" * 1000)})
    assert imported.status_code != 413


def test_streamed_oversized_bodies_are_refused(
        small: tuple[TestClient, dict[str, str]]) -> None:
    client, admin = small

    def chunks() -> Iterator[bytes]:
        yield b'{"code": "BIG", "name": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'", "kind": "functional"}'

    response = client.post("/api/v1/units", headers={**admin, "Content-Type":
                                                     "application/json"}, content=chunks())
    assert response.status_code == 413
    assert client.get("/api/v1/units/BIG", headers=admin).status_code == 404


def test_cors_is_off_unless_configured(dsn: str, tmp_path: Path) -> None:
    preflight = {"Origin": "https://map.example.org", "Access-Control-Request-Method": "GET"}
    with _client(dsn, tmp_path) as client:
        response = client.options("/ogc/collections", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
    with _client(dsn, tmp_path, cors_origins="https://map.example.org") as client:
        response = client.options("/ogc/collections", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://map.example.org"
