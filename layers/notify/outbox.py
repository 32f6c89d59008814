"""The outbox and the subscriptions that receive it.

Events are written to ``outbox`` by triggers (migration 0018) in the transaction of the change
that causes them, and fanned out there into one ``delivery`` per matching subscription;
:func:`record` writes one from Python for events no table change announces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from layers.errors import NotFound, ValidationFailed, found

EventKind = Literal["issue.assigned", "issue.reassigned", "issue.reworked", "issue.verified",
                    "issue.due_soon", "issue.overdue", "finding.new", "order.issued",
                    "order.escalated", "digest", "test"]
# Held equal to the outbox table's CHECK by tests/layers/test_notify.py.
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)
Channel = Literal["webhook", "wecom", "dingtalk", "email"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)


@dataclass(frozen=True)
class Subscription:
    """Who receives which events, where (``target``: a URL, or addresses for email)."""

    id: int
    unit: str | None  # the unit's code; None: the office, every unit's events
    channel: Channel
    target: str
    secret: str | None
    events: list[str]
    created_by: str
    created_at: datetime


_SELECT = """
SELECT s.id, u.code AS unit, s.channel, s.target, s.secret, s.events, s.created_by,
       s.created_at
FROM subscription s LEFT JOIN unit u ON u.id = s.unit_id
"""


def record(conn: psycopg.Connection[Any], kind: EventKind, unit_id: int | None,
           payload: dict[str, Any]) -> int:
    """Write one outbox row in the caller's transaction; return its id.

    Matching subscriptions get their deliveries at once (a ``test`` row gets none: whoever
    writes it addresses it).
    """
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    row = conn.execute("INSERT INTO outbox (kind, unit_id, payload) VALUES (%s, %s, %s)"
                       " RETURNING id", [kind, unit_id, Jsonb({"event": kind, **payload})]
                       ).fetchone()
    assert row is not None
    return int(row[0])


def require_channel(channel: str) -> None:
    """ValidationFailed unless ``channel`` is one we send on (checked before its target, whose
    form depends on it)."""
    if channel not in CHANNELS:
        raise ValidationFailed(f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}")


def add(conn: psycopg.Connection[Any], *, unit: str | None, channel: str, target: str,
        secret: str | None, events: list[str], created_by: str) -> Subscription:
    """Store a subscription (the target is checked by the caller: layers.notify.targets)."""
    require_channel(channel)
    if any("\x00" in (text or "") for text in (target, secret)):
        raise ValidationFailed("目标或密钥含非法字符 the target or secret holds a NUL character")
    unknown = sorted(set(events) - set(EVENT_KINDS))
    if unknown:
        raise ValidationFailed(f"unknown events {', '.join(unknown)}; "
                               f"one of {', '.join(EVENT_KINDS)}")
    unit_id = None
    if unit is not None:
        known = conn.execute("SELECT id FROM unit WHERE code = %s", [unit]).fetchone()
        if known is None:
            raise ValidationFailed(f"no unit {unit!r}")
        unit_id = known[0]
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO subscription (unit_id, channel, target, secret, events, created_by)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            [unit_id, channel, target.strip(), secret or None, sorted(set(events)),
             created_by]).fetchone()
    assert row is not None
    return get(conn, int(row[0]))


def get(conn: psycopg.Connection[Any], subscription_id: int) -> Subscription:
    """One subscription; NotFound when there is none with this id."""
    with conn.cursor(row_factory=class_row(Subscription)) as cur:
        row = cur.execute(_SELECT + " WHERE s.id = %s", [subscription_id]).fetchone()
    return found(row, f"no subscription {subscription_id}")


def list_all(conn: psycopg.Connection[Any], limit: int = 1000) -> list[Subscription]:
    """Subscriptions, oldest first, at most ``limit`` (a district has a few per unit)."""
    with conn.cursor(row_factory=class_row(Subscription)) as cur:
        return cur.execute(_SELECT + " ORDER BY s.id LIMIT %s", [limit]).fetchall()


def delete(conn: psycopg.Connection[Any], subscription_id: int) -> None:
    """Remove a subscription and its deliveries; NotFound when there is none."""
    with conn.transaction():
        gone = conn.execute("DELETE FROM subscription WHERE id = %s", [subscription_id])
    if gone.rowcount == 0:
        raise NotFound(f"no subscription {subscription_id}")


def test(conn: psycopg.Connection[Any], subscription_id: int) -> str:
    """Queue a test message to one subscription; return the delivery's id."""
    subscription = get(conn, subscription_id)
    with conn.transaction():
        outbox_id = record(conn, "test", None, {
            "unit": subscription.unit,
            "note": "这是一条测试消息。This is a test message."})
        row = conn.execute("INSERT INTO delivery (outbox_id, subscription_id) VALUES (%s, %s)"
                           " RETURNING id::text", [outbox_id, subscription_id]).fetchone()
    assert row is not None
    return str(row[0])


# A mainland mobile number inside free text ("张三 138 0000 1111" is written without spaces).
_MOBILE_IN_TEXT = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
# The most people one message @mentions (a robot message is read by a group, not paged).
MOST_MENTIONS = 10


def unit_mobiles(conn: psycopg.Connection[Any], unit: str) -> tuple[str, ...]:
    """The mobile numbers a message to ``unit``'s group @mentions: its contact's, when the
    contact is (or holds) a mobile number, then those of the people who sign in for it (live
    unit tokens with a mobile), oldest token first, without repeats."""
    row = conn.execute(
        "SELECT u.contact, coalesce(array_agg(t.mobile ORDER BY t.id)"
        "  FILTER (WHERE t.mobile IS NOT NULL), '{}')"
        " FROM unit u LEFT JOIN api_token t ON t.unit_id = u.id AND t.role = 'unit'"
        "  AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())"
        " WHERE u.code = %s GROUP BY u.id", [unit]).fetchone()
    if row is None:
        return ()
    contact, people = row
    compact = re.sub(r"[\s-]", "", contact or "")
    mobiles = [*_MOBILE_IN_TEXT.findall(compact), *people]
    return tuple(dict.fromkeys(mobiles))[:MOST_MENTIONS]
