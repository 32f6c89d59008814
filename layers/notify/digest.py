"""The daily digest (每日通报): each subscribed unit's open issues by traffic light, its
supervision orders not yet signed for and its points at risk, in one message a day.

Built from the queries the pages already use (layers.views.mapviews.unit_issues for the work
page's issues, layers.supervision.orders.list_orders for unsigned orders, and
layers.supervision.scores.ranking for points at risk), so a digest never says other than the
unit's work page and the scores. Issues count for a unit as on its work page (it leads them,
owns the ground or is the department); points at risk, as in the scores, for the issues it
leads.

The office's subscriptions (without a unit) get one office-wide digest, not one message per
unit: the office wants the morning's overview of which units have red issues and unsigned
orders in one place to decide whom to call; the units' own digests go to their own groups.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from layers.db.settings import Settings
from layers.notify import outbox
from layers.supervision import orders, scores
from layers.views import mapviews

# At most this many issue and order ids are named in one message (the counts are complete).
NAMED = 10
# Lights in the order a digest lists them; "none" is an open issue without a deadline.
LIGHTS = ("red", "yellow", "green", "none")


@dataclass(frozen=True)
class UnitDigest:
    """One unit's morning figures."""

    unit: str
    unit_name: str
    open: int
    lights: dict[str, int]
    overdue: list[str]  # the first NAMED overdue issues, most urgent first
    orders_unsigned: int
    orders: list[str] = field(default_factory=list)  # the first NAMED unsigned orders
    points_at_risk: float = 0.0


def _subscribed(conn: psycopg.Connection[Any]) -> tuple[list[tuple[int, str, str]], bool]:
    """Units with a subscription wanting the digest (id, code, name), and whether the office
    has one."""
    rows = conn.execute(
        "SELECT u.id, u.code, u.name FROM subscription s LEFT JOIN unit u ON u.id = s.unit_id"
        " WHERE cardinality(s.events) = 0 OR 'digest' = ANY (s.events)").fetchall()
    units = sorted({(i, c, n) for i, c, n in rows if i is not None}, key=lambda r: r[1])
    office = any(i is None for i, _c, _n in rows)
    return [(int(i), str(c), str(n)) for i, c, n in units], office


def unit_digest(conn: psycopg.Connection[Any], code: str, name: str,
                at_risk: dict[str, float]) -> UnitDigest:
    """One unit's figures now; ``at_risk``: points at risk by unit code (scores.ranking)."""
    issues = mapviews.unit_issues(conn, code)
    lights = {light: 0 for light in LIGHTS}
    for issue in issues:
        lights[issue.traffic_light or "none"] += 1
    unsigned, total = orders.list_orders(conn, orders.OrderFilter(
        unit=code, acknowledged=False, limit=NAMED))
    return UnitDigest(
        unit=code, unit_name=name, open=len(issues), lights=lights,
        overdue=[i.public_id for i in issues if i.overdue][:NAMED],
        orders_unsigned=total, orders=[o.code for o in unsigned],
        points_at_risk=at_risk.get(code, 0.0))


def points_at_risk(conn: psycopg.Connection[Any], now: datetime) -> dict[str, float]:
    """Points at risk of every unit's open issues, whenever reported (the scores' measure)."""
    ranked = scores.ranking(conn, group="unit", since=datetime(1970, 1, 1, tzinfo=UTC),
                            until=now)
    return {s.code: s.points_at_risk for s in ranked if s.code is not None}


def send(conn: psycopg.Connection[Any], settings: Settings, now: datetime) -> str:
    """Write today's digests to the outbox: one per subscribed unit, one for the office."""
    units, office = _subscribed(conn)
    if not units and not office:
        return "no digest subscriptions"
    at_risk = points_at_risk(conn, now)
    day = now.astimezone(settings.zone).date().isoformat()
    for unit_id, code, name in units:
        outbox.record(conn, "digest", unit_id,
                      {"date": day, **asdict(unit_digest(conn, code, name, at_risk))})
    if office:
        every = conn.execute("SELECT code, name FROM unit ORDER BY code").fetchall()
        rows = [unit_digest(conn, str(c), str(n), at_risk) for c, n in every]
        busy = [asdict(r) for r in rows if r.open or r.orders_unsigned]
        outbox.record(conn, "digest", None, {
            # No district totals of issues: an issue counts for each of its units (lead,
            # ground, department), so a sum over units would count it up to three times.
            "date": day, "units": busy,
            "orders_unsigned": sum(r.orders_unsigned for r in rows),
            "points_at_risk": round(sum(at_risk.values()), 1)})
    return f"{len(units)} unit digest(s){', and the office' if office else ''}"
