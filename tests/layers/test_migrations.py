"""Migrations build the schema from empty, seed the catalog, and the schema keeps bad data out."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from layers.db import migrate
from layers.db.cluster import Cluster

POINT = "ST_SetSRID(ST_MakePoint(120.70, 31.30), 4326)"


@pytest.fixture
def empty_dsn(cluster: Cluster) -> str:
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS migrate_from_empty")
        conn.execute(sql.SQL("CREATE DATABASE migrate_from_empty"))
    return cluster.conninfo("migrate_from_empty")


def test_up_from_empty_then_nothing_pending(empty_dsn: str) -> None:
    applied = migrate.apply(empty_dsn)
    files = sorted(p.stem for p in (Path(migrate.__file__).parent / "migrations").glob("0*"))
    assert applied[:7] == ["0001_schema", "0002_seed_catalog", "0003_layers_version",
                           "0004_idempotency", "0005_evidence", "0006_working_days",
                           "0007_traffic_light"]
    assert applied == files  # every migration, in order
    assert migrate.pending(empty_dsn) == []
    assert migrate.apply(empty_dsn) == []
    with psycopg.connect(empty_dsn) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        gist = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_indexes WHERE indexdef LIKE '%USING gist%'")}
    assert {"unit", "jurisdiction", "site", "site_layer", "category", "responsibility_rule",
            "issue", "issue_event", "api_token", "idempotency_key", "evidence"} <= tables
    assert {"jurisdiction", "site", "issue"} <= gist


def test_catalog_seeded_from_package_data(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    rows = conn.execute(
        "SELECT c.code, c.name_zh, c.site_layer, u.name, c.deadline_hours, c.points"
        " FROM category c LEFT JOIN unit u ON u.id = c.functional_unit_id ORDER BY code"
    ).fetchall()
    assert len(rows) == 21
    by_code = {r[0]: r for r in rows}
    assert by_code["CON-03"][1:5] == ("扬尘控制不到位", "construction_site", "建设", 24)
    assert by_code["CMP-01"][3] is None  # the community handles it
    assert str(by_code["MKT-03"][5]) == "0.30"


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        ("INSERT INTO jurisdiction (code, name, level, geom) VALUES ('X', 'x', 'street',"
         " ST_Multi(ST_GeomFromText('POLYGON((0 0, 1 1, 1 0, 0 1, 0 0))', 4326)))",
         "self-intersecting polygon"),
        ("INSERT INTO jurisdiction (code, name, level, geom) VALUES ('X', 'x', 'street',"
         " ST_Multi(ST_GeomFromText('POLYGON((0 0, 1 0, 1 1, 0 0))', 4490)))",
         "wrong SRID"),
        ("INSERT INTO jurisdiction (code, name, level, geom) VALUES ('X', 'x', 'grid',"
         " ST_Multi(ST_GeomFromText('POLYGON((0 0, 1 0, 1 1, 0 0))', 4326)))",
         "grid without parent"),
        (f"INSERT INTO issue (category_code, geom, description, source, status)"
         f" VALUES ('CTY-01', {POINT}, 'x', 'citizen', 'lost')", "unknown status"),
        (f"INSERT INTO issue (category_code, geom, description, source)"
         f" VALUES ('NOPE-01', {POINT}, 'x', 'citizen')", "unknown category"),
        (f"INSERT INTO issue (category_code, geom, description, source)"
         f" VALUES ('CTY-01', {POINT}, '   ', 'citizen')", "blank description"),
        (f"INSERT INTO issue (category_code, geom, description, source, status)"
         f" VALUES ('CTY-01', {POINT}, 'x', 'citizen', 'verified')", "closed without time"),
        ("INSERT INTO site (layer, name, geom) VALUES ('market', 'm',"
         " ST_GeomFromText('LINESTRING(0 0, 1 1)', 4326))", "line as a site"),
    ],
)
def test_constraints_keep_bad_data_out(
    conn: psycopg.Connection[tuple[object, ...]], statement: str, why: str
) -> None:
    # Constraint violations are IntegrityError; a typmod SRID mismatch is a DataError.
    with pytest.raises((psycopg.errors.IntegrityError, psycopg.errors.DataError)):
        conn.execute(statement)


def test_audit_trail_is_append_only(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    issue = conn.execute(
        f"INSERT INTO issue (category_code, geom, description, source)"
        f" VALUES ('CTY-05', {POINT}, '暴露垃圾', 'citizen') RETURNING id, public_id"
    ).fetchone()
    assert issue is not None and str(issue[1]).startswith("SW")
    conn.execute("INSERT INTO issue_event (issue_id, actor, action, to_status)"
                 " VALUES (%s, 'tester', 'report', 'reported')", [issue[0]])
    for statement in ("UPDATE issue_event SET note = 'rewritten'", "DELETE FROM issue_event",
                      "TRUNCATE issue_event"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute(statement)
    assert conn.execute("SELECT count(*) FROM issue_event").fetchone() == (1,)


def test_public_ids_stay_unique_past_ten_million(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT setval('issue_public_seq', 9999998)")
        for _ in range(3):
            conn.execute("INSERT INTO issue (category_code, geom, description, source)"
                         " VALUES ('CTY-04', ST_SetSRID(ST_MakePoint(120.705, 31.305), 4326),"
                         " '第一千万件', 'supervision')")
        ids = [r[0] for r in conn.execute("SELECT public_id FROM issue WHERE description ="
                                          " '第一千万件' ORDER BY id").fetchall()]
    assert ids == ["SW9999999", "SW10000000", "SW10000001"]
