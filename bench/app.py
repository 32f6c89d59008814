"""The app the ingest benchmark serves: the production app plus one baseline route.

``POST /bench/plain`` takes the same body as ``POST /api/v1/issues``, authenticates the same
way and inserts it as one plain row, so the difference between the two is exactly what
reporting adds: domain validation, assignment, the audit events and the answer (the stored
issue and its nearby duplicates). It exists only here: ``api.app.create_app`` never has it.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse

from api.app import create_app
from api.auth import required_caller
from api.deps import Conn
from api.schemas.issues import IssueCreate
from layers.db.settings import Settings

PLAIN_TABLE = """
CREATE TABLE IF NOT EXISTS bench_plain (
    id bigserial PRIMARY KEY,
    body jsonb NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
)
"""
router = APIRouter(prefix="/bench", tags=["bench"])


@router.post("/plain", status_code=201)
def plain(body: IssueCreate, conn: Conn) -> JSONResponse:
    """Insert the report as one row, unassigned and unaudited (the baseline)."""
    row = conn.execute("INSERT INTO bench_plain (body) VALUES (%s) RETURNING id",
                       [json.dumps(body.model_dump(mode="json"))]).fetchone()
    return JSONResponse({"id": row[0] if row else None}, status_code=201)


def create_bench_app() -> FastAPI:
    """``create_app`` from the environment's settings, with the baseline route mounted."""
    app = create_app(Settings())
    app.include_router(router, dependencies=[Depends(required_caller)])
    return app
