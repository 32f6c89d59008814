"""Typed request dependencies: the connection crosses the seam here, explicitly."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import psycopg
from fastapi import Depends, Query, Request, Response
from psycopg_pool import ConnectionPool, PoolTimeout

from api import reads
from layers.db.replicas import ReplicaSet, ReplicaWriteRefused
from layers.db.settings import Settings

T = TypeVar("T")


def get_pool(request: Request) -> ConnectionPool[psycopg.Connection[Any]]:
    """The app's pool, created by the factory and opened in its lifespan."""
    pool: ConnectionPool[psycopg.Connection[Any]] = request.app.state.pool
    return pool


# While the database is known to be away, a request waits this long for a connection rather
# than the whole pool_timeout: the client hears "503, retry" at once instead of hanging.
OUTAGE_WAIT_SECONDS = 0.5


@dataclass
class DatabaseState:
    """What the last request learnt: could the pool reach the database?"""

    reachable: bool = True


def get_conn(request: Request) -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection; the request's work commits when the handler returns.

    Read-only requests (api.reads.reads_only) take it from a usable read replica that has
    replayed the caller's own latest write, when there is one (layers.db.replicas); a write
    attempted on it is refused (ReplicaWriteRefused). Every other request, and every read
    no replica can take, gets the primary's; after a request that may have written, the
    caller's write position is remembered (api.reads.remember_write).
    """
    replica_set: ReplicaSet = request.app.state.replicas
    read = reads.reads_only(request)
    if replica_set and read:
        settings: Settings = request.app.state.settings
        held = replica_set.acquire(reads.caller_position(request), settings.replica_wait,
                                   busy_wait=settings.pool_timeout)
        if held is not None:
            stack, conn = held
            setattr(request.state, reads.ON_REPLICA, True)
            with stack:
                try:
                    yield conn
                except psycopg.errors.ReadOnlySqlTransaction as exc:
                    raise ReplicaWriteRefused(
                        "只读请求试图在只读副本上写入，已拒绝 / this read tried to write on a "
                        "read replica; refused") from exc
            return
    yield from _primary(request, remember=bool(replica_set) and not read)


def get_primary_conn(request: Request) -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection of the primary, whatever the request (``/health``)."""
    yield from _primary(request, remember=False)


def _primary(request: Request, *, remember: bool) -> Iterator[psycopg.Connection[Any]]:
    """The primary's pooled connection.

    PoolTimeout and OperationalError propagate (and become 503); they also mark the database
    unreachable, so the following requests fail fast until one gets a connection again.
    """
    settings: Settings = request.app.state.settings
    state: DatabaseState = request.app.state.database
    pool = get_pool(request)
    wait = settings.pool_timeout if state.reachable else min(OUTAGE_WAIT_SECONDS,
                                                             settings.pool_timeout)
    try:
        with pool.connection(timeout=wait) as conn:
            state.reachable = True
            yield conn
            if remember:
                reads.remember_write(request, conn)
    except psycopg.OperationalError:
        state.reachable = False
        raise
    except PoolTimeout:
        stats = pool.get_stats()
        # Timing out while the pool had room to grow means it could not connect: the
        # database is away. At its maximum, the pool is merely busy.
        state.reachable = stats["pool_size"] >= stats["pool_max"]
        raise


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


# scope="function": the request's work commits before the response is sent, so a client never
# hears "created" for something a failed commit then lost.
Conn = Annotated[psycopg.Connection[Any], Depends(get_conn, scope="function")]
AppSettings = Annotated[Settings, Depends(get_settings)]


@dataclass(frozen=True)
class Page:
    """``limit``/``offset`` paging for lists whose body must stay a plain FeatureCollection:
    the next page is announced in a ``Link: <...>; rel="next"`` header (RFC 8288)."""

    limit: int
    offset: int

    def trim(self, rows: list[T], request: Request, response: Response) -> list[T]:
        """The page of ``rows`` (fetched with ``limit + 1`` to learn whether more follow)."""
        if len(rows) <= self.limit:
            return rows
        following = request.url.include_query_params(limit=self.limit,
                                                     offset=self.offset + self.limit)
        response.headers["Link"] = f'<{following}>; rel="next"'
        return rows[:self.limit]


def page_query(limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
               offset: Annotated[int, Query(ge=0)] = 0) -> Page:
    """The paging parameters of a list route."""
    return Page(limit, offset)


PageQuery = Annotated[Page, Depends(page_query)]
