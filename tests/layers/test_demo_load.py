"""Loading the demo district: complete, assigned, audited, deterministic, empty-only."""

from __future__ import annotations

from datetime import datetime

import psycopg
from typer.testing import CliRunner

from api.cli.main import app
from layers.db.settings import Settings
from layers.io import demo

CHECKSUM = """
    SELECT md5(string_agg(concat_ws('|', i.public_id, i.category_code, ST_AsText(i.geom),
                                    i.status, i.reported_at, i.deadline, j.code, s.code,
                                    u.code, i.rework_count), ',' ORDER BY i.public_id))
    FROM issue i LEFT JOIN jurisdiction j ON j.id = i.jurisdiction_id
    LEFT JOIN site s ON s.id = i.site_id LEFT JOIN unit u ON u.id = i.lead_unit_id
"""


def test_every_issue_lies_in_the_street_and_is_assigned(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        row = conn.execute("""
            SELECT count(*),
                   count(*) FILTER (WHERE NOT ST_Covers(st.geom, i.geom)),
                   count(*) FILTER (WHERE i.jurisdiction_id IS NULL OR i.outside_all),
                   count(*) FILTER (WHERE j.level <> 'grid'),
                   count(*) FILTER (WHERE i.lead_unit_id IS NULL OR i.deadline IS NULL),
                   count(*) FILTER (WHERE i.site_id IS NOT NULL)
            FROM issue i CROSS JOIN jurisdiction st
            LEFT JOIN jurisdiction j ON j.id = i.jurisdiction_id
            WHERE st.level = 'street'""").fetchone()
    assert row is not None
    total, outside, unassigned, not_grid, no_unit, on_site = row
    assert total == 3000
    assert (outside, unassigned, not_grid, no_unit) == (0, 0, 0, 0)
    assert on_site > 500  # markets, sites and compounds draw many of the problems


def test_audit_trail_replays_to_every_issue_status(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        mismatches = conn.execute("""
            SELECT i.public_id, i.status, last.to_status
            FROM issue i
            LEFT JOIN LATERAL (SELECT to_status FROM issue_event e WHERE e.issue_id = i.id
                               ORDER BY e.at DESC, e.id DESC LIMIT 1) last ON true
            WHERE last.to_status IS DISTINCT FROM i.status""").fetchall()
        reworks = conn.execute("""
            SELECT count(*) FROM issue i
            WHERE i.rework_count <> (SELECT count(*) FROM issue_event e
                                     WHERE e.issue_id = i.id AND e.action = 'reopen')
            """).fetchone()
        first_is_report = conn.execute("""
            SELECT count(*) FROM issue i
            WHERE (SELECT action FROM issue_event e WHERE e.issue_id = i.id
                   ORDER BY e.at, e.id LIMIT 1) IS DISTINCT FROM 'report'""").fetchone()
    assert mismatches == []
    assert reworks == (0,)
    assert first_is_report == (0,)


def test_same_seed_loads_identical_data(demo_dsn: str, dsn: str, demo_now: datetime) -> None:
    with psycopg.connect(dsn) as conn:
        demo.load(conn, zone=Settings().zone, now=demo_now)
    with psycopg.connect(dsn) as fresh, psycopg.connect(demo_dsn) as template:
        assert fresh.execute(CHECKSUM).fetchone() == template.execute(CHECKSUM).fetchone()


def test_load_restores_every_index_and_constraint(demo_dsn: str, dsn: str) -> None:
    indexes = ("SELECT indexname, indexdef FROM pg_indexes"
               " WHERE tablename IN ('issue', 'issue_event') ORDER BY 1")
    constraints = ("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid),"
                   " convalidated FROM pg_constraint"
                   " WHERE conrelid IN ('issue'::regclass, 'issue_event'::regclass) ORDER BY 1, 2")
    with psycopg.connect(dsn) as empty, psycopg.connect(demo_dsn) as loaded:
        assert loaded.execute(indexes).fetchall() == empty.execute(indexes).fetchall()
        restored = loaded.execute(constraints).fetchall()
        assert restored == empty.execute(constraints).fetchall()
        assert sum(1 for r in restored if "FOREIGN KEY" in r[2]) >= 7


def test_demo_loads_only_into_an_empty_database(demo_dsn: str) -> None:
    runner = CliRunner()
    refused = runner.invoke(app, ["demo"], env={"DATABASE_URL": demo_dsn})
    skipped = runner.invoke(app, ["demo", "--if-empty"], env={"DATABASE_URL": demo_dsn})
    assert refused.exit_code == 1
    assert "already has data" in refused.output
    assert skipped.exit_code == 0
    with psycopg.connect(demo_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM issue").fetchone() == (3000,)
