"""Partitioned and unpartitioned schemas give the same answers (migration 0030).

A database is migrated up to 0029, given a small district with issues over several months,
their trails, orders, reworks and a duplicate, and asked the read queries of the code (the
period analyses' own SQL, the trail views and functions, lists with filters, look-ups, the
tallies); then 0030 partitions it and the same questions must get the same answers, the
rows must all be there, the keys of every table into issue must still hold, and what the
application writes next must behave as before.

The queries are SQL, not the layer functions: the code of this tree already reads columns
later migrations add, which a database at 0029 does not have. The later tests of the layers
and routes (all of them run on the partitioned schema) cover the functions themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import psycopg
import pytest
from psycopg import sql
from yoyo import get_backend, read_migrations

from layers.db import migrate, partitions
from layers.db.cluster import Cluster
from layers.db.settings import Settings
from layers.supervision import accountability, handovers
from tests import small_district

PARTITIONS = "0030_partitions"
ZONE = Settings().zone
START = datetime(2026, 5, 3, 9, tzinfo=ZONE)
NOW = datetime(2026, 11, 20, 10, tzinfo=ZONE)


def _apply(dsn: str, upto: str) -> None:
    backend = get_backend(migrate._yoyo_uri(dsn))  # the URI apply() uses
    try:
        with resources.as_file(resources.files("layers.db") / "migrations") as folder:
            migrations = read_migrations(str(folder))
            with backend.lock():
                backend.apply_migrations(backend.to_apply(migrations).filter(
                    lambda m: m.id <= upto))
    finally:
        backend.connection.close()


@pytest.fixture
def before(cluster: Cluster) -> Iterator[str]:
    """A database migrated up to 0029, holding the small district."""
    name = "migrate_partitions"
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = cluster.conninfo(name)
    _apply(dsn, "0029_zzz")
    assert migrate.pending(dsn)[0] == PARTITIONS
    with psycopg.connect(dsn) as conn:
        _load(conn)
    yield dsn
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _load(conn: psycopg.Connection[Any]) -> None:
    """The small district's ground (tests.small_district) and forty issues over six months
    with trails, a duplicate, a supervision order, reworks and rejected reports (in SQL: the
    code of this tree needs later migrations)."""
    conn.execute("INSERT INTO unit (code, name, kind) VALUES ('E', '湖东社区', 'territorial'),"
                 " ('W', '湖西社区', 'territorial')")
    conn.execute("INSERT INTO jurisdiction (code, name, level, geom) VALUES"
                 " ('S', '星湖街道', 'street', ST_GeomFromGeoJSON(%s))",
                 [json.dumps(small_district.box(small_district.WEST, small_district.EAST))])
    for code, name, unit, west, east in (
            ("CW", "湖西", "W", small_district.WEST, small_district.MIDDLE),
            ("CE", "湖东", "E", small_district.MIDDLE, small_district.EAST)):
        conn.execute("INSERT INTO jurisdiction (code, name, level, parent_id, unit_id, geom)"
                     " SELECT %s, %s, 'community', (SELECT id FROM jurisdiction WHERE"
                     " code = 'S'), (SELECT id FROM unit WHERE code = %s),"
                     " ST_GeomFromGeoJSON(%s)",
                     [code, name, unit, json.dumps(small_district.box(west, east))])
    conn.execute(
        """
        INSERT INTO issue (category_code, geom, description, source, reported_at, status,
                           lead_unit_id, deadline, closed_at, rework_count, reporter,
                           reporter_contact)
        SELECT 'CMP-03', ST_SetSRID(ST_MakePoint(120.701 + g * 0.0004, 31.305), 4326),
               '问题 ' || g, CASE WHEN g %% 5 = 0 THEN 'external_assessment' ELSE 'citizen' END,
               %(start)s + g * interval '4 days 3 hours',
               (ARRAY['assigned', 'rectified', 'verified', 'rejected'])[g %% 4 + 1],
               (SELECT id FROM unit WHERE code = CASE WHEN g %% 2 = 0 THEN 'W' ELSE 'E' END),
               %(start)s + g * interval '4 days 3 hours' + interval '3 days',
               CASE WHEN g %% 4 IN (2, 3) THEN %(start)s + g * interval '4 days 3 hours'
                                              + interval '2 days' + g * interval '1 hour' END,
               g %% 3, '居民' || g, '1390000' || lpad(g::text, 4, '0')
        FROM generate_series(1, 40) g
        """, {"start": START})
    conn.execute(
        """
        INSERT INTO issue_event (issue_id, at, actor, actor_role, action, from_status,
                                 to_status, data)
        SELECT i.id, i.reported_at + e.after, e.actor, e.role, e.action, e.from_s, e.to_s,
               e.data
        FROM issue i CROSS JOIN LATERAL (VALUES
            (interval '0', '巡查员', 'inspector', 'report', NULL, 'reported', '{}'::jsonb),
            (interval '2 hours', '创建办', 'admin', 'assign', 'reported', 'assigned',
             jsonb_build_object('lead_unit', (SELECT code FROM unit WHERE id = i.lead_unit_id))),
            (interval '1 day', 'unit', 'unit', 'rectify', 'assigned', 'rectified', '{}'),
            (interval '40 days', '督查', 'supervisor', 'reopen', 'rectified', 'assigned', '{}'))
            AS e(after, actor, role, action, from_s, to_s, data)
        WHERE i.description LIKE '问题 %%'
          AND (e.action IN ('report', 'assign') OR i.status <> 'assigned')
          AND (e.action <> 'reopen' OR i.rework_count > 0)
        """)
    conn.execute("UPDATE issue i SET jurisdiction_id = j.id, territorial_unit_id = j.unit_id"
                 " FROM jurisdiction j WHERE j.level = 'community'"
                 " AND ST_Covers(j.geom, i.geom)")
    conn.execute("UPDATE issue SET status = 'duplicate', closed_at = reported_at + interval"
                 " '1 hour', duplicate_of = (SELECT min(id) FROM issue) WHERE id = (SELECT"
                 " max(id) FROM issue WHERE status = 'assigned')")
    conn.execute("INSERT INTO supervision_order (code, unit_id, kind, level, issued_by)"
                 " SELECT 'DB2026-0001', id, 'order', 1, '督查' FROM unit WHERE code = 'E'")
    conn.execute("INSERT INTO supervision_order_item (order_id, issue_id, position, level,"
                 " status, deadline) SELECT (SELECT id FROM supervision_order), id,"
                 " row_number() OVER (ORDER BY id), 1, status, deadline FROM issue"
                 " WHERE rework_count = 2")
    conn.execute("UPDATE issue SET first_rectified_at = r.first FROM (SELECT issue_id,"
                 " min(at) AS first FROM issue_event WHERE action = 'rectify' GROUP BY"
                 " issue_id) r WHERE r.issue_id = issue.id")
    # Tally rows as a fold leaves them, made in SQL: the fold is this tree's code, which keys
    # the tallies by columns later migrations add (0033). What matters here is that 0030
    # keeps them and journals nothing again.
    conn.execute("TRUNCATE tally_journal")
    for table in ("tally_day", "tally_month"):
        conn.execute(sql.SQL("""
            INSERT INTO {} (cell, day, category_code, jurisdiction_id, site_id, open,
                            deadline, late, assessed, n)
            SELECT id %% 7, date_trunc({}, reported_at AT TIME ZONE %s)::date, category_code,
                   jurisdiction_id, site_id, issue_is_open(status),
                   CASE WHEN issue_is_open(status) THEN deadline END, false,
                   source = 'external_assessment', count(*)
            FROM issue GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9""").format(
            sql.Identifier(table), sql.Literal(table.removeprefix("tally_"))), [str(ZONE)])
    for table in ("duty_day", "duty_month"):
        conn.execute(sql.SQL("""
            INSERT INTO {} (day, lead_unit_id, jurisdiction_id, site_id, category_code, open,
                            deadline, late, assessed, dismissed, verified, on_time, n,
                            reworks, reworked, rework_cases, rectified, rectify_seconds)
            SELECT date_trunc({}, reported_at AT TIME ZONE %s)::date, lead_unit_id,
                   jurisdiction_id, site_id, category_code, issue_is_open(status),
                   CASE WHEN issue_is_open(status) THEN deadline END, false, false,
                   status IN ('rejected', 'duplicate'), status = 'verified', false, count(*),
                   sum(rework_count), count(*) FILTER (WHERE rework_count > 0), 0, 0, 0
            FROM issue GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12""").format(
            sql.Identifier(table), sql.Literal(table.removeprefix("duty_"))), [str(ZONE)])


def _rows(conn: psycopg.Connection[Any], query: str | sql.Composed,
          params: Any = None) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(query, params).fetchall()]


def _answers(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """What the read paths ask, keyed by a name that says which."""
    first = conn.execute("SELECT min(id), min(public_id) FROM issue").fetchone()
    assert first is not None
    units = dict(_rows(conn, "SELECT code, id FROM unit WHERE code IN ('E', 'W')"))
    out: dict[str, Any] = {}
    # tally_journal: nothing copied is journalled again (the tallies count it already).
    for table in ("issue", "issue_event", "supervision_order_item", "tally_journal",
                  "issue_change", "tally_day",
                  "tally_month", "duty_day", "duty_month"):
        out[f"rows of {table}"] = _rows(conn, sql.SQL(
            "SELECT md5(string_agg(t::text, '|' ORDER BY t::text)), count(*) FROM {} t"
            ).format(sql.Identifier(table)))
    out["list, newest first, paged"] = _rows(
        conn, "SELECT public_id, status FROM issue ORDER BY reported_at DESC, id DESC"
              " LIMIT 10 OFFSET 5")
    for month in range(5, 12):
        since = datetime(2026, month, 1, tzinfo=ZONE)
        until = datetime(2026, month + 1, 1, tzinfo=ZONE)
        period = {"since": since, "until": until}
        out[f"list of 2026-{month}"] = _rows(
            conn, "SELECT public_id, status, lead_unit_id, rework_count FROM issue"
                  " WHERE reported_at >= %(since)s AND reported_at < %(until)s"
                  " ORDER BY reported_at DESC, id DESC", period)
        out[f"trail of 2026-{month}"] = _rows(
            conn, "SELECT issue_id, event_id, revision_id, at, actor, action, data"
                  " FROM issue_trail WHERE at >= %(since)s AND at < %(until)s"
                  " ORDER BY at, event_id", period)
        out[f"handovers of 2026-{month}"] = _rows(conn, handovers._MATRIX, period)
        for code, unit in units.items():
            out[f"accountability of {code} in 2026-{month}"] = _rows(
                conn, accountability._ENTRIES, {**period, "unit": unit})
    out["by status and unit"] = _rows(
        conn, "SELECT status, lead_unit_id, count(*), sum(rework_count) FROM issue"
              " GROUP BY 1, 2 ORDER BY 1, 2")
    out["in a box"] = _rows(
        conn, "SELECT public_id FROM issue WHERE geom && ST_MakeEnvelope(120.705, 31.3,"
              " 120.71, 31.31, 4326) ORDER BY id")
    out["by public id"] = _rows(conn, "SELECT * FROM issue WHERE public_id = %s", [first[1]])
    out["duplicates"] = _rows(conn, "SELECT d.public_id, o.public_id FROM issue d"
                                    " JOIN issue o ON o.id = d.duplicate_of")
    out["answer record"] = _rows(conn, "SELECT * FROM issue_answer_record"
                                       " ORDER BY issue_id, at, tier, seq")
    out["lead unit at"] = _rows(
        conn, "SELECT id, issue_lead_unit_at(id, reported_at + interval '1 day'),"
              " issue_lead_unit_at(id, %s) FROM issue ORDER BY id", [NOW])
    out["open work by site"] = _rows(
        conn, "SELECT site_id, count(*), min(deadline) FROM issue WHERE issue_is_open(status)"
              " GROUP BY 1 ORDER BY 1")
    out["overdue now"] = _rows(conn, "SELECT public_id FROM issue WHERE"
                                     " issue_is_overdue(status, deadline, %s) ORDER BY id",
                               [NOW])
    out["orders"] = _rows(conn, "SELECT o.code, i.public_id FROM supervision_order_item oi"
                                " JOIN supervision_order o ON o.id = oi.order_id"
                                " JOIN issue i ON i.id = oi.issue_id ORDER BY 2")
    return out


def test_partitioning_keeps_every_answer(before: str) -> None:
    with psycopg.connect(before) as conn:
        was = _answers(conn)
        next_ids = conn.execute("SELECT nextval(pg_get_serial_sequence('issue', 'id')),"
                                " nextval(pg_get_serial_sequence('issue_event', 'id'))"
                                ).fetchone()
    assert next_ids is not None
    _apply(before, PARTITIONS)
    with psycopg.connect(before) as conn:
        assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'issue'"
                            ).fetchone() == ("p",)
        now = _answers(conn)
        for question, answer in was.items():
            assert now[question] == answer, question
        assert partitions.outside_months(conn) == (0, 0)
        # Ids go on after the old sequences' last values, never reusing one.
        row = conn.execute("INSERT INTO issue (category_code, geom, description, source)"
                           " VALUES ('CMP-03', ST_SetSRID(ST_MakePoint(120.703, 31.305),"
                           " 4326), 'after', 'citizen') RETURNING id").fetchone()
        assert row is not None and row[0] > next_ids[0]
        event = conn.execute("INSERT INTO issue_event (issue_id, actor, action) VALUES"
                             " (%s, 'a', 'report') RETURNING id", [row[0]]).fetchone()
        assert event is not None and event[0] > next_ids[1]
        # The journal triggers came along: the new issue is journalled once.
        assert conn.execute("SELECT count(*) FROM tally_journal WHERE sign = 1"
                            " AND reported_at > %s", [NOW - timedelta(days=1)]
                            ).fetchone() == (1,)


def test_keys_into_issue_survive_the_migration(before: str) -> None:
    _apply(before, PARTITIONS)
    with psycopg.connect(before) as conn:
        referencing = _rows(conn, "SELECT conrelid::regclass::text, confrelid::regclass::text"
                                  " FROM pg_constraint WHERE contype = 'f' AND confrelid IN"
                                  " ('issue'::regclass, 'issue_key'::regclass)"
                                  " ORDER BY 1")
        assert {t for t, _ in referencing} >= {
            "issue", "issue_event", "supervision_order_item", "inspection_finding",
            "deadline_notice", "revision_change", "idempotency_key"}
        assert {target for _, target in referencing} == {"issue_key"}
        assert conn.execute("SELECT count(*) FROM issue_key k FULL JOIN issue i"
                            " ON i.id = k.id AND i.public_id = k.public_id"
                            " AND i.reported_at = k.reported_at"
                            " WHERE i.id IS NULL OR k.id IS NULL").fetchone() == (0,)
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("INSERT INTO supervision_order_item (order_id, issue_id, position,"
                         " level, status) SELECT id, -5, 99, 1, 'assigned'"
                         " FROM supervision_order")
