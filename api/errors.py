"""One error taxonomy, one mapping: everything a client sees as an error is RFC 9457.

Domain errors carry their own status/code/message. Validation errors list the fields without
echoing values. Database outages become 503. Anything else is a 500 with a generic message;
the traceback goes to the server log only, never into a body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import open311
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
    # The server's own words (which lock, which processes, which statement) are for the
    # operator's log only: a deadlock logged as its class name alone could not be traced.
    diag = exc.diag if isinstance(exc, psycopg.Error) else None
    log.warning("database unavailable: %s %s %s", type(exc).__name__,
                diag.message_detail if diag else "", diag.context if diag else "")
    err = DatabaseUnavailable("The database is unavailable; retry shortly.")
    return problem(err.status, err.code, err.title, err.message)


async def _bad_data(_: Request, exc: Exception) -> JSONResponse:
    # SQLSTATE class 22 (data exception) and psycopg's own refusals (a NUL character in
    # text) come from values a client sent that slipped past validation: the client's error,
    # told without echoing SQL or the value.
    log.info("data exception from request input: %s", type(exc).__name__)
    return problem(422, "invalid-value", "Invalid value",
                   "A value in the request cannot be stored or compared (for example, it "
                   "contains a NUL character or is out of range).")


async def _outside_scope(_: Request, exc: Exception) -> JSONResponse:
    # SQLSTATE 42501 from the street policies (migration 0032, layers.auth.scope): a
    # street-scoped caller wrote something that lands outside its street (a report on the
    # other side of the border), or touched the district's catalog.
    diag = exc.diag if isinstance(exc, psycopg.Error) else None
    log.info("refused by the database's privileges: %s", diag.message_primary if diag else "")
    return problem(403, "outside-scope", "Outside your scope",
                   "超出本街道范围：该数据属于其他街道或区级目录，本令牌无权写入 / outside your "
                   "street: this belongs to another street or to the district's catalog, which "
                   "this token may not change.")


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "internal-error", "Internal error",
                   "Something went wrong on our side; it has been logged.")


# Open311 clients expect the spec's own error document and its few statuses.
_OPEN311_STATUS = {401: 403, 409: 400, 413: 400, 422: 400}
Handler = Callable[[Request, Exception], Awaitable[Response]]


def _open311_aware(handler: Handler) -> Handler:
    """Under ``/open311/`` answer in GeoReport's error format (same message), else RFC 9457.

    OGC API Features asks for 400 (not 422) on invalid query parameters; the body stays
    problem+json there.
    """

    async def respond(request: Request, exc: Exception) -> Response:
        response = await handler(request, exc)
        if request.url.path.startswith("/ogc/") and response.status_code == 422:
            body = json.loads(bytes(response.body))
            return problem(400, body["code"], body["title"], body["detail"],
                           **{k: v for k, v in body.items()
                              if k not in ("type", "title", "status", "detail", "code")})
        if not request.url.path.startswith("/open311/"):
            return response
        status = _OPEN311_STATUS.get(response.status_code, response.status_code)
        return open311.error(open311.format_of(request.url.path), status, _describe(exc))

    return respond


def _describe(exc: Exception) -> str:
    if isinstance(exc, DomainError):
        details = exc.details if isinstance(exc.details, list) else []
        reasons = [str(d.get("message")) for d in details
                   if isinstance(d, dict) and d.get("message")]
        return exc.message + (": " + "; ".join(reasons) if reasons else "")
    if isinstance(exc, RequestValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg')}"
                         for e in exc.errors())
    if isinstance(exc, StarletteHTTPException):
        return exc.detail if isinstance(exc.detail, str) else "request failed"
    if isinstance(exc, PoolTimeout | psycopg.OperationalError):
        return "the database is unavailable; retry shortly"
    return "something went wrong on our side; it has been logged"


def error_response(path: str, status: int, code: str, title: str, detail: str,
                   headers: dict[str, str] | None = None) -> Response:
    """An error for a request to ``path`` answered before any route runs (middleware)."""
    if path.startswith("/open311/"):
        response = open311.error(open311.format_of(path),
                                 _OPEN311_STATUS.get(status, status), detail)
    else:
        response = problem(status, code, title, detail)
    response.headers.update(headers or {})
    return response


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    for kind, handler in ((DomainError, _domain), (RequestValidationError, _validation),
                          (StarletteHTTPException, _http), (PoolTimeout, _database_down),
                          (psycopg.OperationalError, _database_down),
                          (psycopg.DataError, _bad_data),
                          (psycopg.errors.InsufficientPrivilege, _outside_scope),
                          (Exception, _unexpected)):
        app.add_exception_handler(kind, _open311_aware(handler))
