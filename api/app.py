"""The FastAPI app factory: settings in, app out; the pool opens and closes in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from psycopg_pool import ConnectionPool

from api import errors, guards
from api.routes import (
    accountability,
    catalog,
    checks,
    evidence,
    health,
    hotspots,
    imports,
    issues,
    maps,
    ogc,
    open311,
    orders,
    scores,
)
from layers import db
from layers.assignment import AssignerCache
from layers.config import Settings
from layers.hotspots import ResultCache
from maps.assets import STATIC_DIR


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing connects until the lifespan starts."""
    settings = settings or Settings()
    pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
        db.conninfo(settings),
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        open=False,
        # A server restart leaves dead connections in the pool; check before handing out.
        check=ConnectionPool.check_connection,
        kwargs={"options": f"-c timezone={settings.timezone}"},
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # wait=False: the API starts (and answers 503 on data routes) even while the database
        # is down, and the pool connects in the background once it is back.
        pool.open(wait=False)
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(
        title="sitewatch",
        summary="文明城市创建 site monitoring: layers, issues, assignment, maps",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.pool = pool
    app.state.assigner_cache = AssignerCache()
    app.state.hotspot_cache = ResultCache()
    errors.install(app)
    guards.install(app, settings)
    app.include_router(health.router)
    app.include_router(maps.router)
    # Before catalog: /api/v1/sites/chronic must not be read as a site code.
    app.include_router(hotspots.router)
    app.include_router(catalog.router)
    app.include_router(issues.router)
    app.include_router(checks.router)
    app.include_router(evidence.router)
    app.include_router(imports.router)
    app.include_router(scores.router)
    app.include_router(accountability.router)
    app.include_router(orders.router)
    app.include_router(open311.router)
    app.include_router(ogc.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
