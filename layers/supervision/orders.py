"""Supervision orders (督办单): written hand-over of open issues to the unit responsible.

- ``issue_orders`` writes one order per responsible unit (the issue's lead unit) listing its
  open issues that no order has handed over yet, most urgent deadline first. Issues still
  waiting for the unit to act count (reported, assigned); rectified ones wait for the
  supervisor, not the unit, and issues without a lead unit wait in the unassigned queue.
- ``escalate`` writes escalation orders (升级督办) for open issues past their deadline: one
  per unit, each issue at most once per deadline it ran past. An issue whose deadline is
  extended and missed again escalates again, one level higher. Escalation orders name the
  unit's leader (挂钩领导) as copied.
- ``acknowledge`` records the unit's receipt (签收) once; asking again changes nothing.

Both writers are safe to run repeatedly and concurrently: they take one transaction-level
advisory lock, and unique indexes in the database (migration 0008) refuse a second hand-over
or a second escalation whatever the path. Every issue put on an order gets an ``order`` or
``escalate`` event in its audit trail, in the same statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Literal

import psycopg
import shapely
from psycopg import sql
from psycopg.rows import class_row, dict_row, kwargs_row
from shapely.geometry.base import BaseGeometry

from layers.auth import access
from layers.auth.tokens import Principal
from layers.errors import Forbidden, NotFound, ValidationFailed
from layers.issues.records import ISSUE_SELECT
from layers.vocab import AWAITING_UNIT_STATUSES

_LOCK = "sitewatch.supervision_order"


@dataclass(frozen=True)
class Issuer:
    """Who signs the orders."""

    name: str
    role: str | None = None


# One statement: pick the issues, create the orders, list the issues on them and audit each.
# ``candidates`` must yield (id, lead_unit_id, status, deadline, level, escalated_deadline).
_WRITE = """
WITH cand AS ({candidates}),
numbered AS (
    SELECT c.*, row_number() OVER (PARTITION BY c.lead_unit_id
                                   ORDER BY c.deadline NULLS LAST, c.id) AS position
    FROM cand c
),
orders AS (
    INSERT INTO supervision_order (code, unit_id, kind, level, issued_by, issued_by_role, note)
    SELECT format('DB%%s-%%s', to_char(now(), 'YYYY'),
                  lpad(nextval('supervision_order_seq')::text, 4, '0')),
           n.lead_unit_id, %(kind)s, max(n.level), %(actor)s, %(role)s, %(note)s
    FROM numbered n GROUP BY n.lead_unit_id ORDER BY n.lead_unit_id
    RETURNING id, code, unit_id, kind, level
),
items AS (
    INSERT INTO supervision_order_item (order_id, issue_id, position, level, status, deadline,
                                        escalated_deadline)
    SELECT o.id, n.id, n.position, n.level, n.status, n.deadline, n.escalated_deadline
    FROM numbered n JOIN orders o ON o.unit_id = n.lead_unit_id
    RETURNING order_id, issue_id, status, level
),
audit AS (
    INSERT INTO issue_event (issue_id, actor, actor_role, action, from_status, to_status, data)
    SELECT it.issue_id, %(actor)s, %(role)s, %(event)s, it.status, it.status,
           jsonb_build_object('order', o.code, 'level', it.level)
    FROM items it JOIN orders o ON o.id = it.order_id
)
SELECT o.code, u.code AS unit, u.name AS unit_name, o.kind, o.level,
       (SELECT count(*) FROM items it WHERE it.order_id = o.id) AS issues
FROM orders o JOIN unit u ON u.id = o.unit_id
ORDER BY o.code
"""

_NEW_OPEN = """
SELECT i.id, i.lead_unit_id, i.status, i.deadline, 1 AS level,
       NULL::timestamptz AS escalated_deadline
FROM issue i
-- issue_is_open is implied by the statuses awaiting the unit, but written out it lets even a
-- generic plan (a prepared statement) prove the partial index on open issues.
WHERE issue_is_open(i.status) AND i.status = ANY(%(awaiting)s) AND i.lead_unit_id IS NOT NULL
  AND (%(unit)s::bigint IS NULL OR i.lead_unit_id = %(unit)s)
  AND NOT EXISTS (SELECT 1 FROM supervision_order_item x WHERE x.issue_id = i.id)
"""

_OVERDUE = """
SELECT i.id, i.lead_unit_id, i.status, i.deadline,
       2 + (SELECT count(*) FROM supervision_order_item x
            WHERE x.issue_id = i.id AND x.escalated_deadline IS NOT NULL)::int AS level,
       i.deadline AS escalated_deadline
FROM issue i
WHERE issue_is_overdue(i.status, i.deadline, now()) AND i.status = ANY(%(awaiting)s)
  AND i.lead_unit_id IS NOT NULL
  AND (%(unit)s::bigint IS NULL OR i.lead_unit_id = %(unit)s)
  AND NOT EXISTS (SELECT 1 FROM supervision_order_item x
                  WHERE x.issue_id = i.id AND x.escalated_deadline = i.deadline)
"""


@dataclass(frozen=True)
class Written:
    """An order just written: its code, unit, kind, escalation level and issues listed."""

    code: str
    unit: str
    unit_name: str
    kind: Literal["order", "escalation"]
    level: int
    issues: int


def issue_orders(conn: psycopg.Connection[Any], issuer: Issuer, *, unit: str | None = None,
                 note: str | None = None) -> list[Written]:
    """Hand every open issue not yet on an order to its unit: one new order per unit.

    ``unit`` (code) limits it to one unit. Returns the orders written (none when every open
    issue is already on an order).
    """
    return _write(conn, _NEW_OPEN, issuer, unit=unit, note=note, kind="order", event="order")


def escalate(conn: psycopg.Connection[Any], issuer: Issuer, *, unit: str | None = None,
             note: str | None = None) -> list[Written]:
    """Escalate overdue open issues into new orders, each at most once per missed deadline."""
    return _write(conn, _OVERDUE, issuer, unit=unit, note=note, kind="escalation",
                  event="escalate")


def _write(conn: psycopg.Connection[Any], candidates: str, issuer: Issuer, *,
           unit: str | None, note: str | None, kind: str, event: str) -> list[Written]:
    if note is not None and len(note) > 2000:
        raise ValidationFailed("the note is longer than 2000 characters")
    unit_id = _unit_id(conn, unit) if unit is not None else None
    with conn.transaction(), conn.cursor(row_factory=class_row(Written)) as cur:
        # Serialise writers: two runs at once must not both pick the same issues (the unique
        # indexes would refuse the second, but as an error instead of "nothing to do").
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [_LOCK])
        query = _WRITE.replace("{candidates}", candidates)
        # Only issues still waiting for the unit go on an order: a rectified one waits for
        # the supervisor's check, not for the unit.
        return cur.execute(query, {"unit": unit_id, "awaiting": list(AWAITING_UNIT_STATUSES),
                                   "kind": kind, "event": event,
                                   "actor": issuer.name, "role": issuer.role,
                                   "note": note}).fetchall()


def _unit_id(conn: psycopg.Connection[Any], unit: str) -> int:
    row = conn.execute("SELECT id FROM unit WHERE code = %s OR name = %s", [unit, unit]
                       ).fetchone()
    if row is None:
        raise ValidationFailed(f"no unit {unit!r}", details=[{"field": "unit",
                                                             "message": "unknown unit"}])
    return int(row[0])


_HEADER = """
SELECT o.id, o.code, o.kind, o.level, o.issued_at, o.issued_by, o.note, o.acknowledged_at,
       o.acknowledged_by, o.unit_id, u.code AS unit, u.name AS unit_name, u.name_en AS unit_name_en,
       u.leader AS unit_leader, u.contact AS unit_contact,
       (SELECT name FROM jurisdiction WHERE level = 'street' ORDER BY code LIMIT 1) AS street,
       count(x.issue_id) AS issues,
       count(x.issue_id) FILTER (WHERE issue_is_open(i.status)) AS still_open,
       count(x.issue_id) FILTER (WHERE issue_is_overdue(i.status, i.deadline, now()))
           AS overdue_now
FROM supervision_order o JOIN unit u ON u.id = o.unit_id
LEFT JOIN supervision_order_item x ON x.order_id = o.id
LEFT JOIN issue i ON i.id = x.issue_id
"""
_GROUP = " GROUP BY o.id, u.id"


@dataclass(frozen=True)
class OrderSummary:
    """An order with its unit and its counts now: issues listed, still open, overdue now."""

    id: int
    code: str
    kind: Literal["order", "escalation"]
    level: int
    issued_at: datetime
    issued_by: str
    note: str | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    unit_id: int
    unit: str
    unit_name: str
    unit_name_en: str | None
    unit_leader: str | None
    unit_contact: str | None
    street: str | None  # the district's street, for the letterhead
    issues: int
    still_open: int
    overdue_now: int


@dataclass(frozen=True)
class OrderItem:
    """An issue on an order: as listed when issued (status, deadline) and as it is now."""

    position: int
    level: int
    status_listed: str
    deadline_listed: datetime | None
    public_id: str
    category: str
    category_zh: str
    category_en: str
    description: str
    lon: float
    lat: float
    jurisdiction: str | None
    jurisdiction_name: str | None
    site: str | None
    site_name: str | None
    reported_at: datetime
    status: str
    deadline: datetime | None
    traffic_light: str | None
    rework_count: int
    points: float


@dataclass(frozen=True)
class Order(OrderSummary):
    """An order with its issues, in the order they are listed."""

    items: list[OrderItem]


_ITEMS = sql.SQL("""
    SELECT x.position, x.level, x.status AS status_listed, x.deadline AS deadline_listed,
           q.public_id, q.category, q.category_zh, q.category_en, q.description, q.lon, q.lat,
           q.jurisdiction, q.jurisdiction_name, q.site, q.site_name, q.reported_at, q.status,
           q.deadline, q.traffic_light, q.rework_count, c.points::float8 AS points
    FROM supervision_order_item x
    JOIN supervision_order o ON o.id = x.order_id
    JOIN ({select}) q ON q.id = x.issue_id
    JOIN category c ON c.code = q.category
    WHERE o.code = %s ORDER BY x.position""").format(select=ISSUE_SELECT)


def get(conn: psycopg.Connection[Any], code: str) -> Order:
    """An order with its issues: as listed when issued (status, deadline) and as they are now."""
    with conn.cursor(row_factory=class_row(OrderItem)) as cur:
        items = cur.execute(_ITEMS, [code]).fetchall()
    with conn.cursor(row_factory=kwargs_row(partial(Order, items=items))) as cur:
        order = cur.execute(_HEADER + " WHERE o.code = %s" + _GROUP, [code]).fetchone()
    if order is None:
        raise NotFound(f"no supervision order {code!r}")
    return order


_WHERE = """ WHERE (%(unit)s::text IS NULL OR u.code = %(unit)s)
    AND (%(kind)s::text IS NULL OR o.kind = %(kind)s)
    AND (%(ack)s::boolean IS NULL OR (o.acknowledged_at IS NOT NULL) = %(ack)s)"""
_LIST = (_HEADER + _WHERE + _GROUP
         + " ORDER BY o.issued_at DESC, o.id DESC LIMIT %(limit)s OFFSET %(offset)s")
_COUNT = " ".join(("SELECT count(*) AS n FROM supervision_order o",
                   "JOIN unit u ON u.id = o.unit_id", _WHERE))


@dataclass(frozen=True)
class OrderFilter:
    """Filters of ``GET /api/v1/orders``; None means "any"."""

    unit: str | None = None
    kind: str | None = None
    acknowledged: bool | None = None
    limit: int = 100
    offset: int = 0


def list_orders(conn: psycopg.Connection[Any], f: OrderFilter
                ) -> tuple[list[OrderSummary], int]:
    """Orders newest first with their counts, and the total matching."""
    params = {"unit": f.unit, "kind": f.kind, "ack": f.acknowledged, "limit": f.limit,
              "offset": f.offset}
    with conn.cursor(row_factory=class_row(OrderSummary)) as cur:
        rows = cur.execute(_LIST, params).fetchall()
    with conn.cursor(row_factory=dict_row) as counting:
        total = counting.execute(_COUNT, params).fetchone()
    assert total is not None
    return rows, int(total["n"])


def acknowledge(conn: psycopg.Connection[Any], code: str, caller: Principal,
                *, now: datetime | None = None) -> Order:
    """Record the unit's receipt of the order (its own unit's token, or an admin's).

    The first receipt stands: acknowledging again returns the order unchanged, so a phone
    that retries does not move the time.
    """
    with conn.transaction():
        row = conn.execute("SELECT id, unit_id FROM supervision_order WHERE code = %s"
                           " FOR UPDATE", [code]).fetchone()
        if row is None:
            raise NotFound(f"no supervision order {code!r}")
        if not access.holds(caller, "acknowledge_order", (row[1],)):
            raise Forbidden("only the unit the order is addressed to (or an admin) "
                            "acknowledges it")
        conn.execute("UPDATE supervision_order SET acknowledged_at = coalesce(%s, now()),"
                     " acknowledged_by = %s WHERE id = %s AND acknowledged_at IS NULL",
                     [now, caller.actor, row[0]])
    return get(conn, code)


def outlines(conn: psycopg.Connection[Any]) -> list[tuple[str, str, BaseGeometry]]:
    """The street and community outlines for an order's location sketch, communities first
    (drawn under the street line), simplified to about a metre."""
    rows = conn.execute("""
        SELECT level, name, ST_AsBinary(ST_SimplifyPreserveTopology(geom, 0.00001))
        FROM jurisdiction WHERE level IN ('street', 'community')
        ORDER BY level = 'street', code""").fetchall()
    return [(str(level), str(name), shapely.from_wkb(bytes(wkb))) for level, name, wkb in rows]
