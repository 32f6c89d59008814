"""Where the database is: DATABASE_URL, or the project's managed cluster."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from layers.db import standby
from layers.db.cluster import Cluster
from layers.db.settings import Settings
from layers.db.standby import Standby


def managed_cluster(settings: Settings) -> Cluster:
    """The local cluster sitewatch manages for these settings."""
    return Cluster(settings.data_dir, port=settings.pg_port, database=settings.pg_database,
                   bindir=settings.pg_bindir)


def conninfo(settings: Settings) -> str:
    """The libpq connection string the app's pool, the CLI, migrations, backups and the
    snapshot refreshers use: its sessions keep the district's clock (``Settings.timezone``)."""
    base = settings.database_url or managed_cluster(settings).conninfo()
    return with_timezone(base, settings.timezone)


def managed_standby(settings: Settings) -> Standby:
    """The managed cluster's hot standby (`sitewatch db replica start`), under
    ``SITEWATCH_DATA_DIR/replica``."""
    return standby.of(managed_cluster(settings), settings.data_dir / "replica")


def replica_conninfos(settings: Settings) -> list[str]:
    """The read replicas' connection strings (sessions in the district's clock):
    ``SITEWATCH_REPLICA_URL``; when unset, the managed standby once `sitewatch db replica
    start` has made it (whether it runs now is for the replica checks to find out)."""
    urls = settings.replica_urls
    if not urls and settings.managed:
        node = managed_standby(settings)
        if (node.pgdata / "standby.signal").exists():
            urls = [node.conninfo()]
    return [with_timezone(url, settings.timezone) for url in urls]


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
