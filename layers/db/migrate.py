"""Schema migrations with yoyo-migrations; the migration files ship inside the package."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from psycopg.conninfo import conninfo_to_dict
from yoyo import get_backend, read_migrations


def _yoyo_uri(conninfo: str) -> str:
    # yoyo wants a URI; passing every libpq parameter as a query argument keeps unix sockets,
    # passwords and sslmode intact, whatever form the caller's conninfo had.
    params = {k: str(v) for k, v in conninfo_to_dict(conninfo).items() if v is not None}
    return "postgresql+psycopg:///?" + urlencode(params)


@contextmanager
def _backend_and_migrations(conninfo: str) -> Iterator[tuple[Any, Any]]:
    backend = get_backend(_yoyo_uri(conninfo))
    try:
        with resources.as_file(resources.files("layers.db") / "migrations") as folder:
            yield backend, read_migrations(str(folder))
    finally:
        # yoyo never closes its connection; left open it leaks until garbage collection.
        backend.connection.close()


def apply(conninfo: str) -> list[str]:
    """Apply every pending migration; return the ids applied (empty when up to date)."""
    with _backend_and_migrations(conninfo) as (backend, migrations), backend.lock():
        todo = backend.to_apply(migrations)
        backend.apply_migrations(todo)
        return [m.id for m in todo]


def pending(conninfo: str) -> list[str]:
    """Ids of migrations not yet applied."""
    with _backend_and_migrations(conninfo) as (backend, migrations):
        return [m.id for m in backend.to_apply(migrations)]
