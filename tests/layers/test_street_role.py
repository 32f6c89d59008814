"""The street role on a server where the application's user may not create roles
(docs/deploy.md): the DBA creates and grants ``sitewatch_street`` (and PostGIS), the
migrations then run as the unprivileged owner, and its street-scoped sessions work."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from layers.auth import scope
from layers.db import migrate
from layers.db.cluster import Cluster
from tests import two_streets

# Roles are the cluster's, shared by the test processes: one of this process's own.
APP_USER = f"sw_unprivileged_app_{os.getpid()}"


@pytest.fixture
def app_database(cluster: Cluster) -> Iterator[str]:
    name = f"t_street_role_{os.getpid()}"
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as dba:
        dba.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
        if dba.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_USER]).fetchone():
            dba.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(APP_USER)))
        dba.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEROLE").format(
            sql.Identifier(APP_USER)))
        dba.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(name), sql.Identifier(APP_USER)))
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as dba:
        dba.execute("CREATE EXTENSION postgis")  # not a trusted extension: the DBA's
    yield cluster.conninfo(name).replace("user=sitewatch", f"user={APP_USER}")
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as dba:
        dba.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        dba.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(APP_USER)))


def test_without_the_grant_the_migration_says_so(app_database: str) -> None:
    # The role exists (the test cluster's template made it), but is not the user's to grant.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        migrate.apply(app_database)


def test_with_the_dbas_grant_an_unprivileged_owner_migrates_and_scopes(
        app_database: str, cluster: Cluster) -> None:
    assert f"user={APP_USER}" in app_database
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as dba:
        dba.execute(sql.SQL("GRANT sitewatch_street TO {}").format(sql.Identifier(APP_USER)))
    migrate.apply(app_database)
    with psycopg.connect(app_database) as conn:
        district = two_streets.build(conn)
        conn.commit()
        bravo = conn.execute("SELECT id FROM jurisdiction WHERE code = %s",
                             [district.b.code]).fetchone()
        assert bravo is not None
        scope.enter(conn, int(bravo[0]))
        seen = {r[0] for r in conn.execute("SELECT public_id FROM issue").fetchall()}
        assert seen == set(district.b.issues)
        scope.reset(conn)
        assert len(conn.execute("SELECT public_id FROM issue").fetchall()) == 5


# Tables the street role may not touch at all: the token table is read before a request's
# scope is set (layers.auth.scope).
DENIED = {"api_token"}


def test_every_table_has_its_street_privileges_decided(conn: psycopg.Connection[Any]) -> None:
    """Each table the street role reaches is granted by name, never a partition (a policy
    holds on the table a query names: a partition named directly would show every street)."""
    conn.execute("SELECT issue_month_partitions(%s::timestamptz, %s::timestamptz)",
                 ["2031-01-01T00:00:00+08:00", "2031-03-01T00:00:00+08:00"])  # new months
    rows = conn.execute("""
        SELECT c.relname, c.relispartition,
               has_table_privilege('sitewatch_street', c.oid, 'SELECT')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
          AND c.relname NOT IN ('spatial_ref_sys') AND c.relname NOT LIKE '\\_yoyo%'
          AND c.relname NOT LIKE 'yoyo%'""").fetchall()
    partitions = {name for name, part, _ in rows if part}
    assert {"issue_y2031m01", "issue_y2031m02"} <= partitions
    granted_partitions = sorted(name for name, part, granted in rows if part and granted)
    assert granted_partitions == []
    undecided = sorted(name for name, part, granted in rows
                       if not part and not granted and name not in DENIED)
    assert undecided == [], "grant the street role these tables (or list them as DENIED)"
