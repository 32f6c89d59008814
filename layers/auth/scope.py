"""Street scope: what a street-scoped token sees and acts on, enforced by the database.

A district holds several streets (街道). A token made with ``--street CODE`` sees and acts on
that street's ground and issues only, in every route, page, tile, export and analysis. The
rule is not repeated in each query: migration 0032 puts row-level security policies on the
street's tables, and a scoped connection runs under the role ``sitewatch_street`` with the
setting ``sitewatch.street`` naming the street, so whatever SQL a route runs, the database
hides other streets' rows and refuses writes outside the street. District callers (district
tokens, anonymous public pages, the worker, the CLI) run as the owner, whom no policy binds.

The scope is a session setting, not a transaction-local one, so neither a commit nor a
rollback inside a request can drop it; the pool resets every connection it takes back
(:func:`reset`), so a scope never leaks into the next request.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

ROLE = "sitewatch_street"
SETTING = "sitewatch.street"
# The connections scoped by :func:`enter`, so that the pool's reset (:func:`release`) costs
# nothing for the district's connections, nearly all of them.
_scoped: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()


def enter(conn: psycopg.Connection[Any], street_id: int | None) -> None:
    """Scope the session of ``conn`` to the street ``street_id`` (None: the district).

    The transaction the connection is in (a token lookup, say) is committed first: a role set
    inside a transaction that later rolls back would silently fall back to the owner.
    """
    if street_id is None:
        reset(conn)
        return
    conn.commit()
    _scoped.add(conn)
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(ROLE)))
    conn.execute("SELECT set_config(%s, %s, false)", [SETTING, str(int(street_id))])
    conn.commit()


def release(conn: psycopg.Connection[Any]) -> None:
    """The pool's reset callback: a connection a street-scoped request used goes back to the
    district before anyone else gets it."""
    if conn in _scoped:
        reset(conn)


def reset(conn: psycopg.Connection[Any]) -> None:
    """Back to the district scope (the owner, no setting). Also the pool's reset callback."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.rollback()
    conn.execute("RESET ROLE")
    conn.execute("SELECT set_config(%s, '', false)", [SETTING])
    conn.commit()
    _scoped.discard(conn)


def current(conn: psycopg.Connection[Any]) -> int | None:
    """The street the session is scoped to, None for the district."""
    row = conn.execute("SELECT sitewatch_scope_street()").fetchone()
    return None if row is None or row[0] is None else int(row[0])


@contextmanager
def district(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Run a block with the whole district in view, then restore the session's scope.

    For the few computations whose answer must not depend on who asks: the assignment
    engine's inputs (every polygon decides where a point belongs, whichever street reports
    it). Whatever the block reads it must not hand to the caller unfiltered.

    The switch happens inside the caller's transaction, which it neither commits nor rolls
    back (a preview reads its own uncommitted lines through here): if that transaction
    rolls back, the session returns to its state at the start, which is the street's
    (:func:`enter` commits).
    """
    street = current(conn)
    if street is None:
        yield
        return
    conn.execute("RESET ROLE")
    conn.execute("SELECT set_config(%s, '', false)", [SETTING])
    try:
        yield
    finally:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(ROLE)))
            conn.execute("SELECT set_config(%s, %s, false)", [SETTING, str(street)])
