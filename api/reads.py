"""Which requests a read replica answers, and how a caller reads its own writes.

The choice is made in one place, :func:`api.deps.get_conn`, with the helpers here:

- **read-only requests** are GET and HEAD: everything else, and every read while no replica
  is usable, gets the primary. So a GET route must not write: what reads store on the way
  goes to the primary on a connection of its own (token last use below, map snapshots in
  layers.analysis.snapshots), and a write attempted on a replica's session is refused;
- **read-your-writes**: after a request that may have written, the primary's WAL insert
  position is remembered for the caller (:class:`Positions`, keyed by a hash of the
  ``Authorization`` header) and given back as the ``X-Sitewatch-LSN`` header and the
  ``sitewatch_lsn`` cookie (:class:`PositionEcho`), so another web process honours it
  when the client sends either back; the caller's next read waits for that position on the
  replica (``Settings.replica_wait``), else the primary answers. A position sent by a client
  can only make its own read wait (bounded) or go to the primary: never see less;
- **token last use** is recorded on the primary at most once a minute per token and process
  for reads a replica answers (:func:`touch_token`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from typing import Any

import psycopg
from fastapi import Request
from psycopg_pool import ConnectionPool, PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from layers.auth import tokens
from layers.db import replicas

log = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD"})
LSN_HEADER = "X-Sitewatch-LSN"
LSN_COOKIE = "sitewatch_lsn"
# Seconds a client keeps the cookie: far longer than any replica should take to replay it.
LSN_COOKIE_SECONDS = 300
# Where the request's state keeps what get_conn decided (read by auth and the echo).
ON_REPLICA = "sitewatch_on_replica"
WRITE_POSITION = "sitewatch_write_lsn"
# Seconds between two recordings of one token's last use by this process for replica reads.
TOUCH_SECONDS = 60.0
# Seconds a replica read waits for a primary connection to record a last use, else skips it.
TOUCH_WAIT = 0.2


def reads_only(request: Request) -> bool:
    """Whether a replica may answer ``request``: a GET or HEAD."""
    return request.method in READ_METHODS


def on_replica(request: Request) -> bool:
    """Whether this request's connection is a replica's (so it must not write)."""
    return bool(getattr(request.state, ON_REPLICA, False))


def caller_key(request: Request) -> str | None:
    """Who the caller is for read-your-writes: a hash of its credentials, None without."""
    credentials = request.headers.get("authorization", "")
    if not credentials.strip():
        return None
    return hashlib.sha256(credentials.encode()).hexdigest()


class Positions:
    """The WAL position of each caller's latest write, for the most recent ``size`` callers
    (older ones fall back to their cookie or header)."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._latest: OrderedDict[str, int] = OrderedDict()
        self._touched: dict[int, float] = {}

    def remember(self, key: str, lsn: int) -> None:
        """Record that ``key`` wrote up to ``lsn``."""
        with self._lock:
            self._latest[key] = max(lsn, self._latest.get(key, 0))
            self._latest.move_to_end(key)
            while len(self._latest) > self._size:
                self._latest.popitem(last=False)

    def latest(self, key: str) -> int | None:
        """The position of ``key``'s latest write known here."""
        with self._lock:
            return self._latest.get(key)

    def due_touch(self, token_id: int) -> bool:
        """Whether ``token_id``'s last use should be recorded now (at most once a minute);
        claims the recording when it should."""
        now = time.monotonic()
        with self._lock:
            if now - self._touched.get(token_id, -TOUCH_SECONDS) < TOUCH_SECONDS:
                return False
            if len(self._touched) > self._size:
                self._touched.clear()
            self._touched[token_id] = now
            return True


def caller_position(request: Request) -> int | None:
    """The position the caller's read must see: its latest write known to this process, or
    sent back by the client (header or cookie); malformed values are ignored."""
    positions: Positions = request.app.state.positions
    key = caller_key(request)
    known = [positions.latest(key) if key else None,
             replicas.parse_lsn(request.headers.get(LSN_HEADER, "")),
             replicas.parse_lsn(request.cookies.get(LSN_COOKIE, ""))]
    found = [p for p in known if p is not None]
    return max(found) if found else None


def remember_write(request: Request, conn: psycopg.Connection[Any]) -> None:
    """Commit the request's work and remember the primary's position after it for the
    caller: its next reads wait for it on a replica. A commit that fails raises as it would
    have in the pool; a position that cannot be read is only logged."""
    conn.commit()
    try:
        lsn = replicas.position(conn)
        conn.commit()
    except psycopg.Error:
        log.warning("could not read the WAL position after a write", exc_info=True)
        return
    setattr(request.state, WRITE_POSITION, lsn)
    key = caller_key(request)
    if key is not None:
        request.app.state.positions.remember(key, lsn)


def touch_token(request: Request, token_id: int) -> None:
    """Record a replica read's token use on the primary, at most once a minute per token in
    this process; a busy or absent primary only skips it (the read must not fail for it)."""
    positions: Positions = request.app.state.positions
    if not positions.due_touch(token_id):
        return
    pool: ConnectionPool[psycopg.Connection[Any]] = request.app.state.pool
    try:
        with pool.connection(timeout=TOUCH_WAIT) as conn:
            tokens.touch(conn, token_id)
    except (psycopg.Error, PoolTimeout):
        log.info("token %s: last use not recorded (primary busy or away)", token_id)


class PositionEcho:
    """ASGI middleware: a response to a write carries the write's WAL position (header and
    cookie), so the client's next read, in whichever web process, can wait for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def echo(message: Message) -> None:
            lsn = scope.get("state", {}).get(WRITE_POSITION)
            if message["type"] == "http.response.start" and lsn is not None:
                text = replicas.format_lsn(lsn).encode()
                cookie = (f"{LSN_COOKIE}={text.decode()}; Path=/; Max-Age={LSN_COOKIE_SECONDS};"
                          " HttpOnly; SameSite=Lax").encode()
                message["headers"] = [*message.get("headers", []),
                                      (LSN_HEADER.lower().encode(), text),
                                      (b"set-cookie", cookie)]
            await send(message)

        await self.app(scope, receive, echo)
