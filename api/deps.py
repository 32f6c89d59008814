"""Typed request dependencies: the connection crosses the seam here, explicitly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool

from layers.config import Settings


def get_pool(request: Request) -> ConnectionPool[psycopg.Connection[Any]]:
    """The app's pool, created by the factory and opened in its lifespan."""
    pool: ConnectionPool[psycopg.Connection[Any]] = request.app.state.pool
    return pool


def get_conn(request: Request) -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection; the request's work commits when the handler returns."""
    settings: Settings = request.app.state.settings
    with get_pool(request).connection(timeout=settings.pool_timeout) as conn:
        yield conn


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


# scope="function": the request's work commits before the response is sent, so a client never
# hears "created" for something a failed commit then lost.
Conn = Annotated[psycopg.Connection[Any], Depends(get_conn, scope="function")]
AppSettings = Annotated[Settings, Depends(get_settings)]
