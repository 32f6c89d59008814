"""Supervision orders on the demo district: one per unit, idempotent, escalation, receipt."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from layers.auth import tokens
from layers.errors import Forbidden, NotFound, ValidationFailed
from layers.supervision import orders
from layers.supervision.orders import Issuer

SUPERVISOR = Issuer("督查组 张三", "supervisor")


def _actionable_by_unit(conn: psycopg.Connection[Any]) -> dict[str, int]:
    rows = conn.execute("""
        SELECT u.code, count(*) FROM issue i JOIN unit u ON u.id = i.lead_unit_id
        WHERE i.status IN ('reported', 'assigned') GROUP BY u.code""").fetchall()
    return {str(code): int(n) for code, n in rows}


def _overdue_by_unit(conn: psycopg.Connection[Any]) -> dict[str, int]:
    rows = conn.execute("""
        SELECT u.code, count(*) FROM issue i JOIN unit u ON u.id = i.lead_unit_id
        WHERE i.status IN ('reported', 'assigned') AND i.deadline < now()
        GROUP BY u.code""").fetchall()
    return {str(code): int(n) for code, n in rows}


def test_one_order_per_unit_lists_its_actionable_issues_once(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        expected = _actionable_by_unit(conn)
        assert len(expected) > 3
        written = orders.issue_orders(conn, SUPERVISOR)
        assert {o.unit: o.issues for o in written} == expected
        assert all(o.kind == "order" and o.level == 1 for o in written)
        assert len({o.code for o in written}) == len(written)
        # Running it again hands over nothing new.
        assert orders.issue_orders(conn, SUPERVISOR) == []
        audited = conn.execute("SELECT count(*) FROM issue_event WHERE action = 'order'"
                               ).fetchone()
        assert audited == (sum(expected.values()),)


def test_a_new_issue_goes_on_a_new_order_for_its_unit_only(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        orders.issue_orders(conn, SUPERVISOR)
        conn.execute("""
            INSERT INTO issue (category_code, geom, description, source, status, deadline,
                               lead_unit_id)
            SELECT category_code, geom, '新发现：占道经营', 'supervision', 'assigned',
                   now() + interval '1 day', lead_unit_id
            FROM issue WHERE status = 'assigned' ORDER BY id LIMIT 1""")
        unit = conn.execute("SELECT u.code FROM issue i JOIN unit u ON u.id = i.lead_unit_id"
                            " ORDER BY i.id DESC LIMIT 1").fetchone()
        written = orders.issue_orders(conn, SUPERVISOR, note="请立即整改")
        assert [(o.unit, o.issues) for o in written] == [(unit[0] if unit else None, 1)]
        order = orders.get(conn, written[0].code)
        assert order.note == "请立即整改"
        assert [i.description for i in order.items] == ["新发现：占道经营"]


def test_an_order_keeps_what_it_listed_when_the_issue_moves_on(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        code = orders.issue_orders(conn, SUPERVISOR)[0].code
        first = orders.get(conn, code).items[0]
        conn.execute("UPDATE issue SET status = 'rectified', deadline = deadline + interval"
                     " '2 days', version = version + 1 WHERE public_id = %s",
                     [first.public_id])
        again = orders.get(conn, code).items[0]
        assert again.public_id == first.public_id
        assert again.status_listed == first.status_listed != "rectified"
        assert again.deadline_listed == first.deadline_listed
        assert again.status == "rectified"
        assert again.deadline is not None and first.deadline is not None
        assert again.deadline > first.deadline


def test_items_are_listed_most_urgent_first(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        written = orders.issue_orders(conn, SUPERVISOR)
        biggest = max(written, key=lambda o: o.issues)
        items = orders.get(conn, biggest.code).items
        assert [i.position for i in items] == list(range(1, len(items) + 1))
        deadlines = [i.deadline_listed for i in items if i.deadline_listed is not None]
        assert deadlines == sorted(deadlines)


def test_escalation_is_idempotent_and_escalates_again_after_a_missed_extension(
        demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        overdue = _overdue_by_unit(conn)
        assert sum(overdue.values()) > 10
        written = orders.escalate(conn, SUPERVISOR)
        assert {o.unit: o.issues for o in written} == overdue
        assert all(o.kind == "escalation" and o.level == 2 for o in written)
        assert orders.escalate(conn, SUPERVISOR) == []
        assert orders.escalate(conn, SUPERVISOR) == []
        # Extended, and missed again: one more escalation, one level up.
        public_id = orders.get(conn, written[0].code).items[0].public_id
        conn.execute("UPDATE issue SET deadline = now() - interval '1 minute'"
                     " WHERE public_id = %s", [public_id])
        again = orders.escalate(conn, SUPERVISOR)
        assert [(o.issues, o.level) for o in again] == [(1, 3)]
        assert orders.get(conn, again[0].code).items[0].public_id == public_id
        assert orders.escalate(conn, SUPERVISOR) == []
        # An escalated issue is already handed over: no first order repeats it.
        listed = {i.public_id for o in orders.issue_orders(conn, SUPERVISOR)
                  for i in orders.get(conn, o.code).items}
        assert public_id not in listed


def test_concurrent_escalations_write_each_issue_once(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        overdue = sum(_overdue_by_unit(conn).values())
    results: list[list[orders.Written]] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            with psycopg.connect(demo_dsn) as own:
                barrier.wait()
                results.append(orders.escalate(own, SUPERVISOR))
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert sorted(sum(o.issues for o in r) for r in results) == [0, 0, 0, overdue]
    with psycopg.connect(demo_dsn) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT issue_id)"
                            " FROM supervision_order_item").fetchone() == (overdue, overdue)


def test_the_database_refuses_a_second_hand_over(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        code = orders.issue_orders(conn, SUPERVISOR)[0].code
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("""
                INSERT INTO supervision_order_item (order_id, issue_id, position, level, status)
                SELECT o.id, x.issue_id, 999, 1, 'assigned'
                FROM supervision_order o
                JOIN supervision_order_item x ON x.order_id <> o.id
                WHERE o.code = %s LIMIT 1""", [code])


def test_only_the_addressed_unit_acknowledges_and_the_first_receipt_stands(
        demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        written = orders.issue_orders(conn, SUPERVISOR)
        code, unit = written[0].code, written[0].unit
        other = next(o.unit for o in written if o.unit != unit)
        own = tokens.authenticate(conn, tokens.create(conn, role="unit", unit_code=unit,
                                                      name="社区书记"))
        stranger = tokens.authenticate(conn, tokens.create(conn, role="unit", name="测试",
                                                           unit_code=other))
        supervisor = tokens.authenticate(conn, tokens.create(conn, role="supervisor", name="测试"))
        assert own and stranger and supervisor
        for caller in (stranger, supervisor):
            with pytest.raises(Forbidden):
                orders.acknowledge(conn, code, caller)
        assert orders.get(conn, code).acknowledged_at is None
        first = orders.acknowledge(conn, code, own)
        assert first.acknowledged_by == "社区书记"
        assert first.acknowledged_at is not None
        again = orders.acknowledge(conn, code, own)
        assert again.acknowledged_at == first.acknowledged_at
        pending, total = orders.list_orders(conn, orders.OrderFilter(acknowledged=False))
        assert total == len(written) - 1 == len(pending)
        assert code not in {o.code for o in pending}


def test_bad_requests_write_nothing(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        with pytest.raises(ValidationFailed, match="no unit"):
            orders.issue_orders(conn, SUPERVISOR, unit="NOPE")
        with pytest.raises(ValidationFailed, match="2000"):
            orders.issue_orders(conn, SUPERVISOR, note="长" * 2001)
        with pytest.raises(NotFound):
            orders.get(conn, "DB2026-9999")
        assert conn.execute("SELECT count(*) FROM supervision_order").fetchone() == (0,)


def test_limiting_to_one_unit(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        expected = _actionable_by_unit(conn)
        unit = sorted(expected)[0]
        written = orders.issue_orders(conn, SUPERVISOR, unit=unit)
        assert [(o.unit, o.issues) for o in written] == [(unit, expected[unit])]
