"""Bulk writes: rebuild indexes and foreign keys once instead of maintaining them per row."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql


@contextmanager
def bulk_write_mode(conn: psycopg.Connection[Any], tables: list[str]) -> Iterator[None]:
    """Drop the tables' secondary indexes and foreign keys; rebuild them afterwards.

    Maintaining nine indexes and six foreign-key triggers row by row dominated loading a
    million issues; rebuilding each index once and validating each foreign key with one join
    is the standard bulk-load practice. It all happens inside the caller's transaction, so
    nobody ever sees the tables without them. Constraint indexes (primary key, unique) stay:
    the load and the foreign keys rely on them.
    """
    indexes = conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " WHERE i.indrelid = ANY (%s::regclass[])"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        [tables],
    ).fetchall()
    foreign_keys = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE contype = 'f' AND conrelid = ANY (%s::regclass[])",
        [tables],
    ).fetchall()
    for table, name, _ in foreign_keys:
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            sql.Identifier(table), sql.Identifier(name)))
    for name, _ in indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    yield
    for _, definition in indexes:
        # A partitioned table's index reads "ON ONLY issue": run so, it would build the
        # parent's index alone (invalid) and leave every partition without one.
        conn.execute(definition.replace(" ON ONLY ", " ON ", 1))
    for table, name, definition in foreign_keys:
        conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            sql.Identifier(table), sql.Identifier(name), sql.SQL(definition)))
