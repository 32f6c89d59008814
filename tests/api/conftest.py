"""HTTP clients on the app factory, one fresh database each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from layers.config import Settings


@pytest.fixture
def client(dsn: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app on this test's own empty, migrated database (files under tmp_path)."""
    with TestClient(create_app(Settings(database_url=dsn, data_dir=tmp_path))) as test_client:
        yield test_client


@pytest.fixture
def demo_client(demo_dsn: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app on this test's own copy of the demo district (files under tmp_path)."""
    settings = Settings(database_url=demo_dsn, data_dir=tmp_path)
    with TestClient(create_app(settings)) as test_client:
        yield test_client
