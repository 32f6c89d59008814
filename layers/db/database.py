"""Where the database is: DATABASE_URL, or the project's managed cluster."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from layers.db.cluster import Cluster
from layers.db.settings import Settings


def managed_cluster(settings: Settings) -> Cluster:
    """The local cluster sitewatch manages for these settings."""
    return Cluster(settings.data_dir, port=settings.pg_port, database=settings.pg_database,
                   bindir=settings.pg_bindir)


def conninfo(settings: Settings) -> str:
    """The libpq connection string the app's pool, the CLI, migrations, backups and the
    snapshot refreshers use: its sessions keep the district's clock (``Settings.timezone``)."""
    base = settings.database_url or managed_cluster(settings).conninfo()
    return with_timezone(base, settings.timezone)


def with_timezone(conninfo: str, timezone: str) -> str:
    """``conninfo`` whose sessions start with TimeZone ``timezone``, whatever the server's
    default: the SQL that reads local dates and times (``issue_deadline``, ``to_char`` of a
    timestamptz, ``::date``) then computes in the district's zone. Options already in
    ``conninfo`` are kept; a TimeZone among them is overridden."""
    options = conninfo_to_dict(conninfo).get("options") or ""
    return make_conninfo(conninfo, options=f"{options} -c TimeZone={timezone}".strip())


def connect(settings: Settings) -> psycopg.Connection[tuple[object, ...]]:
    """A new connection (the caller closes it; the web app uses its pool instead)."""
    return psycopg.connect(conninfo(settings))
