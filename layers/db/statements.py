"""INSERT and UPDATE statements from column -> SQL expression maps, identifiers quoted."""

from __future__ import annotations

from collections.abc import Mapping

from psycopg import sql


def insert(table: str, exprs: Mapping[str, sql.Composable]) -> sql.Composed:
    """``INSERT INTO table (columns) VALUES (expressions)``."""
    return sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, exprs)),
        sql.SQL(", ").join(exprs.values()))


def update_by_code(table: str, exprs: Mapping[str, sql.Composable]) -> sql.Composed:
    """``UPDATE table SET column = expression, ... WHERE code = %(_code)s``."""
    return sql.SQL("UPDATE {} SET {} WHERE code = {}").format(
        sql.Identifier(table),
        sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(k), v)
                           for k, v in exprs.items()),
        sql.Placeholder("_code"))


def placeholders(columns: Mapping[str, object]) -> dict[str, sql.Composable]:
    """Each column bound to the parameter of the same name."""
    return {k: sql.Placeholder(k) for k in columns}
