"""One way for every ``sitewatch`` command to reach the database and to fail.

:func:`session` yields a connection to the configured database; :func:`reported_errors`
(which ``session`` includes) turns the failures a user can act on into a line on stderr and
exit code 1, never a traceback: a domain error prints its message (and, for an import or a
plan, one line per bad row or field), an unreachable database says how to start it.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import typer
from rich.console import Console
from rich.markup import escape

from layers.db import database
from layers.db.cluster import ClusterError
from layers.db.settings import Settings
from layers.errors import DomainError

# soft_wrap: an error is one line however narrow the terminal (or 80 columns when there is
# none), so scripts and logs can read it whole.
err = Console(stderr=True, highlight=False, soft_wrap=True)


def actor() -> str:
    """Who the audit trail names for a change made from this command line."""
    return f"cli:{getpass.getuser()}"


def _detail_line(detail: dict[str, Any]) -> str:
    """One entry of ``DomainError.details``: ``row N, field: message`` for an import (``file``
    where no row is to blame), ``field: message`` otherwise."""
    where = []
    if "row" in detail:
        where.append("file" if detail["row"] is None else f"row {detail['row']}")
    name = detail.get("field") or (detail.get("location") or [None])[-1]
    if name:
        where.append(str(name))
    return f"{', '.join(where)}: {detail.get('message')}"


@contextmanager
def reported_errors() -> Iterator[None]:
    """Known failures print clear lines and exit 1, never a traceback."""
    try:
        yield
    except DomainError as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)}")
        for detail in exc.details if isinstance(exc.details, list) else []:
            err.print(f"  {escape(_detail_line(detail))}")
        raise typer.Exit(1) from None
    except ClusterError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    except psycopg.OperationalError as exc:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        err.print(f"[red]error:[/red] cannot reach the database ({escape(first)}); "
                  "is it running? try `sitewatch db start`")
        raise typer.Exit(1) from None


@contextmanager
def session(settings: Settings | None = None) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the configured database (``settings``, else the environment's) for the
    block, inside :func:`reported_errors`; committed when the block ends, rolled back when it
    raises."""
    with reported_errors(), database.connect(settings or Settings()) as conn:
        yield conn
