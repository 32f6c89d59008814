"""``GET /health``: is the service up, and can it reach PostGIS?"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Literal

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel

from api.deps import get_conn

router = APIRouter(tags=["health"])


class DatabaseHealth(BaseModel):
    """What the service knows about its database."""

    status: Literal["ok", "unavailable"]
    postgis: str | None = None


class Health(BaseModel):
    """The service's health; 503 when the database cannot be reached."""

    status: Literal["ok", "degraded"]
    database: DatabaseHealth


@router.get("/health", response_model=Health,
            responses={503: {"model": Health, "description": "database unavailable"}})
def health(request: Request) -> JSONResponse:
    """Report service and database status (no auth; safe to poll)."""
    try:
        # The requests' own path to a connection: once an outage is known, the probe too
        # answers within half a second instead of waiting the whole pool timeout.
        with contextmanager(get_conn)(request) as conn:
            row = conn.execute("SELECT postgis_lib_version()::text").fetchone()
        body = Health(status="ok",
                      database=DatabaseHealth(status="ok", postgis=str(row[0]) if row else None))
        return JSONResponse(body.model_dump(), status_code=200)
    except (psycopg.Error, PoolTimeout):
        body = Health(status="degraded", database=DatabaseHealth(status="unavailable"))
        return JSONResponse(body.model_dump(), status_code=503)
