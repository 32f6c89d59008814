"""Fixtures the layer tests share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest


@pytest.fixture
def db(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """Autocommit: every statement its own transaction and time, as in the server. Modules
    that need rows of their own define their own ``db``."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn
