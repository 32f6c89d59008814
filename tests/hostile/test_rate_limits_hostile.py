"""Finding 8: the anonymous rate limit cannot be bypassed with a made-up Authorization header,
nor with X-Forwarded-For from a caller that is not a named proxy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from layers.db.settings import Settings


def _client(dsn: str, tmp_path: Path, peer: str = "203.0.113.7", **settings: Any
            ) -> TestClient:
    return TestClient(create_app(Settings(database_url=dsn, data_dir=tmp_path, **settings)),
                      client=(peer, 40000))


def test_a_junk_authorization_header_counts_as_anonymous(dsn: str, tmp_path: Path) -> None:
    with _client(dsn, tmp_path, anonymous_rate="3/minute") as client:
        junk = [{"Authorization": "junk"}, {"Authorization": "Bearer sw_made_up"},
                {"Authorization": "Basic YTpi"}]
        codes = [client.get("/ogc/conformance", headers=junk[i % 3]).status_code
                 for i in range(6)]
        assert codes[:3] == [200, 200, 200]
        assert set(codes[3:]) == {429}


def test_a_live_token_still_passes_when_the_address_quota_is_used(
        dsn: str, tmp_path: Path, bearer_for: Callable[..., dict[str, str]]) -> None:
    viewer = bearer_for(dsn, "viewer")
    with _client(dsn, tmp_path, anonymous_rate="2/minute") as client:
        assert [client.get("/ogc/collections", headers={"Authorization": "x"}).status_code
                for _ in range(3)] == [200, 200, 429]
        # An office behind one NAT address: a colleague with a real token is not refused,
        # on a public route (which never looks at the token) or on the API.
        assert client.get("/ogc/conformance", headers=viewer).status_code == 200
        assert client.get("/api/v1/units", headers=viewer).status_code == 200


def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_named_proxy(
        dsn: str, tmp_path: Path) -> None:
    with _client(dsn, tmp_path, anonymous_rate="3/minute") as client:
        codes = [client.get("/ogc/conformance",
                            headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
                 for i in range(5)]
        assert codes == [200, 200, 200, 429, 429]


@pytest.mark.slow  # starts a real server
def test_sitewatch_serve_ignores_x_forwarded_for_from_localhost(
        dsn: str, tmp_path: Path, serving: Callable[..., Any]) -> None:
    # uvicorn on its own believes X-Forwarded-For from 127.0.0.1; `sitewatch serve` must not,
    # or every caller on the host (or behind a local tunnel) picks a new address per request.
    env = {"DATABASE_URL": dsn, "SITEWATCH_DATA_DIR": str(tmp_path),
           "SITEWATCH_ANONYMOUS_RATE": "3/minute"}
    with serving(["api.cli.main", "serve"], env, tmp_path) as (base, _):
        codes = [httpx.get(f"{base}/ogc/conformance", timeout=10,
                           headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
                 for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_a_named_proxy_forwards_the_client_address(dsn: str, tmp_path: Path) -> None:
    with _client(dsn, tmp_path, peer="10.1.2.3", anonymous_rate="2/minute",
                 trusted_proxies="10.1.2.0/24") as client:
        def get(address: str) -> int:
            return client.get("/ogc/conformance",
                              headers={"X-Forwarded-For": address}).status_code

        # Each client behind the proxy has its own quota; the proxy is not one big client.
        assert [get("198.51.100.1") for _ in range(3)] == [200, 200, 429]
        assert get("198.51.100.2") == 200
