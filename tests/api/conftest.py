"""HTTP clients on the app factory, one fresh database each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from layers import tokens
from layers.config import Settings


def _signed_in(dsn: str, tmp_path: Path) -> TestClient:
    # Every /api/v1 route needs a token: the clients read as a viewer (a leader) unless a test
    # sends its own Authorization header (a test of anonymous access sends an empty one).
    with psycopg.connect(dsn) as conn:
        token = tokens.create(conn, role="viewer", name="test viewer")
    return TestClient(create_app(Settings(database_url=dsn, data_dir=tmp_path)),
                      headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def client(dsn: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app on this test's own empty, migrated database (files under tmp_path)."""
    with _signed_in(dsn, tmp_path) as test_client:
        yield test_client


@pytest.fixture
def demo_client(demo_dsn: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app on this test's own copy of the demo district (files under tmp_path)."""
    with _signed_in(demo_dsn, tmp_path) as test_client:
        yield test_client



@pytest.fixture
def anonymous() -> dict[str, str]:
    """Headers that override the clients' default token: a request without credentials."""
    return {"Authorization": ""}
