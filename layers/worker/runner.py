"""The worker's loop: heartbeat, then each due job slot claimed in the database and run.

Several workers may run at once (on one machine or several): a slot is claimed by inserting
``(job, slot)`` into ``job_run`` (migration 0017) with ``ON CONFLICT DO NOTHING``, so exactly
one worker runs it, once. A job that fails is recorded with its error and waits for its next
slot; the loop goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import psycopg

from layers.db.settings import Settings
from layers.errors import DomainError
from layers.worker.jobs import Job

log = logging.getLogger("sitewatch.worker")
Connect = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]


def worker_name() -> str:
    """A name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def beat(conn: psycopg.Connection[Any], name: str) -> None:
    """Write (or first create) this worker's row with a fresh heartbeat."""
    conn.execute("INSERT INTO worker (name, host, pid) VALUES (%s, %s, %s) "
                 "ON CONFLICT (name) DO UPDATE SET heartbeat = now(), stopped_at = NULL",
                 [name, socket.gethostname(), os.getpid()])


def stopped(conn: psycopg.Connection[Any], name: str) -> None:
    """Mark this worker as stopped cleanly."""
    conn.execute("UPDATE worker SET stopped_at = now() WHERE name = %s", [name])


def claim(conn: psycopg.Connection[Any], job: str, slot: datetime, worker: str) -> bool:
    """Claim ``job``'s ``slot`` for ``worker``; False when another worker already has it.
    Commits, so the claim holds while the job runs."""
    with conn.transaction():
        row = conn.execute("INSERT INTO job_run (job, slot, worker) VALUES (%s, %s, %s) "
                           "ON CONFLICT DO NOTHING RETURNING job", [job, slot, worker]
                           ).fetchone()
    return row is not None


def _finish(conn: psycopg.Connection[Any], job: str, slot: datetime, ok: bool,
            result: str) -> None:
    with conn.transaction():
        conn.execute("UPDATE job_run SET finished_at = now(), ok = %s, result = %s "
                     "WHERE job = %s AND slot = %s", [ok, result[:2000], job, slot])


def run_due(conn: psycopg.Connection[Any], jobs: Sequence[Job], settings: Settings,
            worker: str, now: datetime | None = None) -> list[tuple[str, datetime, str]]:
    """Run every enabled job whose current slot this worker claims; (job, slot, result) of
    each run (a failure's result starts with ``failed:``)."""
    now = now or datetime.now(UTC)
    ran = []
    for job in jobs:
        if not job.enabled(settings):
            continue
        slot = job.schedule.slot(now, settings)
        if slot is None or not claim(conn, job.name, slot, worker):
            continue
        try:
            with conn.transaction():
                result, ok = job.run(conn, settings, now), True
        except psycopg.OperationalError:
            raise  # the database is gone: the loop reconnects at its next tick
        except Exception as exc:
            # Any failure of one job (a bug in it too) is recorded and must not stop the
            # others or the worker: the job runs again at its next slot.
            text = exc.message if isinstance(exc, DomainError) else \
                f"{type(exc).__name__}: {str(exc).strip()}"
            result, ok = f"failed: {text}", False
            log.warning("job %s (%s) failed: %s", job.name, slot.isoformat(), text,
                        exc_info=not isinstance(exc, DomainError | psycopg.Error))
        _finish(conn, job.name, slot, ok, result)
        ran.append((job.name, slot, result))
    return ran


def run_forever(connect: Connect, jobs: Sequence[Job], settings: Settings,
                stop: threading.Event, name: str | None = None) -> None:
    """Beat and run due jobs every ``settings.worker_tick`` seconds until ``stop`` is set.

    A lost database connection is logged and retried at the next tick.
    """
    name = name or worker_name()
    log.info("worker %s started: %s", name, ", ".join(j.name for j in jobs))
    while not stop.is_set():
        try:
            with connect() as conn:
                conn.autocommit = True
                beat(conn, name)
                # Debug only: a job every few seconds would fill the console of `make run`;
                # every run and its result is in job_run, failures are logged as warnings.
                for job, slot, result in run_due(conn, jobs, settings, name):
                    log.debug("%s %s: %s", job, slot.isoformat(), result)
        except psycopg.OperationalError as exc:
            log.warning("worker cannot reach the database: %s", str(exc).strip())
        stop.wait(settings.worker_tick)
    # Unreachable database at exit: the heartbeat goes stale and /health says so instead.
    with contextlib.suppress(psycopg.OperationalError), connect() as conn:
        conn.autocommit = True
        stopped(conn, name)
    log.info("worker %s stopped", name)
