"""``GET /health``: is the service up, can it reach PostGIS, is the background worker alive,
how many messages wait to be delivered, and how far behind is each read replica?"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Literal

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel

from api.deps import get_primary_conn
from layers.db.replicas import ReplicaSet
from layers.worker import status

router = APIRouter(tags=["health"])


class DatabaseHealth(BaseModel):
    """What the service knows about its database."""

    status: Literal["ok", "unavailable"]
    postgis: str | None = None


class WorkerHealth(BaseModel):
    """The newest heartbeat of a running worker (``sitewatch worker``); stale when older than
    ``SITEWATCH_WORKER_STALE`` seconds."""

    heartbeat: datetime | None = None
    age_seconds: float | None = None
    stale: bool = True


class OutboxHealth(BaseModel):
    """Messages not yet delivered: how many, and when the oldest was queued."""

    queued: int
    oldest: datetime | None = None


class ReplicaHealth(BaseModel):
    """One read replica as the last check found it (layers/db/replicas.py): where it is
    (host, port, database: never credentials), whether reads go to it, and its lag."""

    name: str
    usable: bool
    reason: str | None = None
    replay_lsn: str | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None


class Health(BaseModel):
    """The service's health; 503 when the database cannot be reached. A stale or missing
    worker is reported but does not fail the probe: requests are still answered."""

    status: Literal["ok", "degraded"]
    database: DatabaseHealth
    worker: WorkerHealth | None = None
    outbox: OutboxHealth | None = None
    replicas: list[ReplicaHealth] = []


@router.get("/health", response_model=Health,
            responses={503: {"model": Health, "description": "database unavailable"}})
def health(request: Request) -> JSONResponse:
    """Report service and database status (no auth; safe to poll)."""
    try:
        # The requests' own path to a connection: once an outage is known, the probe too
        # answers within half a second instead of waiting the whole pool timeout.
        with contextmanager(get_primary_conn)(request) as conn:
            row = conn.execute("SELECT postgis_lib_version()::text").fetchone()
            beat = status.latest_heartbeat(conn, request.app.state.settings.worker_stale)
            waiting = status.backlog(conn)
        worker = WorkerHealth() if beat is None else WorkerHealth(
            heartbeat=beat.heartbeat, age_seconds=round(beat.age_seconds, 3), stale=beat.stale)
        outbox = None if waiting is None else OutboxHealth(queued=waiting.queued,
                                                           oldest=waiting.oldest)
        body = Health(status="ok",
                      database=DatabaseHealth(status="ok", postgis=str(row[0]) if row else None),
                      worker=worker, outbox=outbox, replicas=_replicas(request))
        return JSONResponse(body.model_dump(mode="json"), status_code=200)
    except (psycopg.Error, PoolTimeout):
        body = Health(status="degraded", database=DatabaseHealth(status="unavailable"),
                      replicas=_replicas(request))
        return JSONResponse(body.model_dump(), status_code=503)


def _replicas(request: Request) -> list[ReplicaHealth]:
    """The replicas' last checked states (a stopped replica is reported, not a failure:
    reads go to the primary meanwhile)."""
    replica_set: ReplicaSet = request.app.state.replicas
    return [ReplicaHealth(name=s.name, usable=s.usable, reason=s.reason,
                          replay_lsn=s.replay_lsn, lag_bytes=s.lag_bytes,
                          lag_seconds=s.lag_seconds) for s in replica_set.states()]
