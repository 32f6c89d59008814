"""Handlers that use the database are plain functions, run in FastAPI's thread pool.

psycopg's connections here are blocking: called from an ``async def`` handler they run on the
event loop and stall every other request of the process while they wait (the photo upload
did, until this test).
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi.routing import APIRoute

from api.app import create_app
from api.deps import get_conn
from layers.db.settings import Settings


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every APIRoute, through included routers (FastAPI wraps those since 0.16x)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += _api_routes(route.original_router.routes)
    return found


def _uses_database(dependant: Any) -> bool:
    return any(d.call is get_conn or _uses_database(d) for d in dependant.dependencies)


def test_database_handlers_do_not_block_the_event_loop() -> None:
    app = create_app(Settings(database_url="host=/nonexistent dbname=x"))
    routes = [r for r in _api_routes(app.routes) if _uses_database(r.dependant)]
    assert len(routes) > 50  # the walk finds the database routes at all
    blocking = [f"{sorted(r.methods or ())} {r.path}" for r in routes
                if inspect.iscoroutinefunction(r.endpoint)]
    assert blocking == []
