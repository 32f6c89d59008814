"""HTTP clients on the app factory, one fresh database each."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from layers.config import Settings


@pytest.fixture
def client(dsn: str) -> Iterator[TestClient]:
    """The app on this test's own empty, migrated database."""
    with TestClient(create_app(Settings(database_url=dsn))) as test_client:
        yield test_client


@pytest.fixture
def demo_client(demo_dsn: str) -> Iterator[TestClient]:
    """The app on this test's own copy of the demo district."""
    with TestClient(create_app(Settings(database_url=demo_dsn))) as test_client:
        yield test_client
