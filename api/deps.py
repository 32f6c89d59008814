"""Typed request dependencies: the connection crosses the seam here, explicitly."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import psycopg
from fastapi import Depends, Query, Request, Response
from psycopg_pool import ConnectionPool

from layers.config import Settings

T = TypeVar("T")


def get_pool(request: Request) -> ConnectionPool[psycopg.Connection[Any]]:
    """The app's pool, created by the factory and opened in its lifespan."""
    pool: ConnectionPool[psycopg.Connection[Any]] = request.app.state.pool
    return pool


def get_conn(request: Request) -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection; the request's work commits when the handler returns."""
    settings: Settings = request.app.state.settings
    with get_pool(request).connection(timeout=settings.pool_timeout) as conn:
        yield conn


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
