"""The worker's full job list: the layers' registry (layers.worker.jobs.JOBS) and what needs
this package: the map analysis refresh (the map pages' landing views, map_pages) and the
deliveries' supervision-order papers for email (order_papers)."""

from __future__ import annotations

import dataclasses
import functools
from datetime import datetime
from typing import Any

import psycopg

from api.services import map_pages, order_papers
from layers.analysis import snapshots
from layers.db import database, replicas
from layers.db.settings import Settings
from layers.notify import deliveries
from layers.worker.jobs import JOBS, Every, Job


def refresh_maps(conn: psycopg.Connection[Any], settings: Settings, now: datetime) -> str:
    """Refresh the snapshots behind the map pages' landing views that are missing or stale,
    so the web processes only read them (layers.analysis.snapshots.Refresher); the data is
    read on a read replica when one is usable, the results stored on the primary."""
    primary = database.conninfo(settings)
    refresher = snapshots.Refresher(
        snapshots.connector(primary),
        functools.partial(map_pages.landing_specs, zone=settings.zone),
        settings.snapshot_interval, settings.snapshot_max_age,
        # The analyses read a usable replica when there is one (the primary stores them).
        source=replicas.read_connector(primary, database.replica_conninfos(settings),
                                       settings.replica_max_lag))
    return f"{refresher.run_once()} snapshot(s) refreshed"


def all_jobs(settings: Settings) -> list[Job]:
    """Every job a worker runs under ``settings`` (the map refresh every
    ``snapshot_interval`` seconds; off at 0), the deliveries' emails with their papers."""
    refresh = Job("refresh-maps", Every(settings.snapshot_interval or 1.0), refresh_maps,
                  enabled=lambda s: s.snapshot_interval > 0)
    deliver = functools.partial(deliveries.deliver_job, papers=order_papers.email_papers)
    return [dataclasses.replace(job, run=deliver) if job.run is deliveries.deliver_job
            else job for job in JOBS] + [refresh]
