"""Guards in front of every route: rate limits, request size limits, CORS, proxies.

- **Anonymous requests** are limited per client address (``SITEWATCH_ANONYMOUS_RATE``,
  default 120/minute): the public routes (maps, OGC API Features, Open311 reads) cannot be
  scraped or flooded from one address. A request is anonymous unless a token actually
  authenticated (``api.auth.AUTHENTICATED``): any ``Authorization`` header that is not a live
  token counts as anonymous. Once an address has used its anonymous quota, a request from it
  that presents a bearer token passes only if the token is live (one lookup, made only then).
- **Failed authentication** (401, or 403 for a bad Open311 ``api_key``) is counted per
  address; past ``SITEWATCH_FAILED_AUTH_RATE`` (default 20/minute) the address gets 429 for
  anything it sends with credentials, so tokens cannot be guessed. Tokens are created only with
  the command line (``sitewatch token create``), never over HTTP.
- Authenticated work is not rate limited: an inspection round ending with thirty phones
  submitting at once must not be refused.
- **Bodies** are limited by path (imports 64 MB, evidence 12 MB, everything else
  ``SITEWATCH_MAX_BODY_BYTES``, default 5 MB): by Content-Length before reading, and for
  chunked uploads by reading up to the limit first: 413 problem.
- **CORS** is off unless ``SITEWATCH_CORS_ORIGINS`` lists origins.
- **Security headers** on every response (:class:`SecurityHeaders`): a Content-Security-Policy
  (scripts, styles, connections from this server only; map tiles from the basemaps; never
  framed), ``X-Content-Type-Options: nosniff``, and a referrer policy: the field pages, which
  hold tokens, send no referrer at all; other pages send only their origin (the basemaps'
  browser keys are checked against it).
- **Client addresses** are the TCP peer's. ``X-Forwarded-For`` is believed only from the
  reverse proxies named in ``SITEWATCH_TRUSTED_PROXIES`` (addresses or networks); by default
  from nobody, since anyone can send the header and would otherwise pick an address per
  request and never be limited.

Limits are counted in each server process (the ``limits`` library, in memory).
"""

from __future__ import annotations

import math
import time
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.auth import AUTHENTICATED, bearer_token
from api.errors import error_response
from layers.auth import tokens
from layers.db.settings import Settings
from maps.page import BASEMAP_ORIGINS

MB = 1024 * 1024
BODY_LIMITS = (("/api/v1/imports", 64 * MB), ("/api/v1/evidence", 12 * MB))
_EXEMPT = ("/health", "/static/")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value)
    return None


class RateLimits:
    """Per-address limits for anonymous requests and failed authentication."""

    def __init__(self, app: ASGIApp, *, anonymous: str, failed_auth: str) -> None:
        self.app = app
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.anonymous = parse(anonymous)
        self.failed_auth = parse(failed_auth)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(_EXEMPT):
            await self.app(scope, receive, send)
            return
        address = (scope.get("client") or ("unknown",))[0]
        open311_post = path.startswith("/open311/") and scope["method"] == "POST"
        header = (_header(scope, b"authorization") or b"").decode("latin-1")
        credentials = bool(header.strip()) or open311_post
        if credentials and not self.limiter.test(self.failed_auth, "auth", address):
            await self._refuse(scope, receive, send, self.failed_auth, "auth", address,
                               "too many failed authentications from this address")
            return
        if not credentials:
            if not self.limiter.hit(self.anonymous, "anon", address):
                await self._refuse(scope, receive, send, self.anonymous, "anon", address,
                                   "too many requests without a token from this address")
                return
        elif (not open311_post and not self.limiter.test(self.anonymous, "anon", address)
              and not await self._live(scope, header)):
            # An Open311 POST passes: its api_key is checked by the route, and a bad one
            # counts as a failed authentication.
            self.limiter.hit(self.failed_auth, "auth", address)
            await self._refuse(scope, receive, send, self.anonymous, "anon", address,
                               "too many requests without a valid token from this address")
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await self.app(scope, receive, watch)
        if credentials and not scope.get(AUTHENTICATED):
            # Credentials that did not authenticate (made up, or on a public route that never
            # looked at them) are anonymous use of the address's quota.
            self.limiter.hit(self.anonymous, "anon", address)
        if credentials and (status == 401 or (open311_post and status == 403)):
            self.limiter.hit(self.failed_auth, "auth", address)

    async def _live(self, scope: Scope, header: str) -> bool:
        """Whether the request's bearer token is live (a database lookup)."""
        token = bearer_token(header)
        if token is None:
            return False
        state = scope["app"].state

        def lookup() -> bool:
            try:
                # A read: a usable replica answers it when there is one (layers.db.replicas),
                # without recording the token's use (a standby cannot; the route does).
                held = state.replicas.acquire(None, 0.0) if state.replicas else None
                if held is not None:
                    stack, conn = held
                    with stack:
                        return tokens.authenticate(conn, token, touch_use=False) is not None
                with state.pool.connection(timeout=state.settings.pool_timeout) as conn:
                    return tokens.authenticate(conn, token) is not None
            except Exception:  # no database: the route would fail anyway; stay refused
                return False

        return await anyio.to_thread.run_sync(lookup)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: Any,
                      kind: str, address: str, detail: str) -> None:
        reset = self.limiter.get_window_stats(limit, kind, address).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        response = error_response(scope["path"], 429, "rate-limited", "Too many requests",
                                  f"{detail}; retry in {wait} s",
                                  headers={"Retry-After": str(wait)})
        await response(scope, receive, send)


class BodyLimit:
    """Refuse request bodies over the path's limit, declared or streamed."""

    def __init__(self, app: ASGIApp, *, default: int) -> None:
        self.app = app
        self.default = default

    def limit(self, path: str) -> int:
        return next((size for prefix, size in BODY_LIMITS if path.startswith(prefix)),
                    self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        detail = f"the request body is larger than {limit / MB:g} MB"
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = error_response(scope["path"], 413, "payload-too-large",
                                      "Payload too large", detail)
            await response(scope, receive, send)
            return
        if declared is not None:  # the server holds the body to its declared length
            await self.app(scope, receive, send)
            return
        # Chunked: read it here, up to the limit, then hand it on. (Raising from inside the
        # app's body read would surface as FastAPI's generic 400, not as 413.)
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > limit:
                response = error_response(scope["path"], 413, "payload-too-large",
                                          "Payload too large", detail)
                await response(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _policy(**directives: str) -> bytes:
    return "; ".join(f"{name.replace('_', '-')} {value}"
                     for name, value in directives.items()).encode()


_LOCKED = {"object_src": "'none'", "base_uri": "'none'", "form_action": "'self'",
           "frame_ancestors": "'none'"}
# Map pages are folium documents: their scripts and styles are inline by construction.
_PAGES_POLICY = _policy(
    default_src="'self'", script_src="'self' 'unsafe-inline'",
    style_src="'self' 'unsafe-inline'",
    img_src=" ".join(("'self'", "data:", "blob:", *BASEMAP_ORIGINS)),
    connect_src="'self'", font_src="'self' data:", worker_src="'self' blob:", **_LOCKED)
# The field pages hold a token: only their own files run, nothing inline.
_FIELD_POLICY = _policy(
    default_src="'self'", script_src="'self'", style_src="'self' 'unsafe-inline'",
    img_src="'self' data: blob:", connect_src="'self'", worker_src="'self'",
    manifest_src="'self'", **_LOCKED)
# The OpenAPI pages load Swagger UI and ReDoc from their CDN; they hold no data of ours, so
# they are only kept out of frames.
_DOCS_POLICY = _policy(frame_ancestors="'none'")
_FIELD_PATHS = ("/report", "/units/")
_DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeaders:
    """Content-Security-Policy, nosniff, referrer policy and no framing on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        field = path.startswith(_FIELD_PATHS)
        policy = (_FIELD_POLICY if field else
                  _DOCS_POLICY if path.startswith(_DOCS_PATHS) else _PAGES_POLICY)
        added = [(b"content-security-policy", policy),
                 (b"x-content-type-options", b"nosniff"),
                 (b"x-frame-options", b"DENY"),
                 (b"referrer-policy", b"no-referrer" if field else b"strict-origin"),
                 (b"cross-origin-opener-policy", b"same-origin")]
        if scope.get("scheme") == "https":
            added.append((b"strict-transport-security", b"max-age=31536000"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *((k, v) for k, v in added if k not in names)]
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the guards; the last added runs first (proxies, CORS, rate limits, headers,
    sizes)."""
    app.add_middleware(BodyLimit, default=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RateLimits, anonymous=settings.anonymous_rate,
                       failed_auth=settings.failed_auth_rate)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key"])
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    if proxies:  # outermost: every guard sees the client's own address
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
