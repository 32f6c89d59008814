"""Where the database is: DATABASE_URL, or the project's managed cluster."""

from __future__ import annotations

import psycopg

from layers.db.cluster import Cluster
from layers.db.settings import Settings


def managed_cluster(settings: Settings) -> Cluster:
    """The local cluster sitewatch manages for these settings."""
    return Cluster(settings.data_dir, port=settings.pg_port, database=settings.pg_database,
                   bindir=settings.pg_bindir)


def conninfo(settings: Settings) -> str:
    """The libpq connection string the app, CLI and migrations use."""
    if settings.database_url:
        return settings.database_url
    return managed_cluster(settings).conninfo()


def connect(settings: Settings) -> psycopg.Connection[tuple[object, ...]]:
    """A new connection (the caller closes it; the web app uses its pool instead)."""
    return psycopg.connect(conninfo(settings))
