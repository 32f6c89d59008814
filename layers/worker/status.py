"""What ``GET /health`` says of the background: the newest worker heartbeat and the backlog of
undelivered messages (read only where the notifications' tables exist)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True)
class Heartbeat:
    """The newest heartbeat of a running worker, and whether it is older than allowed."""

    name: str
    heartbeat: datetime
    age_seconds: float
    stale: bool


@dataclass(frozen=True)
class Backlog:
    """Messages waiting to be delivered: how many, and since when the oldest waits."""

    queued: int
    oldest: datetime | None


def latest_heartbeat(conn: psycopg.Connection[Any], stale_after: float) -> Heartbeat | None:
    """The most recent heartbeat of a worker not stopped cleanly (None: none is running)."""
    with conn.cursor(row_factory=class_row(Heartbeat)) as cur:
        return cur.execute(
            "SELECT name, heartbeat, extract(epoch FROM now() - heartbeat)::float8 AS "
            "age_seconds, now() - heartbeat > make_interval(secs => %s) AS stale "
            "FROM worker WHERE stopped_at IS NULL ORDER BY heartbeat DESC LIMIT 1",
            [stale_after]).fetchone()


def backlog(conn: psycopg.Connection[Any]) -> Backlog | None:
    """Undelivered messages of the outbox (its pending deliveries); None where the outbox
    (migration 0018) is not installed."""
    found = conn.execute("SELECT to_regclass('outbox') IS NOT NULL "
                         "AND to_regclass('delivery') IS NOT NULL").fetchone()
    if not found or not found[0]:
        return None
    with conn.cursor(row_factory=class_row(Backlog)) as cur:
        return cur.execute("SELECT count(*)::int AS queued, min(created_at) AS oldest "
                           "FROM delivery WHERE state = 'pending'").fetchone()
