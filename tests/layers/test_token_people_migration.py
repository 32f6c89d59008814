"""Migration 0019 names every token made before it: a token keeps its name, a nameless one is
called "token N" (what the audit trail showed for it until then)."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources

import psycopg
import pytest
from psycopg import sql
from yoyo import get_backend, read_migrations

from layers.db import migrate
from layers.db.cluster import Cluster

PEOPLE = "0019_token_people"


@pytest.fixture
def before_people(cluster: Cluster) -> Iterator[str]:
    """A database migrated up to, not including, 0019."""
    name = "migrate_token_people"
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = cluster.conninfo(name)
    backend = get_backend(migrate._yoyo_uri(dsn))  # the URI apply() uses
    try:
        with resources.as_file(resources.files("layers.db") / "migrations") as folder:
            migrations = read_migrations(str(folder))
            with backend.lock():
                backend.apply_migrations(backend.to_apply(migrations).filter(
                    lambda m: m.id != PEOPLE))
    finally:
        backend.connection.close()
    assert migrate.pending(dsn) == [PEOPLE]
    yield dsn
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_existing_tokens_keep_their_name_or_are_called_by_their_number(
        before_people: str) -> None:
    ids = []
    with psycopg.connect(before_people) as conn:
        for name in ("领导甲", "", "  "):
            row = conn.execute("INSERT INTO api_token (name, token_hash, role) VALUES"
                               " (%s, sha256(%s::bytea), 'viewer') RETURNING id",
                               [name, f"token of {name!r}".encode()]).fetchone()
            assert row is not None
            ids.append(int(row[0]))
    assert migrate.apply(before_people) == [PEOPLE]
    with psycopg.connect(before_people) as conn:
        names = conn.execute("SELECT name, post, mobile FROM api_token ORDER BY id").fetchall()
    assert names == [("领导甲", None, None), (f"token {ids[1]}", None, None),
                     (f"token {ids[2]}", None, None)]
