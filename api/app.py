"""The FastAPI app factory: settings in, app out; the pool opens and closes in the lifespan."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from psycopg_pool import ConnectionPool

from api import errors, gate, guards, reads
from api.auth import required_caller
from api.deps import DatabaseState
from api.routes import (
    accountability,
    catalog,
    checks,
    evidence,
    field,
    health,
    hotspots,
    imports,
    inspections,
    issues,
    maps,
    notify,
    ogc,
    open311,
    orders,
    revisions,
    scores,
)
from layers.analysis.snapshots import Snapshots
from layers.assignment import AssignerCache
from layers.auth import scope
from layers.db import database
from layers.db.replicas import ReplicaSet
from layers.db.settings import Settings
from maps.assets import STATIC_DIR

RECONNECT_SECONDS = 5.0


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing connects until the lifespan starts."""
    settings = settings or Settings()
    pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
        database.conninfo(settings),  # sessions in the district's time zone
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        open=False,
        # A server restart leaves dead connections in the pool; check before handing out.
        check=ConnectionPool.check_connection,
        # A street-scoped request's connection returns to the district (layers.auth.scope).
        reset=scope.release,
        # A failed reconnection backs off exponentially until this many seconds, then gives
        # up; the next request starts a fresh attempt at once. So the API is back within
        # seconds of the database, however long it was away (the default, 300 s, lets the
        # backoff grow as long as the outage was).
        reconnect_timeout=RECONNECT_SECONDS,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # wait=False: the API starts (and answers 503 on data routes) even while the database
        # is down, and the pool connects in the background once it is back.
        pool.open(wait=False)
        replica_set.open()
        try:
            yield
        finally:
            app.state.snapshots.close()
            replica_set.close()
            pool.close()

    app = FastAPI(
        title="sitewatch",
        summary="文明城市创建 site monitoring: layers, issues, assignment, maps",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.pool = pool
    app.state.database = DatabaseState()
    # Read replicas (layers/db/replicas.py): read-only requests read from a usable one
    # (api.deps.get_conn); each caller's latest write position, for reading its own writes.
    replica_set = ReplicaSet(
        database.replica_conninfos(settings), lambda: pool.connection(timeout=1.0),
        max_lag=settings.replica_max_lag, check_interval=settings.replica_check_interval,
        # min_size 0: no connection is kept open (and retried in the background, logging)
        # while a replica is away; the checks find it back, reads then open what they need.
        pool=lambda conninfo: ConnectionPool(
            conninfo, min_size=0, max_size=settings.pool_max_size,
            open=False, check=ConnectionPool.check_connection, reset=scope.release,
            reconnect_timeout=RECONNECT_SECONDS))
    app.state.replicas = replica_set
    app.state.positions = reads.Positions()
    app.add_middleware(reads.PositionEcho)
    app.state.assigner_cache = AssignerCache()
    # Heavy analyses take a slot of bounded concurrency (api/gate.py).
    app.state.analysis_gate = gate.for_settings(settings)
    # Exports formatting at once in this process (api/routes/imports.py).
    app.state.export_slots = threading.BoundedSemaphore(settings.export_concurrency)
    # Map pages' analyses (layers/analysis/snapshots.py): served from stored snapshots (a stale
    # one refreshed in the background, a missing one computed within the gate); the landing
    # views are kept current by the worker's refresh-maps job (api.services.worker_jobs).
    app.state.snapshots = Snapshots(pool.connection, max_stale=settings.snapshot_max_stale,
                                    max_age=settings.snapshot_max_age)
    errors.install(app)
    guards.install(app, settings)
    # Public: probes, maps and the standard interfaces (public fields only without a token).
    for public in (health.router, maps.router, open311.router, ogc.router, field.pages):
        app.include_router(public)
    # /api/v1: every route needs a token; docs/access.md says what each role may do.
    signed_in = [Depends(required_caller)]
    for router in (hotspots.router,  # before catalog: /api/v1/sites/chronic is not a site
                   catalog.router, issues.router, checks.router, evidence.router,
                   imports.router, scores.router, accountability.router, inspections.router,
                   orders.router, field.router, notify.router, revisions.router):
        app.include_router(router, dependencies=signed_in)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
