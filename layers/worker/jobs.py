"""The worker's jobs: each a name, a schedule and a function ``(conn, settings, now) -> str``.

:data:`JOBS` is the registry of the jobs that need only the layers; adding a job is one line
there (``Job("name", Every(60), function)``). The worker command adds the jobs that need the
API's services (the map analysis refresh, api.services.worker_jobs) to these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import psycopg

from layers import retention
from layers.analysis import tallies
from layers.db import backup, database, partitions
from layers.db.settings import Settings
from layers.notify import deadlines, deliveries, digest
from layers.supervision import orders

# The audit trail's name for changes the worker makes (orders it signs, events it writes).
SYSTEM_ACTOR = "system:worker"

Run = Callable[[psycopg.Connection[Any], Settings, datetime], str]


@dataclass(frozen=True)
class Every:
    """Run every ``seconds``: slots start at multiples of it since the epoch (UTC)."""

    seconds: float

    def slot(self, now: datetime, settings: Settings) -> datetime | None:
        """The slot ``now`` falls in (the start of its interval)."""
        step = timedelta(seconds=self.seconds)
        epoch = datetime(1970, 1, 1, tzinfo=now.tzinfo)
        return epoch + ((now - epoch) // step) * step


@dataclass(frozen=True)
class Daily:
    """Run once a day at ``at``, local time in ``Settings.zone``; a worker that was down at
    that moment runs it when it comes back the same day."""

    at: time

    def slot(self, now: datetime, settings: Settings) -> datetime | None:
        """Today's run time once it has passed, else None (nothing due yet)."""
        local = now.astimezone(settings.zone)
        due = datetime.combine(local.date(), self.at, tzinfo=settings.zone)
        return due if local >= due else None


@dataclass(frozen=True)
class EveryConfigured:
    """Run every ``seconds(settings)`` seconds: an interval the operator sets."""

    seconds: Callable[[Settings], float]

    def slot(self, now: datetime, settings: Settings) -> datetime | None:
        """The slot ``now`` falls in, as :class:`Every` with the configured interval."""
        return Every(self.seconds(settings)).slot(now, settings)


@dataclass(frozen=True)
class DailyConfigured:
    """Run once a day at ``at(settings)``, local time: a time the operator sets."""

    at: Callable[[Settings], time]

    def slot(self, now: datetime, settings: Settings) -> datetime | None:
        """Today's run time once it has passed, as :class:`Daily` with the configured time."""
        return Daily(self.at(settings)).slot(now, settings)


Schedule = Every | EveryConfigured | Daily | DailyConfigured


@dataclass(frozen=True)
class Job:
    """A named job, when it runs, and what it does (returns a one-line summary)."""

    name: str
    schedule: Schedule
    run: Run
    # False: the job has nothing to do under these settings (e.g. no backup folder).
    enabled: Callable[[Settings], bool] = lambda _settings: True


def escalate_overdue(conn: psycopg.Connection[Any], settings: Settings, now: datetime
                     ) -> str:
    """What ``sitewatch orders escalate`` does, signed by the worker's system actor."""
    written = orders.escalate(conn, orders.Issuer(SYSTEM_ACTOR, "supervisor"))
    return f"{len(written)} order(s) escalated"


def backup_name(now: datetime, settings: Settings) -> str:
    """The backup file for the local day of ``now``: ``sitewatch-YYYYMMDD-HHMMSS.tar``."""
    return now.astimezone(settings.zone).strftime("sitewatch-%Y%m%d-%H%M%S.tar")


def prune_backups(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups in ``folder`` (by name, which sorts by
    time); the deleted paths."""
    found = sorted(folder.glob("sitewatch-*.tar"))
    gone = found[:-keep] if keep > 0 else found
    for path in gone:
        path.unlink()
    return gone


def nightly_backup(conn: psycopg.Connection[Any], settings: Settings, now: datetime) -> str:
    """``sitewatch db backup`` into ``Settings.backup_dir``, keeping the last ``backup_keep``."""
    folder = settings.backup_dir
    if folder is None:
        return "no backup folder set"
    out = folder / backup_name(now, settings)
    done = backup.backup(database.conninfo(settings), settings.data_dir, out,
                         pg_bindir=settings.pg_bindir)
    gone = prune_backups(folder, settings.backup_keep)
    return f"{out.name}: {done.database_bytes} bytes, {done.photos} photo(s); {len(gone)} pruned"


# How long the record of past job runs and of stopped workers is kept.
HISTORY = timedelta(days=7)


def forget_history(conn: psycopg.Connection[Any], settings: Settings, now: datetime) -> str:
    """Delete job runs and stopped workers older than :data:`HISTORY` (a job every few
    seconds writes thousands of runs a day)."""
    runs = conn.execute("DELETE FROM job_run WHERE started_at < %s", [now - HISTORY]).rowcount
    gone = conn.execute("DELETE FROM worker WHERE coalesce(stopped_at, heartbeat) < %s",
                        [now - HISTORY]).rowcount
    return f"{runs} run(s) and {gone} worker(s) forgotten"


def keep_partitions(conn: psycopg.Connection[Any], settings: Settings, now: datetime) -> str:
    """Create this month's and the next months' partitions of the issue tables (0030)."""
    made = partitions.keep_ahead(conn, now)
    waiting, events = partitions.outside_months(conn)
    return (f"{made} month(s) created; {waiting} issue(s) and {events} event(s) outside"
            " the months (end partitions)")


def retention_run(conn: psycopg.Connection[Any], settings: Settings, now: datetime) -> str:
    """``sitewatch retention run``, signed by the worker. On a connection of its own: each
    batch commits alone (the job's transaction only holds the claim of the slot)."""
    with database.connect(settings) as own:
        own.autocommit = True
        done = retention.run(own, data_dir=settings.data_dir, years=settings.retention_years,
                             now=now, actor=SYSTEM_ACTOR)
    c = done.counts
    return (f"run {done.run_id}: {c.issues} issue(s) closed before {done.cutoff:%Y-%m-%d},"
            f" {c.with_personal_data} reporter(s) erased, {c.photos} photo(s) archived")


JOBS: list[Job] = [
    Job("escalate", Every(300), escalate_overdue),
    Job("deliver", EveryConfigured(lambda settings: settings.deliver_every),
        deliveries.deliver_job),
    Job("backup", Daily(time(2, 30)), nightly_backup,
        enabled=lambda settings: settings.backup_dir is not None),
    Job("forget-history", Daily(time(3, 30)), forget_history),
    # Daily: months are created AHEAD_MONTHS ahead, so a missed day costs nothing.
    Job("partitions", Daily(time(0, 15)), keep_partitions),
    Job("retention", Daily(time(4, 0)), retention_run),
    Job("deadline-lights", Every(60), deadlines.lights_job),
    Job("digest", DailyConfigured(lambda settings: settings.digest_at), digest.send),
    # Pages show the tallies' lag; every 2 s keeps it at a few seconds under any load.
    Job("tally", Every(2), tallies.tally_job),
]
