"""Sending the outbox: claim due deliveries, send, record; retry with backoff, then dead.

At least once: a delivery is marked delivered only after its receiver took it, in the
transaction that claimed it, so a worker killed mid-send leaves it pending for the next. Several
workers claim with ``FOR UPDATE SKIP LOCKED`` and hold the row until its send is recorded, so
in the normal case no two send the same delivery.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

import psycopg
from psycopg.rows import class_row

from layers.db import database
from layers.db.settings import Settings
from layers.errors import Conflict, NotFound, ValidationFailed
from layers.notify import outbox
from layers.notify.channels import Courier, SendFailed
from layers.notify.messages import MENTIONING, Papers, render

log = logging.getLogger(__name__)
DeliveryState = Literal["pending", "delivered", "dead"]
DELIVERY_STATES: tuple[DeliveryState, ...] = get_args(DeliveryState)
# The first retry waits about FIRST_RETRY, each next one twice as long, never over LONGEST.
FIRST_RETRY = timedelta(seconds=30)
LONGEST = timedelta(hours=1)
# The worker's job sends deliveries in batches of BATCH (one HTTP client each) while the last
# batch was full, for at most BUDGET, then leaves the rest to its next run: a backlog drains
# at the sending speed rather than at BATCH a round, and the worker's other jobs (escalation,
# the deadline lights) wait at most about BUDGET behind it.
BATCH = 500
BUDGET = timedelta(seconds=30)
# What an email of an event carries beyond its text, given the event's kind and payload (a
# supervision order's page and workbook: api.services.order_papers.email_papers; the layers
# cannot draw the page, which is the maps package's and the API's to compose).
PaperSource = Callable[[psycopg.Connection[Any], str, dict[str, Any]], Papers]


def no_papers(conn: psycopg.Connection[Any], kind: str, payload: dict[str, Any]) -> Papers:
    """Emails carry their text only."""
    return Papers()


@dataclass(frozen=True)
class Delivery:
    """One event on its way to one subscription."""

    id: str
    subscription_id: int
    channel: str
    target: str
    event: str
    unit: str | None
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Outcome:
    """What one :func:`deliver_due` call did."""

    delivered: int = 0
    retrying: int = 0
    dead: int = 0


_SELECT = """
SELECT d.id::text AS id, d.subscription_id, s.channel, s.target, o.kind AS event,
       u.code AS unit, d.state, d.attempts, d.next_attempt_at, d.last_error, d.delivered_at,
       d.created_at
FROM delivery d JOIN subscription s ON s.id = d.subscription_id
JOIN outbox o ON o.id = d.outbox_id LEFT JOIN unit u ON u.id = o.unit_id
"""

_CLAIM = """
SELECT d.id::text, d.attempts, o.kind, o.payload, d.retry_from, d.subscription_id
FROM delivery d JOIN outbox o ON o.id = d.outbox_id
WHERE d.state = 'pending' AND d.next_attempt_at <= %(now)s
  AND (%(only)s::uuid IS NULL OR d.id = %(only)s::uuid)
ORDER BY d.next_attempt_at, d.created_at
LIMIT 1
FOR UPDATE OF d SKIP LOCKED
"""


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """How long to wait after the ``attempts``-th failure: doubling, capped, with jitter (the
    wait is drawn between half and all of it, so receivers that come back are not hit by
    every sender at the same instant)."""
    full = min(FIRST_RETRY * (1 << min(max(attempts - 1, 0), 20)), LONGEST)
    draw = rng.random() if rng is not None else random.random()  # noqa: S311 (jitter)
    return full * (0.5 + 0.5 * draw)


def deliver_due(conn: psycopg.Connection[Any], settings: Settings, *,
                now: datetime | None = None, limit: int = 100, only: str | None = None,
                papers: PaperSource = no_papers) -> Outcome:
    """Send up to ``limit`` deliveries due at ``now`` (default: the database's clock), one
    transaction each; return how many arrived, wait for a retry, and went dead. ``only``:
    just this delivery (``sitewatch notify test``); ``papers``: what emails carry beyond
    their text.

    ``conn`` must not be inside a transaction: each claim commits with its result.
    """
    with Courier(settings) as courier:
        return _deliver(conn, courier, now, limit, only, papers)


def _deliver(conn: psycopg.Connection[Any], courier: Courier, now: datetime | None,
             limit: int, only: str | None, papers: PaperSource) -> Outcome:
    settings = courier.settings
    delivered = retrying = dead = 0
    for _ in range(limit):
        with conn.transaction():
            when = now or _clock(conn)
            claimed = conn.execute(_CLAIM, {"now": when, "only": only}).fetchone()
            if claimed is None:
                break
            delivery_id, attempts, kind, payload, retry_from, subscription_id = claimed
            subscription = outbox.get(conn, subscription_id)
            try:
                _send(conn, courier, subscription, (delivery_id, kind, payload), papers)
            except SendFailed as failed:
                wait = backoff(attempts + 1)
                give_up = failed.permanent or (
                    when + wait > retry_from + timedelta(hours=settings.delivery_retry_hours))
                conn.execute(
                    "UPDATE delivery SET attempts = attempts + 1, last_error = %s,"
                    " state = CASE WHEN %s THEN 'dead' ELSE 'pending' END,"
                    " next_attempt_at = %s WHERE id = %s",
                    [failed.error, give_up, when + wait, delivery_id])
                dead += give_up
                retrying += not give_up
                continue
            conn.execute("UPDATE delivery SET attempts = attempts + 1, state = 'delivered',"
                         " delivered_at = %s, last_error = NULL WHERE id = %s",
                         [when, delivery_id])
            delivered += 1
    return Outcome(delivered, retrying, dead)


def _send(conn: psycopg.Connection[Any], courier: Courier, subscription: outbox.Subscription,
          event: tuple[str, str, dict[str, Any]], papers: PaperSource) -> None:
    """Render and send one delivery (``event``: its id, kind and payload); any failure is a
    :class:`SendFailed`.

    A unit's own group is @mentioned for events it has to act on (the office's group, which
    receives every unit's, is not); only an email carries papers.

    An unexpected error (a payload the renderer trips on, a URL the client rejects) must not
    roll the claim back: the delivery would stay first in line and block every other one
    behind it at every run. It is recorded like any failed send, retried, and dead in the end,
    where an admin sees it.
    """
    delivery_id, kind, payload = event
    settings = courier.settings
    try:
        message = render(kind, payload, public_url=settings.site_url, zone=settings.zone)
        if subscription.unit and subscription.channel in ("wecom", "dingtalk") \
                and kind in MENTIONING:
            message = dataclasses.replace(
                message, mentions=outbox.unit_mobiles(conn, subscription.unit))
        if subscription.channel == "email":
            message = dataclasses.replace(message, papers=papers(conn, kind, payload))
        courier.send(subscription, delivery_id, kind, payload, message)
    except SendFailed:
        raise
    except Exception as failed:
        log.exception("delivery %s failed unexpectedly", delivery_id)
        raise SendFailed(f"{type(failed).__name__}: {failed}") from failed


def deliver_job(conn: psycopg.Connection[Any], settings: Settings, now: datetime, *,
                papers: PaperSource = no_papers) -> str:
    """The worker's delivery job: :func:`deliver_due` on a connection of its own, so that
    each delivery commits with its result (the job runs in a transaction of the runner's,
    which would hold every result, and every claimed row, until the whole run ended)."""
    total = Outcome()
    until = time.monotonic() + BUDGET.total_seconds()
    with psycopg.connect(database.conninfo(settings), autocommit=True) as own:
        while True:
            done = deliver_due(own, settings, limit=BATCH, papers=papers)
            total = Outcome(total.delivered + done.delivered, total.retrying + done.retrying,
                            total.dead + done.dead)
            if sum(dataclasses.astuple(done)) < BATCH or time.monotonic() >= until:
                break
    return f"{total.delivered} delivered, {total.retrying} to retry, {total.dead} dead"


def _clock(conn: psycopg.Connection[Any]) -> datetime:
    row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    when: datetime = row[0]
    return when


def list_deliveries(conn: psycopg.Connection[Any], state: str | None = None,
                    limit: int = 200) -> list[Delivery]:
    """Deliveries, newest first, optionally of one state."""
    if state is not None and state not in DELIVERY_STATES:
        raise ValidationFailed(f"unknown state {state!r}; one of {', '.join(DELIVERY_STATES)}")
    with conn.cursor(row_factory=class_row(Delivery)) as cur:
        return cur.execute(_SELECT + " WHERE %(state)s::text IS NULL OR d.state = %(state)s"
                           " ORDER BY d.created_at DESC, d.id LIMIT %(limit)s",
                           {"state": state, "limit": limit}).fetchall()


def get(conn: psycopg.Connection[Any], delivery_id: str) -> Delivery:
    """One delivery by id; NotFound when there is none."""
    try:
        uuid.UUID(delivery_id)
    except ValueError:
        raise NotFound(f"no delivery {delivery_id[:100]!r}") from None
    with conn.cursor(row_factory=class_row(Delivery)) as cur:
        found = cur.execute(_SELECT + " WHERE d.id = %s::uuid", [delivery_id]).fetchone()
    if found is None:
        raise NotFound(f"no delivery {delivery_id!r}")
    return found


def retry(conn: psycopg.Connection[Any], delivery_id: str) -> Delivery:
    """Send a dead delivery again: pending, due now, with a fresh retry window."""
    get(conn, delivery_id)
    with conn.transaction():
        row = conn.execute("SELECT state FROM delivery WHERE id = %s::uuid FOR UPDATE",
                           [delivery_id]).fetchone()
        if row is None:
            raise NotFound(f"no delivery {delivery_id!r}")
        if row[0] != "dead":
            raise Conflict(f"only a dead delivery can be retried; this one is {row[0]}")
        # Due now, with a new retry window from now; attempts keep counting.
        conn.execute("UPDATE delivery SET state = 'pending', next_attempt_at = now(),"
                     " retry_from = now() WHERE id = %s::uuid", [delivery_id])
    return get(conn, delivery_id)
