"""What the catalog tables addressed by ``code`` (units, categories, jurisdictions, sites)
share: one row by its code, a code from a request turned into a row id, the fields a write
accepts, a write whose key clash or broken data rule becomes a domain error with a message
of ours (the database's own text is never shown), and, for the tables with a place
(jurisdictions and sites), open issues following a row that is added, moved or removed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors, sql
from psycopg.rows import class_row

from layers import assignment, history, revisions
from layers.errors import Conflict, NotFound, ValidationFailed

#: A bounding box in EPSG:4326: min lon, min lat, max lon, max lat.
BBox = tuple[float, float, float, float]
R = TypeVar("R")


def by_code(conn: psycopg.Connection[Any], select: sql.Composable, alias: str, code: str,
            noun: str, record: type[R]) -> R:
    """The row of ``select`` whose ``alias.code`` is ``code``, as a ``record`` (its fields
    the columns of ``select``); NotFound naming ``noun``."""
    query = select + sql.SQL(" WHERE {} = %s").format(sql.Identifier(alias, "code"))
    with conn.cursor(row_factory=class_row(record)) as cur:
        row = cur.execute(query, [code]).fetchone()
    if row is None:
        raise NotFound(f"no {noun} with code {code!r}")
    return row


def id_of(conn: psycopg.Connection[Any], table: str, code: str, missing: str) -> int:
    """The id of ``table``'s row with ``code``, which a request names; ValidationFailed
    saying ``missing`` when there is none."""
    query = sql.SQL("SELECT id FROM {} WHERE code = %s").format(sql.Identifier(table))
    row = conn.execute(query, [code]).fetchone()
    if row is None:
        raise ValidationFailed(missing)
    return int(row[0])


def check_fields(values: Iterable[str], allowed: Iterable[str], noun: str) -> None:
    """Refuse (a programming error, not a user's) fields a table does not have."""
    unknown = set(values) - set(allowed)
    if unknown:
        raise ValueError(f"not {noun} fields: {sorted(unknown)}")


def write(conn: psycopg.Connection[Any], query: sql.Composed, params: Mapping[str, Any], *,
          taken: str, broken: str | None = None) -> None:
    """Run ``query`` in a savepoint: a unique-key clash is Conflict(``taken``); a CHECK
    constraint violation, which backs up the API's own validation, ValidationFailed(``broken``)
    when the table has such rules."""
    try:
        with conn.transaction():
            conn.execute(query, params)
    except errors.UniqueViolation:
        raise Conflict(taken) from None
    except errors.CheckViolation:
        if broken is None:
            raise
        raise ValidationFailed(broken) from None


def where(select: sql.Composable, clauses: list[sql.Composable]) -> sql.Composed:
    """``select`` narrowed by every one of ``clauses`` (none: all rows)."""
    query = sql.Composed([select])
    if clauses:
        query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses)
    return query


def in_bbox(alias: str) -> sql.Composable:
    """The clause "``alias.geom`` intersects the box", its four parameters a :data:`BBox`."""
    return sql.SQL("ST_Intersects({}, ST_MakeEnvelope(%s, %s, %s, %s, 4326))").format(
        sql.Identifier(alias, "geom"))


@contextmanager
def reassigning(conn: psycopg.Connection[Any], table: str, code: str, *, actor: str,
                new_code: str | None = None, when: bool = True, only_shape: bool = False
                ) -> Iterator[None]:
    """Around a write to the jurisdiction or site ``code`` (``new_code`` after it): open
    issues its footprint held before or holds after are assigned again, audited as ``actor``,
    in the caller's transaction. A row not there before (a create) or after (a delete) has
    no footprint on that side. ``when`` false: the change cannot move an issue (a rename).
    The change is stored as one revision of kind 'edit' naming the row, with the issues that
    move."""
    before = assignment.footprint(conn, table, code)
    yield
    now_code = code if new_code is None else new_code
    origin = revisions.Origin("edit", f"{table} {now_code}")
    if when:
        after = assignment.footprint(conn, table, now_code)
        assignment.reassign_changed(conn, before, after, actor=actor, only_shape=only_shape,
                                    origin=origin)
    # Changed lines that moved no issue are a revision too (history: revert, refusals).
    history.record_line_change(conn, origin, actor=actor)
