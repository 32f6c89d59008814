"""One error taxonomy, one mapping: everything a client sees as an error is RFC 9457.

Domain errors carry their own status/code/message. Validation errors list the fields without
echoing values. Database outages become 503. Anything else is a 500 with a generic message;
the traceback goes to the server log only, never into a body.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from layers.errors import DatabaseUnavailable, DomainError

log = logging.getLogger("sitewatch.api")
PROBLEM = "application/problem+json"
TYPE_BASE = "https://sitewatch.example/problems/"


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    """A problem+json response with a stable ``type`` derived from ``code``."""
    body = {"type": TYPE_BASE + code, "title": title, "status": status, "detail": detail,
            "code": code, **extra}
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


async def _domain(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    # A list of details is "what is wrong" (fields, rows); a mapping is the current state of
    # the thing, which a client needs to resolve a conflict.
    extra: dict[str, Any] = {}
    if isinstance(exc.details, list):
        extra["errors"] = exc.details
    elif isinstance(exc.details, dict):
        extra["current"] = exc.details
    response = problem(exc.status, exc.code, exc.title, exc.message, **extra)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"location": [str(p) for p in e.get("loc", ())], "message": e.get("msg", "")}
        for e in exc.errors()
    ]
    return problem(422, "validation-failed", "Validation failed",
                   "The request is not valid; see errors.", errors=errors)


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized",
            403: "forbidden"}.get(exc.status_code, f"http-{exc.status_code}")
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
    return problem(exc.status_code, code, detail, detail)


async def _database_down(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", type(exc).__name__)
    err = DatabaseUnavailable("The database is unavailable; retry shortly.")
    return problem(err.status, err.code, err.title, err.message)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "internal-error", "Internal error",
                   "Something went wrong on our side; it has been logged.")


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(DomainError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(PoolTimeout, _database_down)
    app.add_exception_handler(psycopg.OperationalError, _database_down)
    app.add_exception_handler(Exception, _unexpected)
